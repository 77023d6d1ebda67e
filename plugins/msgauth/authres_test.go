package msgauth

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/authres"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"
	"github.com/portcullis-mta/portcullis/sdk/plugintest"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s:\n got: %s\nwant: %s", name, got, want)
	}
}

// The field for each kind of outcome; the keys are random per run, so the
// messages are signed afresh but the field must not change.
func TestAuthResultsGolden(t *testing.T) {
	srv := dmarcZone(t)
	rk, ek := keys(t)
	s := newStage(t, srv, 0)
	cases := map[string]*sdk.Request{
		"pass":        dataReq(t, sign(t, message("a@example.test"), "example.test", "rsa", rk, time.Time{}), "h.example.test", "b@example.test"),
		"fail":        dataReq(t, sign(t, message("a@example.test"), "other.test", "ed", ek, time.Time{})+"tampered\r\n", "h.other.test", "b@other.test"),
		"null-sender": dataReq(t, message("a@mail.example.co.jp"), "other.test", ""),
	}
	var out strings.Builder
	for _, name := range []string{"pass", "fail", "null-sender"} {
		res := check(t, s, cases[name])
		var v string
		for _, e := range res.Headers {
			if e.Op == sdk.HeaderAdd && e.Name == arField {
				v = e.Value
			}
		}
		// What we write must parse back (RFC 8601 2.2 syntax).
		if id, _, err := authres.Parse(v); err != nil || id != authservID {
			t.Errorf("%s: %q does not parse back: %q, %v", name, v, id, err)
		}
		out.WriteString(name + ": " + arField + ": " + v + "\n")
	}
	golden(t, "authres.golden", out.String())
}

func TestForgedAuthResultsRemoved(t *testing.T) {
	srv := dmarcZone(t)
	s := newStage(t, srv, 0)
	raw := "Authentication-Results: MX.Portcullis.Test; spf=pass smtp.mailfrom=a@example.test; dmarc=pass\r\n" +
		"Authentication-Results: relay.other.test; dkim=pass header.d=other.test\r\n" +
		"Authentication-Results: mx.portcullis.test (forged comment); dkim=pass\r\n" + message("a@example.test")
	res := check(t, s, dataReq(t, raw, "h.other.test", "b@other.test"))
	if len(res.Headers) != 3 {
		t.Fatalf("edits: %+v", res.Headers)
	}
	want := []sdk.HeaderEdit{
		{Op: sdk.HeaderRemove, Name: arField},
		{Op: sdk.HeaderAdd, Name: arField, Value: res.Headers[1].Value},
		{Op: sdk.HeaderAdd, Name: arField, Value: "relay.other.test; dkim=pass header.d=other.test"},
	}
	for i := range want {
		if res.Headers[i] != want[i] {
			t.Errorf("edit %d = %+v, want %+v", i, res.Headers[i], want[i])
		}
	}
	if !strings.HasPrefix(res.Headers[1].Value, authservID+"; spf=pass") || !strings.Contains(res.Headers[1].Value, "dmarc=fail") {
		t.Errorf("our field: %q", res.Headers[1].Value)
	}
	if res.Attrs["forged_authres"] != "2" {
		t.Errorf("forged_authres = %q", res.Attrs["forged_authres"])
	}

	// Without forgery the foreign field is left alone.
	res = check(t, s, dataReq(t, "Authentication-Results: relay.other.test; spf=fail\r\n"+message("a@example.test"), "h", "b@example.test"))
	if len(res.Headers) != 1 || res.Headers[0].Op != sdk.HeaderAdd {
		t.Errorf("edits without forgery: %+v", res.Headers)
	}
}

