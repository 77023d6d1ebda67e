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

func bayesLearn(st *bayes.Stage, a *bayesArgs, stderr, stdout io.Writer) error {
	ctx := context.Background()
	start := time.Now()
	if s, err := st.Store().Stats(ctx); err == nil && s.OldHashes {
		path := ""
		if b, ok := st.Store().(*bayes.BoltStore); ok {
			path = b.Path()
		}
		fmt.Fprintf(stderr, "portcullis bayes learn: warning: message hashes%s\n", oldHashNote(s, path))
	}
	bar := newProgress(stderr, a)
	defer bar.done()
	tr := bayes.NewTrainer(st)
	tr.Progress = bar.step
	var skips skipped
	for _, class := range []struct {
		spam  bool
		paths []string
	}{{true, a.spam}, {false, a.ham}} {
		for _, p := range class.paths {
			err := msgsrc.Walk(p, func(m msgsrc.Message) error {
				if why := msgsrc.Problem(m.Data); why != "" {
					skips.add(m.Name, why)
					bar.step(1)
					return nil
				}
				return tr.Add(ctx, m.Data, class.spam)
			})
			if err != nil {
				return err
			}
		}
	}
	sum, err := tr.Finish(ctx)
	if err != nil {
		return err
	}
	bar.done()
	total := 0
	for o := range sum.Spam {
		total += sum.Spam[o] + sum.Ham[o]
	}
	el := time.Since(start)
	fmt.Fprintf(stdout, "read %d messages in %s (%.0f/s)\n", total, el.Round(time.Millisecond), float64(total)/el.Seconds())
	fmt.Fprintln(stdout, tallyLine("spam", sum.Spam))
	fmt.Fprintln(stdout, tallyLine("ham ", sum.Ham))
	if line := skips.String(); line != "" {
		fmt.Fprintln(stdout, line)
	}
	fmt.Fprintf(stdout, "train-on-error: %d reinforcements in %d rounds\n", sum.Reinforced, sum.Rounds)
	if sum.Trimmed > 0 {
		fmt.Fprintf(stdout, "max_tokens: %d tokens with the least evidence deleted\n", sum.Trimmed)
	}
	return nil
}

func tallyLine(name string, c [4]int) string {
	return fmt.Sprintf("%s: %d added, %d moved from the other class, %d already known",
		name, c[bayes.Added], c[bayes.Moved], c[bayes.Unchanged])
}

// skipped counts the files that were not learned, by reason, and keeps
// the first name of each so that the summary can point at one.
type skipped struct {
	n       int
	reasons []string
	count   map[string]int
	first   map[string]string
}

func (s *skipped) add(name, why string) {
	if s.count == nil {
		s.count, s.first = map[string]int{}, map[string]string{}
	}
	if s.count[why] == 0 {
		s.reasons = append(s.reasons, why)
		s.first[why] = name
	}
	s.count[why]++
	s.n++
}

func (s *skipped) String() string {
	if s.n == 0 {
		return ""
	}
	var parts []string
	for _, why := range s.reasons {
		parts = append(parts, fmt.Sprintf("%d %s (as %s)", s.count[why], why, s.first[why]))
	}
	return fmt.Sprintf("skipped: %d not learned: %s", s.n, strings.Join(parts, ", "))
}

// progress draws a bar on stderr when stderr is a terminal; otherwise it
// does nothing, so logs and pipes stay clean.
type progress struct {
	w            io.Writer
	total, count int
	on           bool
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
		p.on = false
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
