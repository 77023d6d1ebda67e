package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// validator checks a decoded Config once, at load, reporting each problem
// at the node of the offending key (or of its parent when the key is absent).
type validator struct {
	*decoder
	cfg  *Config
	root *yaml.Node
}

// at returns the node decoded into field (a pointer into cfg), or else the
// first of the fallbacks that was decoded, or else the document root.
func (v *validator) at(field any, fallbacks ...any) *yaml.Node {
	for _, f := range append([]any{field}, fallbacks...) {
		if n, ok := v.pos[f]; ok {
			return n
		}
	}
	return v.root
}

// errorf reports a validation problem, unless decoding already reported
// one at the same node (a value that failed to decode kept its zero value).
func (v *validator) errorf(n *yaml.Node, format string, args ...any) {
	if !v.bad[n] {
		v.errs = append(v.errs, &Error{File: v.decoder.file, Line: n.Line, Col: n.Column, Msg: fmt.Sprintf(format, args...),
			Key: v.keys[n]})
	}
}

func (v *validator) validate() {
	c := v.cfg
	if c.Hostname == "" {
		v.errorf(v.at(&c.Hostname), "hostname: must not be empty (and os.Hostname gave nothing)")
	} else if !ValidDomain(c.Hostname) {
		v.errorf(v.at(&c.Hostname), "hostname: %q is not a valid host name", c.Hostname)
	}
	v.serverTLS()
	v.listeners()
	v.limits()
	v.relay()
	v.routes()
	v.queue()
	v.misc()
}

// oneOf reports whether s is one of the allowed values, or reports an error.
func (v *validator) oneOf(field *string, key string, allowed ...string) bool {
	for _, a := range allowed {
		if *field == a {
			return true
		}
	}
	v.errorf(v.at(field), "%s: %q is not one of %s", key, *field, strings.Join(allowed, ", "))
	return false
}

// resolve makes a relative path absolute from the config's directory.
func (v *validator) resolve(p *string) {
	if *p != "" && !filepath.IsAbs(*p) {
		*p = filepath.Join(v.cfg.Dir, *p)
	}
}

// file resolves *p and checks that it names a readable regular file.
func (v *validator) file(p *string, key string) bool {
	if *p == "" {
		return false
	}
	v.resolve(p)
	st, err := os.Stat(*p)
	switch {
	case err != nil:
		v.errorf(v.at(p), "%s: %s", key, errText(err))
	case st.IsDir():
		v.errorf(v.at(p), "%s: %s is a directory", key, *p)
	default:
		return true
	}
	return false
}

// errText is a file error without Go's "stat " prefix.
func errText(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Path + ": " + pe.Err.Error()
	}
	return err.Error()
}

func (v *validator) serverTLS() {
	t := &v.cfg.TLS
	cert := v.file(&t.Cert, "tls.cert")
	key := v.file(&t.Key, "tls.key")
	switch {
	case t.Cert != "" && t.Key == "":
		v.errorf(v.at(&v.cfg.TLS, &t.Cert), "tls: cert without key")
	case t.Key != "" && t.Cert == "":
		v.errorf(v.at(&v.cfg.TLS, &t.Key), "tls: key without cert")
	case cert && key:
		if _, err := tls.LoadX509KeyPair(t.Cert, t.Key); err != nil {
			v.errorf(v.at(&t.Cert), "tls: cannot load certificate and key: %v", err)
		}
	}
}

func (v *validator) listeners() {
	c := v.cfg
	if len(c.Listeners) == 0 {
		v.errorf(v.at(&c.Listeners), "listeners: at least one listener is needed")
	}
	names := map[string]bool{}
	for i := range c.Listeners {
		l := &c.Listeners[i]
		key := fmt.Sprintf("listeners[%d]", i)
		switch {
		case l.Name == "":
			v.errorf(v.at(&l.Name, l), "%s.name: must not be empty", key)
		case names[l.Name]:
			v.errorf(v.at(&l.Name), "%s.name: duplicate listener name %q", key, l.Name)
		}
		names[l.Name] = true
		if err := hostPort(l.Address, true); err != nil {
			v.errorf(v.at(&l.Address, l), "%s.address: %v", key, err)
		} else if other := overlapping(c.Listeners[:i], l.Address); other != nil && other.Address == l.Address {
			v.errorf(v.at(&l.Address), "%s.address: %q is used by another listener", key, l.Address)
		} else if other != nil {
			v.errorf(v.at(&l.Address), "%s.address: %q overlaps listener %s (%q): both cannot be bound", key, l.Address, other.Name, other.Address)
		}
		if v.oneOf(&l.TLS, key+".tls", "none", "starttls", "implicit") && l.TLS != "none" &&
			(c.TLS.Cert == "" || c.TLS.Key == "") {
			v.errorf(v.at(&l.TLS), "%s.tls: %s needs tls.cert and tls.key", key, l.TLS)
		}
		if v.oneOf(&l.Auth, key+".auth", "none", "optional", "required") && l.Auth != "none" && c.Relay.UsersFile == "" {
			v.errorf(v.at(&l.Auth), "%s.auth: %s needs relay.users_file", key, l.Auth)
		}
		if l.ProxyProtocol && len(l.TrustedProxies) == 0 {
			v.errorf(v.at(&l.ProxyProtocol), "%s.proxy_protocol: needs trusted_proxies (who may claim a client address)", key)
		}
	}
}

