package delivery

import (
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/delivery/smtpc"
)

// RFC 5321 4.5.3.1.6: no line over 998 octets goes to the next hop. A
// 1,500-byte header line and a 20,000-byte body line arrive broken by
// CRLF SP (Postfix's smtp_line_length_limit), the content otherwise the
// same; a message signed at delivery is signed as folded, so it verifies.
func TestLongLinesFolded(t *testing.T) {
	p := newScriptPeer(t, func(line string) string { return basicReplies(pipeliningEHLO, line) })
	cfg := baseConfig(t)
	cfg.Routes = []config.Route{mkRoute([]string{"*"}, p.addr)}
	w := newWorld(t, cfg)
	record := w.signing()
	longHeader := "X-Long: " + strings.Repeat("h", 1500)
	longBody := strings.Repeat("0123456789", 2000)
	msg := func(from string) string {
		return "From: " + from + "\r\nTo: x@d.test\r\nSubject: long\r\n" + longHeader + "\r\n\r\nshort\r\n" + longBody + "\r\nend\r\n"
	}
	w.enqueue("u@local.test", []string{"x@d.test"}, localSender, msg("u@local.test")) // signed
	w.enqueue("u@other.test", []string{"y@d.test"}, localSender, msg("u@other.test")) // no key: unsigned
	w.start()
	w.waitFor("two deliveries", func() bool { return len(p.messages()) == 2 && w.queueEmpty() })
	signed := 0
	for _, got := range p.messages() {
		for i, l := range strings.Split(strings.TrimSuffix(got, "\r\n"), "\r\n") {
			if len(l) > smtpc.MaxLine {
				t.Errorf("line %d has %d octets", i, len(l))
			}
		}
		body := got
		if strings.HasPrefix(got, "DKIM-Signature:") {
			signed++
			vs, err := dkim.VerifyWithOptions(strings.NewReader(got), &dkim.VerifyOptions{
				LookupTXT: func(name string) ([]string, error) { return []string{record}, nil },
			})
			if err != nil || len(vs) != 1 || vs[0].Err != nil {
				t.Errorf("the signature does not verify at the next hop: %v %+v", err, vs)
			}
			// Drop the signature field (folded itself) before unfolding.
			end := strings.Index(got, "\r\nFrom: ")
			body = got[end+2:]
		}
		from := "u@other.test"
		if strings.Contains(body, "From: u@local.test") {
			from = "u@local.test"
		}
		if un := strings.ReplaceAll(body, "\r\n ", ""); un != msg(from) {
			t.Errorf("from %s: the content differs once the folds are removed", from)
		}
		if !strings.Contains(body, "\r\n "+strings.Repeat("0123456789", 5)) {
			t.Errorf("from %s: the long body line is not folded", from)
		}
	}
	if signed != 1 {
		t.Errorf("%d signed messages, want 1", signed)
	}
}
