// Package msgauth is the message authentication stage: SPF (RFC 7208) for
// the MAIL FROM and HELO identities, DKIM verification (RFC 6376) of every
// signature, and DMARC (RFC 7489) from those, with the result written into
// an Authentication-Results field (RFC 8601).
//
// SPF runs with blitiri.com.ar/go/spf and DKIM with emersion/go-msgauth,
// both over the gateway's resolvers (sdk/dnsutil), so a DNS failure is a
// temperror, never a "none". go-msgauth has no DMARC: this package looks
// the policy up at _dmarc.<From domain>, falling back to the
// organizational domain from the public suffix list (RFC 7489 6.6.3),
// checks relaxed or strict alignment (3.1), and applies p, sp and pct
// (6.6.4).
//
// An internationalised domain is looked up, and compared, in its A-label
// form (RFC 8616). The stage reads From and the Authentication-Results
// fields from the whole header, not from the first 256 KiB the gateway
// gives stages: inbound Authentication-Results fields that claim our
// authserv-id, wherever they are, are forged (RFC 8601 5) and removed
// before ours is added.
//
// # Phases
//
// data only: DKIM and DMARC need the message.
//
// # Config
//
//	authserv_id: mx.example.test  # default: the gateway's hostname
//	timeout: 10s                  # the whole check
//	max_signatures: 5             # DKIM signatures verified; more are ignored
//	helo_spf: true                # also check the HELO identity (attrs.spf_helo)
//
// # Result
//
// Attrs: spf (the MAIL FROM result, or the HELO one for <>), spf_domain,
// spf_helo, dkim (pass if any signature passed, else the best result),
// dkim_1, dkim_2, ... ("RESULT DOMAIN" per signature in header order),
// dkim_domains (those that passed), dmarc (pass | fail | none | temperror |
// permerror; temperror too when a DNS failure checking an aligned SPF or
// DKIM identifier left it undecided, with dmarc_policy set, so a rule can
// tempfail rather than reject), dmarc_from, dmarc_domain (where the record
// was), dmarc_policy (p, or sp for a subdomain), dmarc_pct,
// dmarc_disposition (the policy after pct sampling; none unless dmarc is
// fail), dmarc_spf_aligned and dmarc_dkim_aligned ("true"/"false"),
// forged_authres (a count, when any).
// Tags: "spf_RESULT", "dkim_RESULT", "dmarc_RESULT".
//
// Verdict: pass when DMARC passes; fail when it fails and the disposition
// is reject; neutral for the other failures and errors; none without a
// DMARC policy.
package msgauth

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/dnsutil"
)

// Stage is the message authentication stage.
type Stage struct {
	// roll returns 0-99 for DMARC pct sampling; tests make it fixed.
	roll func() int
	cur  atomic.Pointer[state]
}

type state struct {
	cfg config
	dns *dnsutil.Resolver
}

type config struct {
	authservID string
	timeout    time.Duration
	maxSigs    int
	heloSPF    bool
}

var (
	_ sdk.Stage         = (*Stage)(nil)
	_ sdk.ConfigChecker = (*Stage)(nil)
)

// New returns the stage.
func New() sdk.Stage { return &Stage{roll: func() int { return rand.IntN(100) }} }

// Info names the stage and its phase.
func (s *Stage) Info() sdk.Info {
	return sdk.Info{Name: "msgauth", Version: "1", Phases: []sdk.Phase{sdk.PhaseData}}
}

// Configure validates config and sets up the resolver.
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

// load reads the config and sets up its resolver, which asks nothing yet.
func load(env sdk.Env, raw map[string]any) (*state, error) {
	cfg, err := parseConfig(env, raw)
	if err != nil {
		return nil, err
	}
	r, err := dnsutil.New(env.DNSServers)
	if err != nil {
		return nil, fmt.Errorf("msgauth: %w", err)
	}
	// A query may take the whole budget (less its even share among the
	// servers and what is left of the call's time), as the rdns and dnsbl
	// stages have it: left at dnsutil's default of 2 s, a slow but working
	// DNS became temperror, and a DMARC p=reject domain a 451.
	r.Timeout = cfg.timeout
	return &state{cfg: cfg, dns: r}, nil
}
