package smtpd

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/portcullis-mta/portcullis/core/pipeline"
	"github.com/portcullis-mta/portcullis/core/queue"
)

// LearnFunc trains a classifier on a committed message: spam or ham as the
// rule action learn_spam / learn_ham said. open reads the message from the
// store it was committed to; it may fail once delivery has removed it.
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

// learn hands a committed message to Deps.Learn in its own goroutine, after
// the 250 has been decided: the client never waits for learning.
func (s *session) learn(log *slog.Logger, store queue.Store, id string, dec *pipeline.Decision) {
	fn := s.gc.srv.d.Learn
	spam, ok := learnClass(dec)
	if fn == nil || !ok {
		return
	}
	class := "ham"
	if spam {
		class = "spam"
	}
	srv := s.gc.srv.srv
	select {
	case srv.learnSem <- struct{}{}:
	default:
		log.Warn("learning skipped: too many in progress", "learn", class)
		return
	}
	log.Info("learning", "learn", class)
	srv.learning.Add(1)
	go func() {
		defer srv.learning.Done()
		defer func() { <-srv.learnSem }()
		ctx, cancel := context.WithTimeout(context.Background(), learnTimeout)
		defer cancel()
		fn(ctx, spam, id, func() (io.ReadCloser, error) { return store.Open(id) })
	}()
}
