package delivery

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-smtp"
	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/queue"
)

// fullStore is a queue whose new messages fail while full is set: a spool
// disk that filled up.
type fullStore struct {
	*queue.Dir
	full atomic.Bool
}

func (s *fullStore) NewDraft() (queue.Draft, error) {
	if s.full.Load() {
		return nil, errors.New("no space left on device")
	}
	return s.Dir.NewDraft()
}

// A failure DSN that cannot be queued (spool full) must not vanish with
// the message: the message stays queued, and the DSN goes out once the
// spool takes it again.
func TestFailureDSNNotLostWhenSpoolFull(t *testing.T) {
	down := newPeer(t)
	down.setRcpt(func(to string) error {
		if strings.HasPrefix(to, "gone") {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	})
	home := newPeer(t)
	cfg := baseConfig(t)
	cfg.Routes = []config.Route{mkRoute([]string{"local.test"}, home.addr), mkRoute([]string{"*"}, down.addr)}
	w := newWorld(t, cfg)
	st := &fullStore{Dir: w.q}
	st.full.Store(true)
	id := w.enqueue("u@local.test", []string{"ok@d.test", "gone@d.test"}, localSender, plainBody)
	w.qs = st
	w.start()
	w.waitFor("two attempts with the spool full", func() bool {
		e, err := w.q.Get(id)
		return err == nil && e.Attempts >= 2
	})
	env := w.get(id)
	for _, r := range env.Rcpts {
		want := map[string]queue.RcptStatus{"ok@d.test": queue.RcptDelivered, "gone@d.test": queue.RcptPending}[r.Addr]
		if r.Status != want {
			t.Errorf("%s: %s (%s), want %s", r.Addr, r.Status, r.LastReply, want)
		}
	}
	if n := len(down.messages()); n != 1 {
		t.Errorf("ok@ got %d copies, want 1", n)
	}
	st.full.Store(false)
	w.waitFor("the DSN once the spool has room", func() bool { return len(home.messages()) == 1 && w.queueEmpty() })
	parseDSN(t, home.messages()[0]).want(t, "Final-Recipient: rfc822; gone@d.test", "Status: 5.1.1")
}
