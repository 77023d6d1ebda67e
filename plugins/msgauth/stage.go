package msgauth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/portcullis-mta/portcullis/sdk"
)

// Check authenticates one message at the data phase.
func (s *Stage) Check(ctx context.Context, req *sdk.Request) (*sdk.Result, error) {
	st := s.cur.Load()
	if st == nil {
		return nil, errors.New("msgauth: not configured")
	}
	if req.Phase != sdk.PhaseData || req.Message == nil {
		return &sdk.Result{Verdict: sdk.VerdictNone}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, st.cfg.timeout)
	defer cancel()
	ip := net.ParseIP(req.Conn.IP)
	res := resolver{ctx: ctx, r: st.dns, v4: ip.To4() != nil}
	rep := &report{sender: req.Envelope.From, helo: req.Conn.HELO}

	own, err := readOwnHeader(req.Message)
	if err != nil {
		// The message itself cannot be read: that is the stage failing.
		return nil, fmt.Errorf("msgauth: reading the message: %w", err)
	}
	froms, fromErr := fromDomains(own.kept)
	// SPF, DKIM and the DMARC policy ask different names: look them all
	// up side by side.
	var wg sync.WaitGroup
	var heloSPF spfResult
	var dkimErr error
	policies := make([]found, len(froms))
	wg.Go(func() { rep.spf = checkSPF(ctx, res, ip, req.Conn.HELO, req.Envelope.From) })
	if st.cfg.heloSPF && req.Envelope.From != "" {
		wg.Go(func() { heloSPF = checkSPF(ctx, res, ip, req.Conn.HELO, "") })
	}
	wg.Go(func() { rep.dkim, dkimErr = verifyDKIM(req.Message, own, res, st.cfg.maxSigs) })
	for i, from := range froms {
		wg.Go(func() { policies[i] = discover(ctx, res, from) })
	}
	wg.Wait()
	if dkimErr != nil {
		// The message itself cannot be read: that is the stage failing.
		return nil, dkimErr
	}
	if req.Envelope.From == "" {
		heloSPF = rep.spf
	}
	if fromErr != nil {
		rep.dmarc = outcome{result: dmarcPermError, disposition: "none"}
		rep.fromErr = fromErr.Error()
	} else {
		// RFC 7489 6.6.1: with several author domains, each is checked
		// and the strictest outcome is the message's (one pct roll for
		// the message).
		roll := s.roll()
		for i, from := range froms {
			o := evaluate(verdictInput{
				spf: rep.spf.result, spfDomain: rep.spf.domain, dkim: rep.dkim,
				from: from, found: policies[i], roll: roll,
			})
			if i == 0 || strictness(o) > strictness(rep.dmarc) {
				rep.from, rep.dmarc = from, o
			}
		}
	}
	return s.result(st, own, rep, heloSPF), nil
}

func (s *Stage) result(st *state, own ownHeader, rep *report, heloSPF spfResult) *sdk.Result {
	d := rep.dmarc
	a := map[string]string{
		"spf": rep.spf.result, "spf_domain": rep.spf.domain, "spf_helo": heloSPF.result,
		"dkim": dkimSummary(rep.dkim), "dmarc": d.result, "dmarc_from": rep.from,
		"dmarc_domain": d.domain, "dmarc_policy": d.policy, "dmarc_disposition": d.disposition,
		"dmarc_spf_aligned": strconv.FormatBool(d.spfAligned), "dmarc_dkim_aligned": strconv.FormatBool(d.dkimAligned),
	}
	if heloSPF.result == "" {
		a["spf_helo"] = "none"
	}
	if d.policy != "" {
		a["dmarc_pct"] = strconv.Itoa(d.pct)
	}
	var passed string
	for i, sig := range rep.dkim {
		a["dkim_"+strconv.Itoa(i+1)] = sig.result + " " + sig.domain
		if sig.result == "pass" {
			if passed != "" {
				passed += " "
			}
			passed += sig.domain
		}
	}
	a["dkim_domains"] = passed
	edits, forged := headerEdits(own.kept, st.cfg.authservID, rep.format(st.cfg.authservID))
	if forged > 0 {
		a["forged_authres"] = strconv.Itoa(forged)
	}
	r := &sdk.Result{
		Verdict: verdictOf(d),
		Tags:    []string{"spf_" + rep.spf.result, "dkim_" + a["dkim"], "dmarc_" + d.result},
		Attrs:   a,
		Reason:  "spf=" + rep.spf.result + " dkim=" + a["dkim"] + " dmarc=" + d.result,
		Headers: edits,
	}
	if d.result == dmarcFail {
		r.Reason += " (" + rep.from + " p=" + d.policy + ", disposition " + d.disposition + ")"
	}
	return r
}

func verdictOf(d outcome) sdk.Verdict {
	switch {
	case d.result == dmarcPass:
		return sdk.VerdictPass
	case d.result == dmarcFail && d.disposition == "reject":
		return sdk.VerdictFail
	case d.result == dmarcNone:
		return sdk.VerdictNone
	}
	return sdk.VerdictNeutral
}
