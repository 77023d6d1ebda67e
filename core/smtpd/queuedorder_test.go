package smtpd

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/core/pipeline"
	"github.com/portcullis-mta/portcullis/core/queue"
	"github.com/portcullis-mta/portcullis/sdk"
)

// handOffStore is a queue whose drafts log "delivery" the moment Commit
// has made the message due, as a delivery worker that takes it at once.
type handOffStore struct {
	queue.Store
	log *slog.Logger
}

func (s handOffStore) NewDraft() (queue.Draft, error) { return s.wrap(s.Store.NewDraft()) }
func (s handOffStore) NewDraftAs(id string) (queue.Draft, error) {
	return s.wrap(s.Store.NewDraftAs(id))
}

func (s handOffStore) wrap(d queue.Draft, err error) (queue.Draft, error) {
	if err != nil {
		return nil, err
	}
	return &handOffDraft{Draft: d, log: s.log}, nil
}

type handOffDraft struct {
	queue.Draft
	log *slog.Logger
}

func (d *handOffDraft) OnDurable(f func()) { d.Draft.(queue.DurableNotifier).OnDurable(f) }

func (d *handOffDraft) Commit(env *queue.Envelope, prepend []byte) error {
	if err := d.Draft.Commit(env, prepend); err != nil {
		return err
	}
	d.log.Info("delivery", "queue_id", d.ID())
	return nil
}

// TestQueuedBeforeDelivery: a message's queued line comes before any line
// about its delivery, which may start as soon as it is committed (and
// after it is durable); a message copied at commit (a subject prefix) too.
func TestQueuedBeforeDelivery(t *testing.T) {
	base := startServer(t, testConfig(t), nil) // for its queue
	run := &ruleRunner{rules: map[sdk.Phase]func(*sdk.Request) *pipeline.Decision{
		sdk.PhaseData: func(r *sdk.Request) *pipeline.Decision {
			if r.Message.Get("Subject") == "tag" {
				return &pipeline.Decision{Action: pipeline.Accept, SubjectPrefix: "[x]"}
			}
			return cont()
		},
	}}
	ts := startServer(t, testConfig(t), func(d *Deps) {
		d.Queue = handOffStore{Store: base.q, log: d.Logger}
		d.Pipeline = run
	})
	r := newRaw(t, ts.addr(), 2)
	r.toData()
	plain := strings.Fields(r.cmd(message("plain")+".", "250 2.0.0"))[2]
	r.cmd("MAIL FROM:<a@example.org>", "250")
	r.cmd("RCPT TO:<bob@example.test>", "250")
	r.cmd("DATA", "354")
	tagged := strings.Fields(r.cmd(message("tag")+".", "250 2.0.0"))[2]
	r.cmd("QUIT", "221")
	waitFor(t, func() bool { return strings.Contains(ts.logs.String(), "msg=disconnect") })
	logs := ts.logs.String()
	for _, id := range []string{plain, tagged} {
		queued := lineIndex(logs, "msg=queued ", "queue_id="+id+" ")
		delivery := lineIndex(logs, "msg=delivery ", "queue_id="+id)
		if queued < 0 || delivery < 0 || queued > delivery {
			t.Errorf("%s: queued line at %d, delivery at %d:\n%s", id, queued, delivery, logs)
		}
	}
}

// lineIndex is the number of the first line of logs that holds all of
// subs, or -1.
func lineIndex(logs string, subs ...string) int {
	for i, l := range strings.Split(logs, "\n") {
		all := true
		for _, s := range subs {
			all = all && strings.Contains(l, s)
		}
		if all {
			return i
		}
	}
	return -1
}