// ListenNetwork is the network a listener's address is bound on. An IPv4
// address, 0.0.0.0 too, is IPv4 only, and an IPv6 address, [::] too, is
// IPv6 only (Go's "tcp" would bind 0.0.0.0 dual-stack, so that 0.0.0.0:25
// and [::]:25 could not both be listeners, and an admin who wrote
// 0.0.0.0 would get IPv6 clients as well); an empty host (":25") or a host
// name binds as Go does: ":25" is every address of both families.
func ListenNetwork(address string) string {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return "tcp"
	}
	a, err := netip.ParseAddr(host)
	switch {
	case err != nil || a.Zone() != "" || a.Is4In6():
		// A mapped address (::ffff:127.0.0.1) binds as Go binds it: an
		// IPv6 socket refuses it.
		return "tcp"
	case a.Is4():
		return "tcp4"
	}
	return "tcp6"
}

// overlapping returns the listener of ls whose address cannot be bound
// beside address: the same address and port, or a wildcard of the same
// family (0.0.0.0, [::], or an empty host for both) on the same port.
// Host names are left to the bind.
func overlapping(ls []Listener, address string) *Listener {
	host, port, err := net.SplitHostPort(address)
	if err != nil || port == "0" {
		return nil
	}
	host = bindHost(host)
	for i := range ls {
		h, p, err := net.SplitHostPort(ls[i].Address)
		if err != nil || p != port {
			continue
		}
		h = bindHost(h)
		if sameHost(h, host) || bindsOver(h, host) || bindsOver(host, h) {
			return &ls[i]
		}
	}
	return nil
}

// bindHost is host as the bind takes it: the mapped wildcard
// ::ffff:0.0.0.0 (bound with "tcp", see ListenNetwork) is a dual-stack
// socket on every address of both families, as an empty host is.
func bindHost(host string) string {
	if a, err := netip.ParseAddr(host); err == nil && a.Is4In6() && a.Unmap().IsUnspecified() {
		return ""
	}
	return host
}

// sameHost reports whether two listener hosts are one: the same name, or
// the same address however written ([::1] and [0::1], ::ffff:127.0.0.1
// and 127.0.0.1).
func sameHost(a, b string) bool {
	x, err1 := netip.ParseAddr(a)
	y, err2 := netip.ParseAddr(b)
	if err1 != nil || err2 != nil {
		return a == b
	}
	return x.Unmap() == y.Unmap()
}

// bindsOver reports whether a listener on host wild takes every address
// of host's family on its port.
func bindsOver(wild, host string) bool {
	if wild == "" {
		return true
	}
	w, err := netip.ParseAddr(wild)
	if err != nil || !w.IsUnspecified() {
		return false
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host == "" // a host name: left to the bind
	}
	return a.Unmap().Is4() == w.Unmap().Is4()
}

// hostPort checks "host:port"; an empty host means every address when
// emptyHost is set (listeners), and is an error otherwise.
func hostPort(s string, emptyHost bool) error {
	if s == "" {
		return errors.New("missing: want host:port")
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port", s)
	}
	if host == "" && !emptyHost {
		return fmt.Errorf("%q has no host", s)
	}
	if strings.ContainsAny(host, " /") {
		return fmt.Errorf("%q: invalid host", s)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 || (n == 0 && !emptyHost) {
		return fmt.Errorf("%q: invalid port %q", s, port)
	}
	return nil
}

func (v *validator) limits() {
	l := &v.cfg.Limits
	positive := []struct {
		field *int
		key   string
	}{
		{&l.MaxConnections, "max_connections"}, {&l.MaxConnectionsPerIP, "max_connections_per_ip"},
		{&l.MaxRecipients, "max_recipients"}, {&l.MaxLineLength, "max_line_length"},
		{&l.MaxBadCommands, "max_bad_commands"}, {&l.AuthFailures, "auth_failures"}, {&l.MaxHops, "max_hops"},
	}
	for _, p := range positive {
		if *p.field <= 0 {
			v.errorf(v.at(p.field), "limits.%s: must be positive", p.key)
		}
	}
	if l.MaxConnectionRate < 0 {
		v.errorf(v.at(&l.MaxConnectionRate), "limits.max_connection_rate: must not be negative (0: no limit)")
	}
	if l.MaxMessageBytes <= 0 {
		v.errorf(v.at(&l.MaxMessageBytes), "limits.max_message_bytes: must be positive")
	}
	if l.MaxLineLength > 0 && l.MaxLineLength < 1000 {
		v.errorf(v.at(&l.MaxLineLength), "limits.max_line_length: RFC 5321 4.5.3.1.6 requires at least 1000")
	}
	for _, d := range []struct {
		field *Duration
		key   string
	}{{&l.CommandTimeout, "command_timeout"}, {&l.DataTimeout, "data_timeout"}, {&l.AuthLockout, "auth_lockout"}} {
		if *d.field <= 0 {
			v.errorf(v.at(d.field), "limits.%s: must be positive", d.key)
		}
	}
}
