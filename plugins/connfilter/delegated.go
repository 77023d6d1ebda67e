package connfilter

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Countries maps addresses to ISO 3166 country codes, built from RIR
// delegated-stats files (APNIC, ARIN, RIPE NCC, LACNIC, AFRINIC; the
// "registry|cc|type|start|value|date|status[|extensions]" format). IPv4
// records give a start and an address count (not always a power of two),
// IPv6 records a start and a prefix length. Lookups are a binary search
// over sorted, merged ranges.
type Countries struct {
	v4    []range4
	v6    []range6
	codes []string // by index: ranges hold a uint16 so a lookup does not allocate
}

type range4 struct {
	start, end uint32
	cc         uint16
}

type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

type range6 struct {
	start, end u128
	cc         uint16
}

// CountryBuilder collects delegated-stats records from several files.
type CountryBuilder struct {
	v4    []range4
	v6    []range6
	codes []string
	index map[string]uint16
}

// Parse reads one delegated-stats file. Version, summary and comment lines
// are skipped, as are asn records and records without a country (reserved
// or available space in the extended format). name is used in errors.
func (b *CountryBuilder) Parse(name string, r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if err := b.line(sc.Text()); err != nil {
			return fmt.Errorf("%s:%d: %v", name, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %v", name, err)
	}
	return nil
}

func (b *CountryBuilder) line(line string) error {
	line = strings.TrimSpace(line)
	if line == "" || line[0] == '#' {
		return nil
	}
	var buf [8]string
	f := splitFields(line, buf[:0])
	if len(f) < 7 {
		if len(f) >= 6 && f[5] == "summary" || len(f) >= 1 && isDigits(f[0]) {
			return nil // summary or version line
		}
		return fmt.Errorf("want registry|cc|type|start|value|date|status, got %d fields", len(f))
	}
	if isDigits(f[0]) || f[5] == "summary" || f[1] == "*" {
		return nil
	}
	cc := strings.ToUpper(f[1])
	if (f[2] != "ipv4" && f[2] != "ipv6") || !isCountry(cc) || cc == "ZZ" {
		return nil
	}
	code := b.code(cc)
	start, err := netip.ParseAddr(f[3])
	if err != nil {
		return fmt.Errorf("bad start address %q", f[3])
	}
	value, err := strconv.ParseUint(f[4], 10, 64)
	if err != nil {
		return fmt.Errorf("bad value %q", f[4])
	}
	if f[2] == "ipv4" {
		if !start.Is4() || value == 0 || value > 1<<32 {
			return fmt.Errorf("bad ipv4 record %s|%s", f[3], f[4])
		}
		s := binary.BigEndian.Uint32(start.AsSlice())
		end := uint64(s) + value - 1
		if end > 0xffffffff {
			return fmt.Errorf("ipv4 range %s+%d wraps", f[3], value)
		}
		b.v4 = append(b.v4, range4{s, uint32(end), code})
		return nil
	}
	if !start.Is6() || start.Is4In6() || value > 128 {
		return fmt.Errorf("bad ipv6 record %s|%s", f[3], f[4])
	}
	p, err := start.Prefix(int(value))
	if err != nil {
		return err
	}
	lo := to128(p.Addr())
	b.v6 = append(b.v6, range6{lo, lastOf(lo, int(value)), code})
	return nil
}

// code interns a country code (at most 26*26 of them).
func (b *CountryBuilder) code(cc string) uint16 {
	if i, ok := b.index[cc]; ok {
		return i
	}
	if b.index == nil {
		b.index = map[string]uint16{}
	}
	b.index[cc] = uint16(len(b.codes))
	b.codes = append(b.codes, cc)
	return b.index[cc]
}

// Build sorts and merges the ranges. Where records overlap (they should
// not; a transfer between registries can show in both), the one starting
// first wins where they overlap and the rest of the other keeps its
// country.
func (b *CountryBuilder) Build() *Countries {
	// By start, and the bigger block first among those starting together,
	// so that the outcome does not depend on the order of the files.
	slices.SortFunc(b.v4, func(x, y range4) int {
		return cmp.Or(cmp.Compare(x.start, y.start), cmp.Compare(y.end, x.end))
	})
	slices.SortFunc(b.v6, func(x, y range6) int {
		switch {
		case x.start.less(y.start):
			return -1
		case y.start.less(x.start):
			return 1
		case y.end.less(x.end):
			return -1
		case x.end.less(y.end):
			return 1
		}
		return 0
	})
	c := &Countries{codes: b.codes}
	for _, r := range b.v4 {
		n := len(c.v4)
		if n > 0 && r.start <= c.v4[n-1].end {
			if r.end <= c.v4[n-1].end {
				continue // inside the previous one
			}
			r.start = c.v4[n-1].end + 1 // the part after it keeps its country
		}
		if n > 0 && c.v4[n-1].cc == r.cc && c.v4[n-1].end+1 == r.start {
			c.v4[n-1].end = r.end
			continue
		}
		c.v4 = append(c.v4, r)
	}
	for _, r := range b.v6 {
		if n := len(c.v6); n > 0 && !c.v6[n-1].end.less(r.start) {
			continue
		}
		c.v6 = append(c.v6, r)
	}
	return c
}

// Lookup returns ip's country code, or "" when no record covers it.
func (c *Countries) Lookup(ip netip.Addr) string {
	if c == nil || !ip.IsValid() {
		return ""
	}
	ip = ip.Unmap()
	if ip.Is4() {
		a := ip.As4()
		v := binary.BigEndian.Uint32(a[:])
		// The last range starting at or before v (a hand-written search:
		// twice as fast as slices.BinarySearchFunc with a closure here).
		lo, hi := 0, len(c.v4)
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if c.v4[m].start <= v {
				lo = m + 1
			} else {
				hi = m
			}
		}
		if lo > 0 && c.v4[lo-1].end >= v {
			return c.codes[c.v4[lo-1].cc]
		}
		return ""
	}
	v := to128(ip)
	// first range whose start is after v, then step back one
	i, _ := slices.BinarySearchFunc(c.v6, v, func(r range6, v u128) int {
		if v.less(r.start) {
			return 1
		}
		return -1
	})
	if i > 0 && !c.v6[i-1].end.less(v) {
		return c.codes[c.v6[i-1].cc]
	}
	return ""
}

// Len is the number of merged ranges (v4 and v6).
func (c *Countries) Len() int { return len(c.v4) + len(c.v6) }

func to128(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// lastOf is the last address of the /bits prefix starting at lo.
func lastOf(lo u128, n int) u128 {
	switch {
	case n == 0:
		return u128{^uint64(0), ^uint64(0)}
	case n <= 64:
		return u128{lo.hi | (^uint64(0) >> n), ^uint64(0)}
	case n == 128:
		return lo
	}
	return u128{lo.hi, lo.lo | (^uint64(0) >> (n - 64))}
}

// splitFields splits line at '|' into buf (no allocation for the usual
// 7 or 8 fields; extra fields are kept in the last).
func splitFields(line string, buf []string) []string {
	for len(buf) < cap(buf)-1 {
		f, rest, ok := strings.Cut(line, "|")
		buf = append(buf, f)
		if !ok {
			return buf
		}
		line = rest
	}
	return append(buf, line)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isCountry(s string) bool {
	return len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'
}
