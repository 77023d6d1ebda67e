package msgauth

import (
	"testing"

	"github.com/emersion/go-msgauth/authres"
)

// FuzzAuthResults: whatever the sender's values (MAIL FROM, HELO, d= and
// i=, From, error texts), our Authentication-Results value is printable
// ASCII on one line, so the gateway never encodes it, and parses back
// (RFC 8601 2.2) to our authserv-id and every result we wrote, with the
// properties we set.
func FuzzAuthResults(f *testing.F) {
	f.Add("a@example.test", "h.example.test", "example.test", "@example.test", "reason", "example.test", "")
	f.Add("", "mx.例え.test", "例え.test", "用户@例え.test", "include:ü\xff.example", "例え.test", "bad From")
	f.Add("\"a;b\"@x.test", "(c)", "x;y", "a\\@x.test", "\"quoted\\\"", "x.test", "dmarc=pass")
	f.Add("a@xn--bcher-kva.example", "", "", "", "\r\n\x00\x7f", "", "")
	f.Fuzz(func(t *testing.T, sender, helo, domain, ident, reason, from, fromErr string) {
		r := &report{
			spf:     spfResult{result: "pass", reason: reason},
			sender:  sender,
			helo:    helo,
			dkim:    []sigResult{{result: "fail", domain: domain, ident: ident, reason: reason}},
			dmarc:   outcome{result: "fail", reason: reason},
			from:    from,
			fromErr: fromErr,
		}
		v := r.format(authservID)
		for i := 0; i < len(v); i++ {
			if v[i] < ' ' || v[i] > '~' {
				t.Fatalf("byte %q at %d of %q", v[i], i, v)
			}
		}
		id, res, err := authres.Parse(v)
		if err != nil || id != authservID {
			t.Fatalf("%q parses as %q, %v", v, id, err)
		}
		if len(res) != 3 {
			t.Fatalf("%q parses to %d results, want 3: %#v", v, len(res), res)
		}
		spf, ok1 := res[0].(*authres.SPFResult)
		dkim, ok2 := res[1].(*authres.DKIMResult)
		dmarc, ok3 := res[2].(*authres.DMARCResult)
		if !ok1 || !ok2 || !ok3 || spf.Value != "pass" || dkim.Value != "fail" || dmarc.Value != "fail" {
			t.Fatalf("%q parses to %#v", v, res)
		}
		// authres quotes a value with a tspecial ("="), and Parse gives
		// the quoted-string back as it is.
		uq := func(s string) string {
			if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
				return s[1 : len(s)-1]
			}
			return s
		}
		spf.From, dkim.Domain, dkim.Identifier, dmarc.From = uq(spf.From), uq(dkim.Domain), uq(dkim.Identifier), uq(dmarc.From)
		if spf.From != mailbox(sender) && sender != "" || dkim.Domain != pvalue(domain) || dkim.Identifier != mailbox(ident) || dmarc.From != pvalue(from) {
			t.Fatalf("%q: properties %q %q %q %q, want %q %q %q %q", v, spf.From, dkim.Domain, dkim.Identifier, dmarc.From,
				mailbox(sender), pvalue(domain), mailbox(ident), pvalue(from))
		}
	})
}
