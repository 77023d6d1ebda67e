package delivery

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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
	// The log says what happened to the DSN, once: it was not dropped
	// (an ERROR "DSN dropped" paged the admin about a bounce that went
	// out later), and the line that says it waits names the cause.
	logs := w.logs.String()
	if strings.Contains(logs, "DSN dropped") {
		t.Errorf("a failure DSN that waits for the spool is logged as dropped:\n%s", logs)
	}
	warned := false
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, `msg="delivery: failure DSN not queued; the message stays queued to try again" queue_id=`+id) {
			warned = true
			if !strings.Contains(l, `err="no space left on device"`) {
				t.Errorf("the warning does not name the cause: %s", l)
			}
		}
	}
	if !warned {
		t.Errorf("no warning for the DSN not queued:\n%s", logs)
	}
}

// noRecordStore is a queue whose lease updates fail while full is set: a
// spool disk that filled up after the message was queued.
type noRecordStore struct {
	*queue.Dir
	full  atomic.Bool
	fails atomic.Int32
}

func (s *noRecordStore) Lease(now time.Time) (queue.Lease, error) {
	l, err := s.Dir.Lease(now)
	if err != nil {
		return nil, err
	}
	return &noRecordLease{Lease: l, s: s}, nil
}

type noRecordLease struct {
	queue.Lease
	s *noRecordStore
}

func (l *noRecordLease) Update(env *queue.Envelope) error {
	if l.s.full.Load() {
		l.s.fails.Add(1)
		return errors.New("no space left on device")
	}
	return l.Lease.Update(env)
}

func (l *noRecordLease) Postpone(until time.Time) error {
	return l.Lease.(postponer).Postpone(until)
}

// An outcome that cannot be recorded (the spool disk full when the lease
// is updated) is kept in memory and the record tried again later: the
// recipient delivered is not sent again, attempt after attempt, hundreds
// of times a second (as it was when the message was given back due at
// once), nor is the deferred one retried before its time. Once the disk
// has room the record is written and the message goes on as scheduled.
func TestUnrecordedOutcomeNotResent(t *testing.T) {
	defer func(d time.Duration) { recordRetry = d }(recordRetry)
	recordRetry = 50 * time.Millisecond
	down := newPeer(t)
	var laterTries atomic.Int32
	down.setRcpt(func(to string) error {
		if strings.HasPrefix(to, "later") {
			laterTries.Add(1)
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "mailbox busy"}
		}
		return nil
	})
	cfg := baseConfig(t)
	cfg.Queue.Retry = []config.Duration{config.Duration(time.Hour)}
	cfg.Routes = []config.Route{mkRoute([]string{"*"}, down.addr)}
	w := newWorld(t, cfg)
	st := &noRecordStore{Dir: w.q}
	st.full.Store(true)
	id := w.enqueue("u@local.test", []string{"ok@d.test", "later@d.test"}, localSender, plainBody)
	w.qs = st
	w.start()
	w.waitFor("the record tried three times", func() bool { return st.fails.Load() >= 3 })
	if n, m := len(down.messages()), laterTries.Load(); n != 1 || m != 1 {
		t.Errorf("while the record fails: ok@ got %d copies, later@ was tried %d times; want 1 and 1", n, m)
	}
	st.full.Store(false)
	w.waitFor("the outcome recorded", func() bool {
		e := w.get(id)
		return e.Attempts == 1 && e.NextAttempt.After(time.Now().Add(50*time.Minute))
	})
	e := w.get(id)
	if e.Rcpts[0].Status != queue.RcptDelivered || e.Rcpts[1].Status != queue.RcptPending || e.Rcpts[1].Attempts != 1 {
		t.Errorf("recorded %s and %s (attempts %d), want delivered and pending after 1", e.Rcpts[0].Status, e.Rcpts[1].Status, e.Rcpts[1].Attempts)
	}
	if n, m := len(down.messages()), laterTries.Load(); n != 1 || m != 1 {
		t.Errorf("after the record: ok@ got %d copies, later@ was tried %d times; want 1 and 1", n, m)
	}
	if !strings.Contains(w.logs.String(), "the outcome is kept in memory") {
		t.Errorf("no log line for the failed record:\n%s", w.logs.String())
	}
}

