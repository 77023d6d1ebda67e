package msgauth

import (
	"context"
	"crypto"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"
)

func TestDKIM(t *testing.T) {
	rk, ek := keys(t)
	srv := dnsutiltest.New(t,
		keyRecord(t, "dk.test", "rsa", rk),
		keyRecord(t, "dk.test", "ed", ek),
	)
	srv.ServFail("down._domainkey.dk.test")
	s := newStage(t, srv, 0)
	msg := message("a@dk.test")
	tests := []struct {
		name    string
		raw     string
		want    string // attrs.dkim
		wantSig string // attrs.dkim_1
	}{
		{"valid rsa", sign(t, msg, "dk.test", "rsa", rk, time.Time{}), "pass", "pass dk.test"},
		{"valid ed25519", sign(t, msg, "dk.test", "ed", ek, time.Time{}), "pass", "pass dk.test"},
		{"tampered body", strings.Replace(sign(t, msg, "dk.test", "rsa", rk, time.Time{}), "Hello", "Jello", 1), "fail", "fail dk.test"},
		{"tampered header", strings.Replace(sign(t, msg, "dk.test", "ed", ek, time.Time{}), "Subject: hello", "Subject: HELLO there", 1), "fail", "fail dk.test"},
		{"missing key", sign(t, msg, "dk.test", "gone", rk, time.Time{}), "permerror", "permerror dk.test"},
		{"key lookup servfail", sign(t, msg, "dk.test", "down", rk, time.Time{}), "temperror", "temperror dk.test"},
		{"expired", sign(t, msg, "dk.test", "rsa", rk, time.Now().Add(-time.Hour)), "permerror", "permerror dk.test"},
		{"unsigned", msg, "none", ""},
		{"one good of two", sign(t, sign(t, msg, "dk.test", "gone", rk, time.Time{}), "dk.test", "ed", ek, time.Time{}), "pass", "pass dk.test"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := check(t, s, dataReq(t, tc.raw, "h.dk.test", "a@dk.test"))
			if got := res.Attrs["dkim"]; got != tc.want {
				t.Errorf("dkim = %q, want %q (reason %q)", got, tc.want, res.Reason)
			}
			if got := res.Attrs["dkim_1"]; got != tc.wantSig {
				t.Errorf("dkim_1 = %q, want %q", got, tc.wantSig)
			}
		})
	}
}

// Two signatures are reported one by one, in header order.
func TestDKIMPerSignature(t *testing.T) {
	rk, ek := keys(t)
	srv := dnsutiltest.New(t, keyRecord(t, "dk.test", "ed", ek), keyRecord(t, "other.test", "rsa", rk))
	s := newStage(t, srv, 0)
	raw := sign(t, sign(t, message("a@dk.test"), "other.test", "rsa", crypto.Signer(rk), time.Time{}), "dk.test", "gone", ek, time.Time{})
	res := check(t, s, dataReq(t, raw, "h.dk.test", "a@dk.test"))
	if res.Attrs["dkim_1"] != "permerror dk.test" || res.Attrs["dkim_2"] != "pass other.test" {
		t.Errorf("per signature: %q, %q", res.Attrs["dkim_1"], res.Attrs["dkim_2"])
	}
	if res.Attrs["dkim"] != "pass" || res.Attrs["dkim_domains"] != "other.test" {
		t.Errorf("dkim = %q, dkim_domains = %q", res.Attrs["dkim"], res.Attrs["dkim_domains"])
	}
}

// A message may end in its header, with no empty line and no body (RFC
// 5322 3.5): unsigned it has no DKIM result, signed it verifies.
func TestDKIMHeaderOnly(t *testing.T) {
	rk, _ := keys(t)
	srv := dnsutiltest.New(t, keyRecord(t, "dk.test", "rsa", rk))
	s := newStage(t, srv, 0)
	head := "From: <a@dk.test>\r\nTo: <rcpt@portcullis.test>\r\nSubject: empty\r\n"
	signed := strings.TrimSuffix(sign(t, head+"\r\n", "dk.test", "rsa", rk, time.Time{}), "\r\n")
	tests := []struct{ name, raw, want string }{
		{"unsigned", head, "none"},
		{"unsigned, no final line end", strings.TrimSuffix(head, "\r\n"), "none"},
		{"signed", signed, "pass"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := dataReq(t, tc.raw+"\r\n\r\n", "h.dk.test", "a@dk.test")
			req.Message = sdk.NewBytesMessage(req.Message.Header, []byte(tc.raw))
			res := check(t, s, req)
			if got := res.Attrs["dkim"]; got != tc.want {
				t.Errorf("dkim = %q, want %q (%s)", got, tc.want, res.Reason)
			}
		})
	}
}

