package bayes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
)

// Learn learns msg as spam or ham, unconditionally: what the CLI and
// `quarantine release --learn-ham` call when a person has decided. A message
// learned before as the other class moves; as the same class, nothing changes.
func (s *Stage) Learn(ctx context.Context, msg *sdk.Message, spam bool) (Outcome, error) {
	raw, err := readMessage(msg)
	if err != nil {
		return Unchanged, err
	}
	return s.LearnRaw(ctx, raw, spam)
}

// LearnRaw is Learn on the bytes of a message.
func (s *Stage) LearnRaw(ctx context.Context, raw []byte, spam bool) (Outcome, error) {
	store := s.Store()
	if store == nil {
		return Unchanged, errors.New("bayes: stage not configured")
	}
	l := s.Prepare(raw, spam)
	out, err := store.Learn(ctx, []Learned{l}, s.now())
	if err != nil {
		return Unchanged, err
	}
	if g, ok := store.(GramStore); ok && s.Config().GramWeight > 0 && (out[0] == Added || out[0] == Moved) {
		// One step, as the online learners of TREC did; a message moved
		// to the other class is stepped towards it (a logistic
		// regression cannot take a step back exactly).
		ds, dh := gramDelta(spam, out[0] == Moved)
		if err := g.LearnGrams(ctx, ds, dh, func(w Weights) { w.step(l.Grams, spam, gramRate) }); err != nil {
			return out[0], err
		}
	}
	if _, err := s.trim(ctx, false); err != nil {
		slog.Warn("bayes: trimming the token store", "error", err)
	}
	return out[0], nil
}

// gramDelta is the change of the gram model's message counts when a
// message is learned as spam (or ham), moved from the other class or not.
func gramDelta(spam, moved bool) (ds, dh int) {
	d := 0
	if moved {
		d = -1
	}
	if spam {
		return 1, d
	}
	return d, 1
}

// trimEvery is how often learning one message at a time checks the size
// of the store (counting its tokens reads the whole index).
const trimEvery = time.Hour

// trim applies max_tokens (Store.Trim): at the first learn of a process
// and then at most every trimEvery, or now when force is set (after a
// bulk learn).
func (s *Stage) trim(ctx context.Context, force bool) (int, error) {
	store, cfg := s.Store(), s.Config()
	if store == nil || cfg.MaxTokens <= 0 {
		return 0, nil
	}
	s.trimMu.Lock()
	now := s.now()
	if !force && !s.lastTrim.IsZero() && now.Sub(s.lastTrim) < trimEvery {
		s.trimMu.Unlock()
		return 0, nil
	}
	s.lastTrim = now
	s.trimMu.Unlock()
	n, err := store.Trim(ctx, cfg.MaxTokens)
	if n > 0 {
		slog.Info("bayes: token store trimmed", "deleted", n, "max_tokens", cfg.MaxTokens)
	}
	return n, err
}

// AutoLearn is learning decided by a rule (action learn_spam / learn_ham, or
// a threshold on other stages' results), not by a person. Its guard keeps
// the filter from learning its own mistakes, as SpamAssassin's auto-learn does:
//
//   - below the minimum training it learns (that is how a site bootstraps);
//   - it skips a message the classifier already puts beyond the cutoff of the
//     same class: nothing new to learn, and repeated self-confirmation would
//     only make the filter more sure of what it already believes;
//   - it refuses a message the classifier puts autolearn_guard or more on
//     the other side of 0.5 (spam scored at most 0.5-guard, ham at least
//     0.5+guard): when a rule and the statistics disagree that strongly, a
//     person should decide.
//
// It reports whether the message was learned and why not.
func (s *Stage) AutoLearn(ctx context.Context, msg *sdk.Message, spam bool) (learned bool, reason string, err error) {
	raw, err := readMessage(msg)
	if err != nil {
		return false, "", err
	}
	c, err := s.Classify(ctx, raw)
	if err != nil {
		return false, "", err
	}
	cfg := s.Config()
	if ok, why := autolearnAllowed(c, cfg, spam); !ok {
		return false, why, nil
	}
	out, err := s.LearnRaw(ctx, raw, spam)
	if err != nil {
		return false, "", err
	}
	return out != Unchanged, "learned: " + out.String(), nil
}

func autolearnAllowed(c Classification, cfg Config, spam bool) (bool, string) {
	if c.Untrained {
		return true, ""
	}
	switch {
	case spam && c.Score >= cfg.SpamCutoff:
		return false, fmt.Sprintf("already spam (%.4f)", c.Score)
	case !spam && c.Score <= cfg.HamCutoff:
		return false, fmt.Sprintf("already ham (%.4f)", c.Score)
	case spam && c.Score <= 0.5-cfg.AutolearnGuard:
		return false, fmt.Sprintf("refused: classifier says ham (%.4f)", c.Score)
	case !spam && c.Score >= 0.5+cfg.AutolearnGuard:
		return false, fmt.Sprintf("refused: classifier says spam (%.4f)", c.Score)
	}
	return true, ""
}

// splitHeader splits a raw message at its first empty line (LF or CRLF),
// dropping a leading mbox From line.
func splitHeader(raw []byte) (header, body []byte) {
	if bytes.HasPrefix(raw, []byte("From ")) {
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			raw = raw[i+1:]
		}
	}
	for off := 0; off < len(raw); {
		end := bytes.IndexByte(raw[off:], '\n')
		if end < 0 {
			break
		}
		line := raw[off : off+end+1]
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return raw[:off], raw[off+len(line):]
		}
		off += len(line)
	}
	return raw, nil
}

// messageID returns the Message-ID field value of a raw header, unfolded
// and trimmed (RFC 5322 2.2.3: a relay may fold it differently).
func messageID(header []byte) []byte {
	lines := bytes.Split(header, []byte("\n"))
	for i, line := range lines {
		// Blanks may stand before the colon (RFC 5322 4.5, obsolete
		// syntax); a continuation line starts with one and is no name.
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !bytes.EqualFold(bytes.TrimRight(name, " \t"), []byte("message-id")) {
			continue
		}
		v := append([]byte(nil), bytes.TrimSpace(value)...)
		for _, cont := range lines[i+1:] {
			if len(cont) == 0 || (cont[0] != ' ' && cont[0] != '\t') {
				break
			}
			v = append(v, bytes.TrimSpace(cont)...)
		}
		return v
	}
	return nil
}

// writeBody writes body to w in the form that identifies it wherever the
// message was stored: LF line ends (the wire and a quarantine have CRLF,
// a maildir or mbox LF), one level of mbox ">From " quoting taken off, no
// trailing empty lines (an mbox separates messages with one, a client may
// add or drop the last line end).
func writeBody(w io.Writer, body []byte) {
	body = bytes.TrimRight(body, "\r\n\t ")
	for len(body) > 0 {
		line := body
		rest := []byte(nil)
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, rest = body[:i], body[i+1:]
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if t := bytes.TrimLeft(line, ">"); len(t) < len(line) && bytes.HasPrefix(t, []byte("From ")) {
			line = line[1:]
		}
		w.Write(line)
		w.Write([]byte{'\n'})
		body = rest
	}
}
