package smtpd

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/portcullis-mta/portcullis/core/pipeline"
	"github.com/portcullis-mta/portcullis/core/queue"
)

// LearnFunc trains a classifier on a committed message (queueID): spam or
// ham as the rule action learn_spam / learn_ham said. A message the data
// phase discarded or rejected (a spam trap's) is learned too, under its
// draft's ID. open reads the
// message as the data phase saw it; it stays readable until LearnFunc
// returns, even when delivery has removed the message meanwhile.
type LearnFunc func(ctx context.Context, spam bool, queueID string, open func() (io.ReadCloser, error))

// learnSlots bounds the learning running at once: learning is best effort
// and must never pile up behind a slow classifier while mail keeps coming.
const learnSlots = 4

// learnTimeout bounds one learning call.
const learnTimeout = time.Minute

// learnClass reports what the decision's tags ask to learn; with both a
// learn_spam and a learn_ham rule matching, the later rule wins, as the
// tags are in rule order.
func learnClass(dec *pipeline.Decision) (spam, ok bool) {
	if dec == nil {
		return false, false
	}
	for _, t := range dec.Tags {
		switch t {
		case "learn:spam":
			spam, ok = true, true
		case "learn:ham":
			spam, ok = false, true
		}
	}
	return spam, ok
}

// learnJob is a learn event prepared before the commit: it holds a slot
// and the spool file open, so that delivery removing the message right
// after the 250 cannot take it from under the learner.
type learnJob struct {
	srv       *Server
	fn        LearnFunc
	spam      bool
	class     string
	f         *os.File
	data      []byte // the bytes, when the draft held them in memory
	off, size int64
}

// memoryDraft is a draft that holds its bytes in memory (the queue's
// intake log): its scratch file is reused by the next message, so a learner
// that reads after the 250 must take a copy.
type memoryDraft interface{ Bytes() []byte }

// prepareLearn returns the learn event of the data-phase decision, or nil
// when there is none, no Learn hook, or no free slot (logged). The bytes
// handed to Learn are those the data phase judged (the section of the
// draft the stages read), without the header edits the rules make at
// commit: a filter must not learn its own markup.
func (s *session) prepareLearn(log *slog.Logger, d queue.Draft, dec *pipeline.Decision, size int64) *learnJob {
	fn := s.gc.srv.d.Learn
	spam, ok := learnClass(dec)
	if fn == nil || !ok {
		return nil
	}
	j := &learnJob{srv: s.gc.srv.srv, fn: fn, spam: spam, class: "ham", off: d.Offset(), size: size}
	if spam {
		j.class = "spam"
	}
	select {
	case j.srv.learnSem <- struct{}{}:
	default:
		log.Warn("learning skipped: too many in progress", "learn", j.class)
		return nil
	}
	if md, ok := d.(memoryDraft); ok {
		if b := md.Bytes(); b != nil && int64(len(b)) >= j.off+size {
			j.data = append([]byte(nil), b[j.off:j.off+size]...)
			return j
		}
	}
	// Commit renames the draft and delivery may delete it; an open
	// descriptor keeps the bytes readable until the learner is done.
	f, err := os.Open(d.Path())
	if err != nil {
		<-j.srv.learnSem
		log.Warn("learning skipped", "learn", j.class, "err", err)
		return nil
	}
	j.f = f
	return j
}

// cancel drops a prepared event (the commit failed).
func (j *learnJob) cancel() {
	if j == nil {
		return
	}
	if j.f != nil {
		j.f.Close()
	}
	<-j.srv.learnSem
}

// start hands the committed message id to Learn in its own goroutine: the
// client's 250 never waits for learning.
func (j *learnJob) start(log *slog.Logger, id string) {
	if j == nil {
		return
	}
	log.Info("learning", "learn", j.class)
	j.srv.learning.Add(1)
	go func() {
		defer j.srv.learning.Done()
		defer func() { <-j.srv.learnSem }()
		ctx, cancel := context.WithTimeout(context.Background(), learnTimeout)
		defer cancel()
		if j.data != nil {
			j.fn(ctx, j.spam, id, func() (io.ReadCloser, error) {
				return io.NopCloser(bytes.NewReader(j.data)), nil
			})
			return
		}
		defer j.f.Close()
		j.fn(ctx, j.spam, id, func() (io.ReadCloser, error) {
			return io.NopCloser(io.NewSectionReader(j.f, j.off, j.size)), nil
		})
	}()
}
