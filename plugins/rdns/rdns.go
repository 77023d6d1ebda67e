// Package rdns is the reverse DNS stage: the client address's PTR names
// (RFC 1035 3.5, RFC 3596 2.5) and their forward confirmation, the name
// resolving back to the same address (what RFC 8601 2.7.3 calls iprev).
//
// Verdicts: pass with tag "confirmed" when a PTR name resolves back to the
// address (attrs.hostname is that name, for rules and for connfilter's
// host patterns through the gateway's conn.hostname); fail with tag
// "no_ptr" when the address has no PTR record; fail with tag "mismatch"
// when no PTR name resolves back (attrs.ptr lists the names). A PTR name
// that is not a host name (escaped bytes, all digits) is never confirmed;
// the first max_names of the others are looked up in parallel. attrs.result
// is confirmed, no_ptr or mismatch. A DNS failure (timeout, SERVFAIL) that
// leaves the answer open is an error, so the stage's on_error decides:
// a broken resolver is not a missing PTR.
//
// A name that looks generic or dynamic (the address's digits in it, or
// words like dynamic, dhcp, pool, dsl, ppp, cable among its host labels)
// adds tag "dynamic"; dynamic_patterns adds regular expressions of one's
// own.
//
// The stage runs at helo, not connect, so that its `when` can read a
// connect-phase stage (an allow-listed client skips it).
//
// # Config
//
//	timeout: 2s                   # the whole check
//	max_names: 5                  # PTR names tried for confirmation (a PTR set can be large)
//	dynamic_patterns: ['^ip\d']   # further generic-name patterns (RE2, case-insensitive)
package rdns

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/cfgval"
	"github.com/portcullis-mta/portcullis/sdk/dnsutil"
)

// resolver is what the stage needs of DNS.
type resolver interface {
	Lookup(ctx context.Context, name string, qtype uint16) (*dnsutil.Answer, error)
}

// Stage is the reverse DNS stage.
type Stage struct {
	cur atomic.Pointer[state]
}

type state struct {
	res      resolver
	timeout  time.Duration
	maxNames int
	dynamic  []*regexp.Regexp
}

var (
	_ sdk.Stage         = (*Stage)(nil)
	_ sdk.ConfigChecker = (*Stage)(nil)
)

// New returns a reverse DNS stage.
func New() sdk.Stage { return &Stage{} }

// Info implements sdk.Stage.
func (s *Stage) Info() sdk.Info {
	return sdk.Info{Name: "rdns", Version: "1.0.0", Phases: []sdk.Phase{sdk.PhaseHelo}}
}

// Configure implements sdk.Stage.
func (s *Stage) Configure(_ context.Context, env sdk.Env, raw map[string]any) error {
	st, err := load(env, raw)
	if err != nil {
		return err
	}
	s.cur.Store(st)
	return nil
}

// CheckConfig implements sdk.ConfigChecker: the config and the
// resolvers, without a query.
func (s *Stage) CheckConfig(_ context.Context, env sdk.Env, raw map[string]any) error {
	_, err := load(env, raw)
	return err
}

var configKeys = []string{"timeout", "max_names", "dynamic_patterns"}

// load reads the config (keys in sorted order, so that of two mistakes
// the same one is reported each time) and sets up its resolver, which
// asks nothing yet.
func load(env sdk.Env, raw map[string]any) (*state, error) {
	st := &state{timeout: 2 * time.Second, maxNames: 5}
	err := cfgval.Each(raw, func(k string, v any) (err error) {
		key := cfgval.Key(k)
		switch k {
		case "timeout":
			st.timeout, err = key.PositiveDuration(v)
		case "max_names":
			st.maxNames, err = key.Whole(v, 1, math.MaxInt)
		case "dynamic_patterns":
			if st.dynamic, err = patterns(v); err != nil {
				err = fmt.Errorf("%s: %v", k, err)
			}
		default:
			err = cfgval.UnknownKey(k, configKeys)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	r, err := dnsutil.New(env.DNSServers)
	if err != nil {
		return nil, err
	}
	r.Timeout = st.timeout
	st.res = r
	return st, nil
}

func patterns(v any) ([]*regexp.Regexp, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, errors.New("want a list of regular expressions")
	}
	var out []*regexp.Regexp
	for _, x := range l {
		str, _ := x.(string)
		re, err := regexp.Compile("(?i)" + str)
		if err != nil || str == "" {
			return nil, fmt.Errorf("bad pattern %q", str)
		}
		out = append(out, re)
	}
	return out, nil
}

// Check implements sdk.Stage.
func (s *Stage) Check(ctx context.Context, req *sdk.Request) (*sdk.Result, error) {
	st := s.cur.Load()
	if st == nil {
		return nil, errors.New("rdns: not configured")
	}
	ip, err := netip.ParseAddr(req.Conn.IP)
	if err != nil {
		return nil, fmt.Errorf("rdns: bad client address %q", req.Conn.IP)
	}
	// DNS addresses carry no zone: fe80::1%eth0 is compared as fe80::1.
	ip = ip.Unmap().WithZone("")
	ctx, cancel := context.WithTimeout(ctx, st.timeout)
	defer cancel()
	ptr, err := st.res.Lookup(ctx, dnsutil.ReverseName(ip), dns.TypePTR)
	if err != nil {
		return nil, fmt.Errorf("rdns: %w", err)
	}
	names := ptr.Names()
	if len(names) == 0 {
		return &sdk.Result{Verdict: sdk.VerdictFail, Tags: []string{"no_ptr"},
			Attrs: map[string]string{"result": "no_ptr", "hostname": "", "ptr": ""}, Reason: "no PTR record for " + ip.String()}, nil
	}
	confirmed, err := st.confirm(ctx, ip, hostNames(names))
	res := &sdk.Result{Attrs: map[string]string{"ptr": strings.Join(names, ","), "hostname": confirmed}}
	switch {
	case confirmed != "":
		res.Verdict, res.Tags, res.Attrs["result"] = sdk.VerdictPass, []string{"confirmed"}, "confirmed"
		res.Reason = ip.String() + " is " + confirmed
	case err != nil:
		return nil, fmt.Errorf("rdns: %w", err)
	default:
		res.Verdict, res.Tags, res.Attrs["result"] = sdk.VerdictFail, []string{"mismatch"}, "mismatch"
		res.Reason = fmt.Sprintf("no PTR name of %s resolves back to it", ip)
	}
	name := confirmed
	if name == "" {
		name = names[0]
	}
	if st.isDynamic(name, ip) {
		res.Tags = append(res.Tags, "dynamic")
	}
	return res, nil
}