// The stage over the real plugin protocol, as the gateway runs it.
func TestOverPluginProtocol(t *testing.T) {
	srv := dmarcZone(t)
	rk, _ := keys(t)
	c := plugintest.Start(t, New())
	info, err := c.Info()
	if err != nil || len(info.Phases) != 1 || info.Phases[0] != sdk.PhaseData {
		t.Fatalf("info %+v, %v", info, err)
	}
	if err := c.Configure(sdk.Env{StageName: "msgauth", Hostname: authservID, DNSServers: []string{srv.Addr}}, map[string]any{"max_signatures": 3}); err != nil {
		t.Fatal(err)
	}
	raw := sign(t, message("a@example.test"), "example.test", "rsa", rk, time.Time{})
	req := dataReq(t, raw, "h.other.test", "b@other.test")
	req.Message = plugintest.FileMessage(t, []byte(raw))
	res, err := c.Check(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != sdk.VerdictPass || res.Attrs["dkim"] != "pass" || res.Attrs["dmarc_dkim_aligned"] != "true" {
		t.Errorf("result %+v", res)
	}
}

func TestConfigure(t *testing.T) {
	env := sdk.Env{Hostname: authservID, DNSServers: []string{"127.0.0.1:53"}}
	tests := []struct {
		name string
		cfg  map[string]any
		ok   bool
	}{
		{"defaults", nil, true},
		{"all keys", map[string]any{"authserv_id": "gw.test", "timeout": "5s", "max_signatures": 2, "helo_spf": false}, true},
		{"unknown key", map[string]any{"p": "reject"}, false},
		{"bad timeout", map[string]any{"timeout": "soon"}, false},
		{"zero signatures", map[string]any{"max_signatures": 0}, false},
		{"bad authserv-id", map[string]any{"authserv_id": "a b"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := New().Configure(context.Background(), env, tc.cfg)
			if (err == nil) != tc.ok {
				t.Errorf("err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestServID(t *testing.T) {
	for in, want := range map[string]string{
		"mx.portcullis.test; spf=pass":                 "mx.portcullis.test",
		"(comment) mx.portcullis.test; x":              "mx.portcullis.test",
		"(a (nested \\) one)) mx.portcullis.test 1; x": "mx.portcullis.test",
		"mx.portcullis.test(c);spf=pass":               "mx.portcullis.test",
		"\"mx.portcullis.test\"; none":                 "mx.portcullis.test",
		"  other.test; dkim=pass (mx.portcullis.test)": "other.test",
		"mx.portcullis.test":                           "mx.portcullis.test",
		"":                                             "",
	} {
		if got := servID(in); got != want {
			t.Errorf("servID(%q) = %q, want %q", in, got, want)
		}
	}
}

// The sender's bytes (a quoted local-part in MAIL FROM, d= in a
// signature) must not change what our field says: a reader that honours
// quoted-strings and comments (RFC 8601 2.2), and one that splits at ';'
// as authres.Parse does, both find one result per method, and dmarc=fail.
func TestAuthResultsAdversarialValues(t *testing.T) {
	srv := dmarcZone(t)
	_, ek := keys(t)
	s := newStage(t, srv, 0)
	tests := []struct{ name, raw, mailFrom string }{
		{"quoted local-part with ; and (", message("a@example.test"), `"x;dmarc=pass (y"@other.test`},
		{"quoted local-part with backslash", message("a@example.test"), `"x\"z\\"@other.test`},
		{"d= with backslash and quote", sign(t, message("a@example.test"), `evil\"(.test`, "ed", ek, time.Time{}), "b@other.test"},
		{"d= with ( and )", sign(t, message("a@example.test"), `evil(.test`, "ed", ek, time.Time{}), "b@other.test"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := check(t, s, dataReq(t, tc.raw, "h.other.test", tc.mailFrom))
			v := res.Headers[len(res.Headers)-1].Value
			if strings.ContainsAny(v, "\r\n") {
				t.Fatalf("line break in %q", v)
			}
			_, results, err := authres.Parse(v)
			if err != nil {
				t.Fatalf("%q: %v", v, err)
			}
			var methods []string
			for _, r := range results {
				switch r := r.(type) {
				case *authres.SPFResult:
					methods = append(methods, "spf="+string(r.Value))
				case *authres.DKIMResult:
					methods = append(methods, "dkim")
				case *authres.DMARCResult:
					methods = append(methods, "dmarc="+string(r.Value))
				default:
					methods = append(methods, "other")
				}
			}
			if got := strings.Join(methods, " "); got != "spf=pass dkim dmarc=fail" {
				t.Errorf("authres.Parse read %q from %q", got, v)
			}
			if !strings.Contains(stripComments(v), "; dmarc=fail") {
				t.Errorf("dmarc=fail hidden in a comment or quoted-string: %q", v)
			}
		})
	}
}

// The gateway writes an added field that is not all ASCII as RFC 2047
// encoded words, the whole value in base64: an Authentication-Results field
// holding one UTF-8 character (an SMTPUTF8 sender, a U-label HELO, a
// non-ASCII name in a DNS error) would reach readers downstream as
// "=?utf-8?b?...?=", with neither our authserv-id nor a result readable.
// Domains go in A-labels, a local-part that is not ASCII is left out (RFC
// 8601 2.2 allows "@domain"), and other text has '?' for what is not ASCII.
func TestAuthResultsASCII(t *testing.T) {
	srv := dnsutiltest.New(t,
		`xn--r8jz45g.test. 300 IN TXT "v=spf1 ip4:192.0.2.10 -all"`,
		`weird.test. 300 IN TXT "v=spf1 include:\195\188\255.weird.test -all"`,
	)
	srv.ServFail(`\195\188\255.weird.test`)
	s := newStage(t, srv, 0)
	tests := []struct {
		name, raw, helo, mailFrom string
		want                      string // a part the field must hold
	}{
		{"UTF-8 local-part and U-label domain", message("a@other.test"), "h.other.test", "用户@例え.test", " smtp.mailfrom=@xn--r8jz45g.test;"},
		{"U-label domain", message("a@other.test"), "h.other.test", "a@例え.test", " smtp.mailfrom=a@xn--r8jz45g.test;"},
		{"U-label HELO, null sender", message("a@other.test"), "mx.例え.test", "", " smtp.helo=mx.xn--r8jz45g.test;"},
		{"non-ASCII name in a DNS error", message("a@other.test"), "h.other.test", "a@weird.test", `spf=temperror reason="lookup `},
		{"From domain that is not IDNA", message("ceo@a\u200db.test"), "h.other.test", "a@other.test", `dmarc=permerror reason="bad From domain `},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := check(t, s, dataReq(t, tc.raw, tc.helo, tc.mailFrom))
			v := res.Headers[len(res.Headers)-1].Value
			if !isASCII(v) {
				t.Errorf("not ASCII: %q", v)
			}
			if !strings.Contains(v, tc.want) {
				t.Errorf("%q does not hold %q", v, tc.want)
			}
			if id, _, err := authres.Parse(v); err != nil || id != authservID {
				t.Errorf("%q does not parse back: %q, %v", v, id, err)
			}
		})
	}
}