// A message the stage cannot read (a spool or transport fault) is the
// stage failing, for on_error to decide; not a DKIM permerror, which under
// p=reject would become a DMARC fail and a 5xx for a local fault.
func TestDKIMReadErrorIsStageError(t *testing.T) {
	srv := dmarcZone(t)
	s := newStage(t, srv, 0)
	req := dataReq(t, message("a@example.test"), "h.other.test", "b@other.test")
	// A directory opens but does not read.
	req.Message = sdk.NewFileMessage(req.Message.Header, t.TempDir(), 0, 300)
	res, err := s.Check(context.Background(), req)
	if err == nil {
		t.Fatalf("no error; result %+v", res)
	}
}

// TestDKIMFieldBound: a message of more header fields than maxDKIMFields
// is not verified (permerror, said in the reason): go-msgauth keeps every
// field, and millions of empty ones cost it hundreds of megabytes. One
// just under the bound, signed, still verifies; continuation lines and a
// line longer than the reader's buffer count once. One without a
// signature is dkim=none.
func TestDKIMFieldBound(t *testing.T) {
	rk, _ := keys(t)
	srv := dnsutiltest.New(t, keyRecord(t, "dk.test", "rsa", rk))
	s := newStage(t, srv, 0)
	pad := func(n int) string {
		return strings.Repeat("X-Pad: a\r\n b\r\n", n) + "X-Long: " + strings.Repeat("y", 10000) + "\r\n"
	}
	msg := message("a@dk.test")
	head, body, _ := strings.Cut(msg, "\r\n\r\n")
	fields := strings.Count(head, "\r\n") + 1
	under := sign(t, head+"\r\n"+pad(maxDKIMFields-fields-2)+"\r\n"+body, "dk.test", "rsa", rk, time.Time{})
	over := sign(t, head+"\r\n"+pad(maxDKIMFields)+"\r\n"+body, "dk.test", "rsa", rk, time.Time{})
	if res := check(t, s, dataReq(t, under, "h.dk.test", "a@dk.test")); res.Attrs["dkim"] != "pass" {
		t.Errorf("just under the bound: dkim = %q (%s)", res.Attrs["dkim"], res.Reason)
	}
	res := check(t, s, dataReq(t, over, "h.dk.test", "a@dk.test"))
	var ar string
	for _, e := range res.Headers {
		if e.Op == sdk.HeaderAdd && e.Name == arField {
			ar = e.Value
		}
	}
	if res.Attrs["dkim"] != "permerror" || !strings.Contains(ar, "more than 1000 fields") {
		t.Errorf("over the bound: dkim = %q, %s: %q", res.Attrs["dkim"], arField, ar)
	}
	// Without a DKIM-Signature field there is nothing to verify, however
	// many fields: none (it was permerror).
	res = check(t, s, dataReq(t, head+"\r\n"+pad(maxDKIMFields)+"\r\n"+body, "h.dk.test", "a@dk.test"))
	if res.Attrs["dkim"] != "none" || res.Attrs["dkim_1"] != "" {
		t.Errorf("unsigned, over the bound: dkim = %q, dkim_1 = %q", res.Attrs["dkim"], res.Attrs["dkim_1"])
	}
}

// A signature with a body length (l=) leaves the rest of the body
// unsigned (RFC 6376 8.2); go-msgauth refuses it without checking it. It
// is reported policy (RFC 8601 2.7.1: signed, not acceptable), not fail,
// and it is no pass for DMARC.
func TestDKIMBodyLength(t *testing.T) {
	rk, _ := keys(t)
	srv := dnsutiltest.New(t, keyRecord(t, "dk.test", "rsa", rk), txtRR("_dmarc.dk.test.", "v=DMARC1; p=reject"))
	s := newStage(t, srv, 0)
	withL := strings.Replace(sign(t, message("a@dk.test"), "dk.test", "rsa", rk, time.Time{}), "v=1;", "v=1; l=15;", 1)
	res := check(t, s, dataReq(t, withL, "h.other.test", "b@other.test"))
	if res.Attrs["dkim"] != "policy" || res.Attrs["dkim_1"] != "policy dk.test" {
		t.Errorf("dkim = %q, dkim_1 = %q, want policy", res.Attrs["dkim"], res.Attrs["dkim_1"])
	}
	if res.Attrs["dmarc"] != "fail" || res.Attrs["dmarc_dkim_aligned"] != "false" || res.Verdict != sdk.VerdictFail {
		t.Errorf("dmarc = %q, dkim aligned %q, verdict %q; want a p=reject fail", res.Attrs["dmarc"], res.Attrs["dmarc_dkim_aligned"], res.Verdict)
	}
	for _, e := range res.Headers {
		if e.Op == sdk.HeaderAdd && e.Name == arField && !strings.Contains(e.Value, "dkim=policy") {
			t.Errorf("%s: %s", e.Name, e.Value)
		}
	}
}
