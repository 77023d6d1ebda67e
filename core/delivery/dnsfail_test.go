package delivery

import (
	"testing"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/queue"
)

// RFC 5321 5.1 and Postfix: when no MX host has an address, a temporary
// lookup failure of any of them defers the mail, whatever order the hosts
// were tried in; only when every host is known not to exist does it bounce.
func TestMXHostLookupTemporaryWins(t *testing.T) {
	home := newPeer(t)
	cfg := baseConfig(t)
	cfg.Queue.Retry = []config.Duration{config.Duration(3600e9)} // one attempt in this test
	cfg.Routes = []config.Route{mkRoute([]string{"local.test"}, home.addr), mkRoute([]string{"*"}, "mx")}
	w := newWorld(t, cfg,
		// flaky.test: its first MX has a broken DNS, the second is stale.
		"flaky.test. 60 IN MX 10 mx1.flaky.test.",
		"flaky.test. 60 IN MX 20 gone.flaky.test.",
		// dead.test: every MX host is gone for good.
		"dead.test. 60 IN MX 10 gone1.dead.test.",
		"dead.test. 60 IN MX 20 gone2.dead.test.",
	)
	w.dns.ServFail("mx1.flaky.test.")
	id := w.enqueue("u@local.test", []string{"x@flaky.test", "y@dead.test"}, localSender, plainBody)
	w.start()
	w.waitFor("the first attempt", func() bool { return w.get(id).Attempts >= 1 })
	for _, r := range w.get(id).Rcpts {
		want := map[string]queue.RcptStatus{"x@flaky.test": queue.RcptPending, "y@dead.test": queue.RcptFailed}[r.Addr]
		if r.Status != want {
			t.Errorf("%s: %s (%s), want %s", r.Addr, r.Status, r.LastReply, want)
		}
	}
}