// The same with a retry that falls due while the record still fails: the
// kept outcome is recorded before anything is sent, so the deferred
// recipient waits for the disk (a message parked or given back in between
// cannot drop the outcome either: nothing goes out before the record), and
// the delivered one gets no second copy when the disk has room again.
func TestUnrecordedOutcomeRecordedBeforeRetry(t *testing.T) {
	defer func(d time.Duration) { recordRetry = d }(recordRetry)
	recordRetry = 30 * time.Millisecond
	down := newPeer(t)
	var laterTries atomic.Int32
	down.setRcpt(func(to string) error {
		if strings.HasPrefix(to, "later") && laterTries.Add(1) == 1 {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "mailbox busy"}
		}
		return nil
	})
	cfg := baseConfig(t)
	cfg.Queue.Retry = []config.Duration{config.Duration(10 * time.Millisecond)}
	cfg.Routes = []config.Route{mkRoute([]string{"*"}, down.addr)}
	w := newWorld(t, cfg)
	st := &noRecordStore{Dir: w.q}
	st.full.Store(true)
	w.enqueue("u@local.test", []string{"ok@d.test", "later@d.test"}, localSender, plainBody)
	w.qs = st
	w.start()
	w.waitFor("the record tried five times, the retry long due", func() bool { return st.fails.Load() >= 5 })
	if n, m := len(down.messages()), laterTries.Load(); n != 1 || m != 1 {
		t.Errorf("while the record fails: %d messages, later@ tried %d times; want 1 and 1", n, m)
	}
	st.full.Store(false)
	w.waitFor("later@ delivered on its retry", w.queueEmpty)
	ok := 0
	for _, msg := range down.messages() {
		for _, r := range msg.rcpts {
			if r == "ok@d.test" {
				ok++
			}
		}
	}
	if ok != 1 || laterTries.Load() != 2 {
		t.Errorf("ok@ got %d copies, later@ tried %d times; want 1 and 2", ok, laterTries.Load())
	}
}

// A delay notice that cannot be queued (spool full) is tried again at the
// next attempt, and the log says so, with the cause: it used to say
// "DSN dropped" at ERROR, for a notice that went out a retry later.
func TestDelayDSNNotQueuedLogged(t *testing.T) {
	down := newPeer(t)
	down.setRcpt(func(string) error { return &smtp.SMTPError{Code: 450, Message: "not now"} })
	home := newPeer(t)
	cfg := baseConfig(t)
	cfg.Queue.Retry = []config.Duration{config.Duration(20 * time.Millisecond)}
	cfg.Queue.DelayNotice = config.Duration(time.Nanosecond)
	cfg.Routes = []config.Route{mkRoute([]string{"local.test"}, home.addr), mkRoute([]string{"*"}, down.addr)}
	w := newWorld(t, cfg)
	st := &fullStore{Dir: w.q}
	st.full.Store(true)
	id := w.enqueue("u@local.test", []string{"x@d.test"}, localSender, plainBody)
	w.qs = st
	w.start()
	w.waitFor("two attempts with the spool full", func() bool { return w.get(id).Attempts >= 2 })
	st.full.Store(false)
	w.waitFor("the delay notice once the spool has room", func() bool { return len(home.messages()) == 1 })
	parseDSN(t, home.messages()[0]).want(t, "Action: delayed")
	logs := w.logs.String()
	if strings.Contains(logs, "DSN dropped") {
		t.Errorf("a delay notice tried again is logged as dropped:\n%s", logs)
	}
	want := `msg="delivery: delay DSN not queued; it is tried again at the next attempt" queue_id=` + id +
		` to=u@local.test err="no space left on device"`
	if !strings.Contains(logs, want) {
		t.Errorf("log lacks %q:\n%s", want, logs)
	}
}
