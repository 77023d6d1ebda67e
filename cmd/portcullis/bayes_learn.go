package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/portcullis-mta/portcullis/plugins/bayes"
	"github.com/portcullis-mta/portcullis/plugins/bayes/msgsrc"
)

// learnBatch is how many messages go into one bbolt transaction: big enough
// to amortise the fsync, small enough that a running daemon waiting for the
// file lock to reload is not held up for long.
const learnBatch = 500

// learnTally counts outcomes per class for the summary.
type learnTally struct {
	n [2][3]int // [spam?][Outcome]
}

func (t *learnTally) add(spam bool, o bayes.Outcome) {
	i := 0
	if spam {
		i = 1
	}
	t.n[i][o]++
}

func (t *learnTally) line(spam bool) string {
	i, name := 0, "ham "
	if spam {
		i, name = 1, "spam"
	}
	c := t.n[i]
	return fmt.Sprintf("%s: %d added, %d moved from the other class, %d already known",
		name, c[bayes.Added], c[bayes.Moved], c[bayes.Unchanged])
}

func bayesLearn(st *bayes.Stage, a *bayesArgs, stderr, stdout io.Writer) error {
	start := time.Now()
	bar := newProgress(stderr, a)
	var tally learnTally
	var batch []bayes.Learned
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		out, err := st.Store().Learn(context.Background(), batch, time.Now())
		if err != nil {
			return err
		}
		for i, o := range out {
			tally.add(batch[i].Spam, o)
		}
		bar.step(len(batch))
		batch = batch[:0]
		return nil
	}
	for _, class := range []struct {
		spam  bool
		paths []string
	}{{true, a.spam}, {false, a.ham}} {
		for _, p := range class.paths {
			err := msgsrc.Walk(p, func(m msgsrc.Message) error {
				batch = append(batch, st.Prepare(m.Data, class.spam))
				if len(batch) >= learnBatch {
					return flush()
				}
				return nil
			})
			if err != nil {
				bar.done()
				return err
			}
		}
	}
	if err := flush(); err != nil {
		bar.done()
		return err
	}
	bar.done()
	total := 0
	for _, c := range tally.n {
		total += c[0] + c[1] + c[2]
	}
	el := time.Since(start)
	fmt.Fprintf(stdout, "learned %d messages in %s (%.0f/s)\n", total, el.Round(time.Millisecond), float64(total)/el.Seconds())
	fmt.Fprintln(stdout, tally.line(true))
	fmt.Fprintln(stdout, tally.line(false))
	return nil
}

// progress draws a bar on stderr when stderr is a terminal; otherwise it
// does nothing, so logs and pipes stay clean.
type progress struct {
	w           io.Writer
	total, count int
	on          bool
}

func newProgress(w io.Writer, a *bayesArgs) *progress {
	p := &progress{w: w, on: isTerminal(w)}
	if !p.on {
		return p
	}
	// Counting first costs a second read of the sources, which is cheap
	// next to tokenizing and worth a bar with an end.
	for _, path := range append(append([]string{}, a.spam...), a.ham...) {
		_ = msgsrc.Walk(path, func(msgsrc.Message) error { p.total++; return nil })
	}
	return p
}

func (p *progress) step(n int) {
	if !p.on {
		return
	}
	p.count += n
	const width = 40
	frac := 1.0
	if p.total > 0 {
		frac = min(float64(p.count)/float64(p.total), 1)
	}
	fill := int(frac * width)
	fmt.Fprintf(p.w, "\r[%s%s] %3.0f%% %d/%d", strings.Repeat("=", fill), strings.Repeat(" ", width-fill), frac*100, p.count, p.total)
}

func (p *progress) done() {
	if p.on {
		fmt.Fprintln(p.w)
	}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
