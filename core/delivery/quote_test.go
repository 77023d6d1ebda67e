package delivery

import (
	"slices"
	"testing"

	"github.com/portcullis-mta/portcullis/core/config"
)

// The queue keeps addresses unquoted, as go-smtp hands them over: a local
// part with a space or a quote must be quoted again on the wire, or the
// next hop sees a syntax error (or another address).
func TestQuotedLocalPartsOnTheWire(t *testing.T) {
	const ehlo = "250-script.test\r\n250 8BITMIME\r\n"
	peer := newScriptPeer(t, func(line string) string { return basicReplies(ehlo, line) })
	cfg := baseConfig(t)
	cfg.Routes = []config.Route{mkRoute([]string{"*"}, peer.addr)}
	w := newWorld(t, cfg)
	w.enqueue("odd one@local.test", []string{"john smith@d.test", `say "hi"@d.test`, "plain@d.test"}, localSender, plainBody)
	w.start()
	w.waitFor("the delivery", func() bool { return len(peer.messages()) == 1 && w.queueEmpty() })
	cmds := peer.commands()
	for _, want := range []string{`MAIL FROM:<"odd one"@local.test>`, `RCPT TO:<"john smith"@d.test>`,
		`RCPT TO:<"say \"hi\""@d.test>`, "RCPT TO:<plain@d.test>"} {
		if !slices.Contains(cmds, want) {
			t.Errorf("no %s in %q", want, cmds)
		}
	}
}
