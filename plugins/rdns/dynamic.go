package rdns

import (
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// dynamicWord matches labels, or parts of labels between digits and hyphens,
// that ISPs use for generic names of subscriber addresses.
var dynamicWord = regexp.MustCompile(`(?i)(^|[^a-z])(dyn|dynamic|dhcp|pool|dsl|adsl|vdsl|xdsl|cable|ppp|pppoe|dialup|dial|dip|broadband|bb|fttx|ftth|client|customer|cust|subscriber|resident|static|unassigned|unknown|nat)([^a-z]|$)`)

// isDynamic reports whether name looks generic for ip: the address's
// octets (any order, decimal or zero-padded, or the whole address in hex)
// or a dynamic word in its host labels, the labels before the last two.
func (st *state) isDynamic(name string, ip netip.Addr) bool {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	for _, re := range st.dynamic {
		if re.MatchString(name) {
			return true
		}
	}
	labels := strings.Split(name, ".")
	if len(labels) <= 2 {
		return false
	}
	host := strings.Join(labels[:len(labels)-2], ".")
	return dynamicWord.MatchString(host) || hasAddress(host, ip)
}

// hasAddress reports whether host spells ip: for IPv4 at least three of
// its four octets as separate numbers, all four zero-padded to three
// digits and run together, or its 8 hex digits; for IPv6 the
// hex of the lower 64 bits.
func hasAddress(host string, ip netip.Addr) bool {
	if ip.Is4() {
		a := ip.As4()
		hex := strings.ToLower(strconv.FormatUint(uint64(a[0])<<24|uint64(a[1])<<16|uint64(a[2])<<8|uint64(a[3]), 16))
		if len(hex) >= 7 && strings.Contains(host, leftPad(hex, 8)) {
			return true
		}
		var fwd, rev string
		for i := range a {
			fwd += leftPad(strconv.Itoa(int(a[i])), 3)
			rev += leftPad(strconv.Itoa(int(a[3-i])), 3)
		}
		if strings.Contains(host, fwd) || strings.Contains(host, rev) {
			return true
		}
		nums := map[int]int{}
		for _, f := range strings.FieldsFunc(host, func(r rune) bool { return r < '0' || r > '9' }) {
			if n, err := strconv.Atoi(f); err == nil && len(f) <= 3 {
				nums[n]++
			}
		}
		found := 0
		for _, o := range a {
			if nums[int(o)] > 0 {
				nums[int(o)]--
				found++
			}
		}
		return found >= 3
	}
	b := ip.As16()
	var sb strings.Builder
	for _, x := range b[8:] {
		sb.WriteString(leftPad(strconv.FormatUint(uint64(x), 16), 2))
	}
	compact := strings.NewReplacer("-", "", ".", "").Replace(host)
	return strings.Contains(compact, sb.String())
}

func leftPad(s string, n int) string {
	for len(s) < n {
		s = "0" + s
	}
	return s
}
