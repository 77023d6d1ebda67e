// Package connfilter is the connection filter stage: deny and allow lists
// of addresses, CIDR prefixes (IPv4 and IPv6), "address,mask" ranges, host
// name patterns and countries, checked once per connection.
//
// The deny list is checked first, then the allow list (the order of the
// original server): a deny match is verdict fail (tag "deny"), an allow
// match verdict pass (tag "allow"), neither verdict none. attrs.list and
// attrs.entry say which list and which entry (as written) matched, and
// attrs.match what matched: ip, host or country.
//
// Host patterns are matched, case-insensitively and with Unicode labels in
// their xn-- form (RFC 5890), against the forward-confirmed reverse DNS name
// the gateway puts in conn.hostname (sdk.Conn.Hostname). The stage does no
// DNS of its own: when the gateway has no confirmed name, host patterns do
// not match and attrs.hostname is "unknown"; but when it has none because
// the DNS failed (sdk.Conn.HostnameError), a client no deny entry matched
// otherwise may be one a deny host pattern names: the stage errs then, and
// its on_error decides (a temporary refusal by default), rather than let it
// through as it would a client with no name.
//
// Countries come from RIR delegated-stats files (see Countries); when any
// are configured, attrs.country carries the client's ISO code on every
// result ("" when no registry lists the address); rules see it as
// conn.country too, from the connect phase on.
//
// # Config
//
//	deny:                              # or just a list of entries
//	  entries: ["203.0.113.5", "198.51.100.0/24", "2001:db8:bad::/48",
//	            "192.0.2.0,255.255.255.0", "*.dyn.example", "country:CN"]
//	  files: [lists/deny.txt]          # one entry a line, '#' comments
//	allow:
//	  entries: ["mail.partner.example"]
//	filters: [old/filter.txt]          # the original server's lines: REJECT/IP/203.0.113.5,
//	                                   # PASS/IP/127.0.0.1, REJECT/HOST/*.dyn.example
//	countries: [delegated-apnic-latest, delegated-ripencc-latest]
//	reload_interval: 5s                # files are re-read when they change
//
// An entry is an address, a prefix, an "address,mask" range, a two-letter
// country code, or else a host pattern; the prefixes "ip:", "host:" and
// "country:" say which explicitly. A host pattern that no host name could
// match (10.0.0.1-10.0.0.255, 203.0.113.5;, .example) is an error, not a
// pattern that silently never matches. Lines in the filter format are accepted
// in list files too. Files are re-read on every reload of the gateway
// (SIGHUP) and when one changes (checked at most every reload_interval); a
// file that no longer loads keeps the lists it would replace, and results
// carry attrs.reload_error until it loads again; so does a delegated-stats
// file that had records and, changed, has none (a failed download). Both outcomes of a
// reload on change are logged once, in the gateway's log: an error line
// saying why the files were refused, an info line when a change loads.
package connfilter

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
)

// Stage is the connection filter.
type Stage struct {
	now func() time.Time
	log *slog.Logger // nil: slog's default, which Serve points at the gateway

	mu        sync.Mutex // serialises Configure and reloads
	cfg       config
	stamps    map[string]fileStamp
	cur       atomic.Pointer[filterSet]
	reloadErr atomic.Pointer[string]
	nextCheck atomic.Int64 // unix nanoseconds
}

var (
	_ sdk.Stage         = (*Stage)(nil)
	_ sdk.ConfigChecker = (*Stage)(nil)
)

// New returns a connection filter stage.
func New() sdk.Stage { return &Stage{now: time.Now} }

// Info implements sdk.Stage.
func (s *Stage) Info() sdk.Info {
	return sdk.Info{Name: "connfilter", Version: "1.0.0", Phases: []sdk.Phase{sdk.PhaseConnect}}
}

// Configure implements sdk.Stage: it validates the config and reads every file.
func (s *Stage) Configure(_ context.Context, env sdk.Env, raw map[string]any) error {
	cfg, err := parseConfig(raw, env.ConfigDir)
	if err != nil {
		return err
	}
	st := stamps(cfg.files())
	set, err := build(cfg)
	if err != nil {
		return err
	}
	s.apply(cfg, st, set)
	return nil
}

// CheckConfig implements sdk.ConfigChecker: it reads every file as
// Configure does and keeps nothing.
func (s *Stage) CheckConfig(_ context.Context, env sdk.Env, raw map[string]any) error {
	cfg, err := parseConfig(raw, env.ConfigDir)
	if err != nil {
		return err
	}
	_, err = build(cfg)
	return err
}

// apply puts a loaded config in force.
func (s *Stage) apply(cfg config, st map[string]fileStamp, set *filterSet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg, s.stamps = cfg, st
	s.cur.Store(set)
	s.reloadErr.Store(nil)
	s.nextCheck.Store(s.now().Add(cfg.reloadInterval).UnixNano())
}

// Check implements sdk.Stage.
func (s *Stage) Check(_ context.Context, req *sdk.Request) (*sdk.Result, error) {
	s.maybeReload()
	set := s.cur.Load()
	if set == nil {
		return nil, fmt.Errorf("connfilter: not configured")
	}
	ip, err := netip.ParseAddr(req.Conn.IP)
	if err != nil {
		return nil, fmt.Errorf("connfilter: bad client address %q", req.Conn.IP)
	}
	res, err := set.check(ip.Unmap(), req.Conn.Hostname, req.Conn.HostnameError)
	if err != nil {
		return nil, err
	}
	if e := s.reloadErr.Load(); e != nil {
		res.Attrs["reload_error"] = *e
	}
	return res, nil
}

// maybeReload re-reads the files when one changed since the last load. One
// caller does it; the others go on with the current lists.
func (s *Stage) maybeReload() {
	now := s.now()
	next := s.nextCheck.Load()
	if now.UnixNano() < next || !s.nextCheck.CompareAndSwap(next, now.Add(s.interval()).UnixNano()) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := stamps(s.cfg.files())
	if sameStamps(st, s.stamps) {
		return
	}
	// Remember these versions even when they fail to load: a broken
	// (perhaps large) file is read again when it changes, not every
	// reload_interval, and its error is logged once.
	changed := changedFiles(s.stamps, st)
	s.stamps = st
	set, err := build(s.cfg)
	if err == nil {
		err = lostCountries(s.cfg, s.cur.Load(), set)
	}
	if err != nil {
		msg := err.Error()
		s.reloadErr.Store(&msg)
		// Nobody reads attrs.reload_error unless a rule logs it: without
		// this line the entries an admin just added would silently not
		// take effect.
		s.logger().Error("connfilter: changed list file refused, keeping the previous lists",
			"error", err, "changed", strings.Join(changed, ","))
		return // keep the lists in force; try again when the files change again
	}
	s.cur.Store(set)
	s.reloadErr.Store(nil)
	s.logger().Info("connfilter: changed list files loaded", "changed", strings.Join(changed, ","))
}

func (s *Stage) logger() *slog.Logger {
	if s.log != nil {
		return s.log
	}
	return slog.Default()
}

// changedFiles names the files whose stamps differ between old and cur,
// sorted for a stable log line.
func changedFiles(old, cur map[string]fileStamp) []string {
	var out []string
	for f, st := range cur {
		if o, ok := old[f]; !ok || !o.same(st) {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out
}

func (s *Stage) interval() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg.reloadInterval
}

func sameStamps(a, b map[string]fileStamp) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !w.same(v) {
			return false
		}
	}
	return true
}
