package delivery

import (
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/queue"
)

// RFC 6531 3.2 and Postfix: a message that came with SMTPUTF8 goes to a
// next hop without it when nothing in it needs it (envelope and header all
// ASCII), without the parameter; one that does need it fails (5.6.7).
func TestSMTPUTF8ToPeerWithout(t *testing.T) {
	const ehlo = "250-script.test\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n"
	down := newScriptPeer(t, func(line string) string { return basicReplies(ehlo, line) })
	home := newPeer(t)
	cfg := baseConfig(t)
	cfg.Routes = []config.Route{mkRoute([]string{"local.test"}, home.addr), mkRoute([]string{"*"}, down.addr)}
	w := newWorld(t, cfg)
	utf8 := func(e *queue.Envelope) { e.SMTPUTF8, e.BodyType = true, "8BITMIME" }
	w.enqueue("u@local.test", []string{"ascii@d.test"}, localSender, plainBody+"caf\xc3\xa9 in the body\r\n", utf8)
	w.enqueue("u@local.test", []string{"j\xc3\xb6rg@d.test"}, localSender, plainBody, utf8)
	w.enqueue("u@local.test", []string{"hdr@d.test"}, localSender,
		"From: a@local.test\r\nSubject: caf\xc3\xa9\r\n\r\nhello\r\n", utf8)
	w.start()
	w.waitFor("one delivery, two DSNs", func() bool { return len(home.messages()) == 2 && w.queueEmpty() })
	if m := down.messages(); len(m) != 1 || !strings.Contains(m[0], "in the body") {
		t.Fatalf("next hop got %q, want the ASCII-envelope message only", m)
	}
	for _, c := range down.commands() {
		if strings.HasPrefix(c, "MAIL") && strings.Contains(c, "SMTPUTF8") {
			t.Errorf("%q to a server that does not offer SMTPUTF8", c)
		}
	}
	all := home.messages()[0].data + home.messages()[1].data
	for _, s := range []string{"Status: 5.6.7", "j\xc3\xb6rg@d.test", "hdr@d.test"} {
		if !strings.Contains(all, s) {
			t.Errorf("DSNs lack %q", s)
		}
	}
}
