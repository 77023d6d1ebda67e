package bayes

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// One message, as a rule learns it off the wire (CRLF, our Received on
// top) and as a person later finds it in a maildir (LF), in an mbox (From_
// line, ">From " quoting, the separating empty line) or re-folded by a
// relay, is one message: learning it as the other class moves it instead
// of counting it in both.
func TestHashSameMessageWhereverStored(t *testing.T) {
	lf := "From: a@example.org\nSubject: offer\nMessage-ID: <77@example.org>\n\ncash now\nFrom the desk of the CEO\n"
	wire := "Received: from x by mx; Fri, 27 Nov 2026 06:00:00 +0000\r\n" + strings.ReplaceAll(lf, "\n", "\r\n")
	copies := map[string]string{
		"maildir (LF)":       lf,
		"no final line end":  strings.TrimSuffix(lf, "\n"),
		"mbox":               "From a@example.org Mon Nov  2 10:00:00 2026\n" + strings.Replace(lf, "\nFrom the", "\n>From the", 1) + "\n",
		"refolded id":        strings.Replace(lf, "Message-ID: <77@", "Message-ID:\n <77@", 1),
		"LF and CRLF mixed":  strings.Replace(wire, "cash now\r\n", "cash now\n", 1),
		"empty line w/ CRLF": strings.ReplaceAll(lf, "\n\n", "\r\n\r\n"),
	}
	want := HashMessage([]byte(wire))
	for name, raw := range copies {
		if HashMessage([]byte(raw)) != want {
			t.Errorf("%s: another hash than the wire copy", name)
		}
	}
	for name, raw := range map[string]string{
		"other body":       strings.Replace(lf, "cash now", "cash later", 1),
		"other Message-ID": strings.Replace(lf, "<77@", "<78@", 1),
	} {
		if HashMessage([]byte(raw)) == want {
			t.Errorf("%s: same hash", name)
		}
	}

	st := newTestStage(t, nil)
	ctx := context.Background()
	if o, err := st.LearnRaw(ctx, []byte(wire), true); err != nil || o != Added {
		t.Fatalf("wire copy as spam: %v %v", o, err)
	}
	if o, err := st.LearnRaw(ctx, []byte(copies["mbox"]), false); err != nil || o != Moved {
		t.Fatalf("mbox copy as ham: %v %v, want moved", o, err)
	}
	if tot, _ := st.Store().Totals(ctx); tot != (Totals{Spam: 0, Ham: 1}) {
		t.Errorf("totals %+v, want 0 spam 1 ham", tot)
	}
}

// A ham filed by mistake under --spam and found again under --ham in one
// run ends up ham, counted once: the train-on-error rounds once reinforced
// the stale spam entry (a hammy message is no clear spam), which moved the
// message back to spam.
func TestTrainerLaterLabelWins(t *testing.T) {
	st := newTestStage(t, map[string]any{"min_spam": 1, "min_ham": 1})
	ctx := context.Background()
	tr := NewTrainer(st)
	dup := synth(200, false)
	for i := 0; i < 40; i++ {
		if err := tr.Add(ctx, synth(i, true), true); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.Add(ctx, dup, true); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40; i++ {
		if err := tr.Add(ctx, synth(i+100, false), false); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.Add(ctx, dup, false); err != nil {
		t.Fatal(err)
	}
	sum, err := tr.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Ham[Moved] != 1 {
		t.Errorf("summary %+v, want one ham moved", sum)
	}
	stats, err := st.Store().Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stats.SpamMessages != 40 || stats.HamMessages != 41 {
		t.Errorf("%d spam, %d ham messages; want 40 and 41 (the duplicate as ham)", stats.SpamMessages, stats.HamMessages)
	}
	if stats.GramModel != (Totals{Spam: 40, Ham: 41}) {
		t.Errorf("gram model learned %+v, want 40 spam 41 ham", stats.GramModel)
	}
	if o, err := st.LearnRaw(ctx, dup, false); err != nil || o != Unchanged {
		t.Errorf("the duplicate learned as ham once more: %v %v, want unchanged", o, err)
	}
}

// When another process holds the file's lock past lockTimeout, the error
// says so (bbolt's own is a bare "timeout").
func TestLockedStoreSaysSo(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.bayes.db")
	st, _ := OpenBolt(path)
	ctx := context.Background()
	if _, err := st.Learn(ctx, []Learned{{Hash: MsgHash{1}, Keys: []Key{1}, Spam: true}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	holder, err := bolt.Open(path, 0o600, nil) // another writer, as `bayes learn` would be
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	old := lockTimeout
	lockTimeout = time.Millisecond // the lock is held throughout: no race
	defer func() { lockTimeout = old }()
	_, err = st.Learn(ctx, []Learned{{Hash: MsgHash{2}, Keys: []Key{1}, Spam: true}}, time.Now())
	if err == nil || !strings.Contains(err.Error(), "locked by another process") || !errors.Is(err, berrors.ErrTimeout) {
		t.Errorf("learn on a locked file: %v", err)
	}
	if _, err := st.Stats(ctx); err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Errorf("stats on a locked file: %v", err)
	}
}

// messageID reads the field however its name is written: any case, and
// with blanks before the colon (RFC 5322 4.5), as the gateway's header
// scan does; a folded value is joined; a continuation line is no field.
func TestMessageIDField(t *testing.T) {
	for _, tc := range []struct{ header, want string }{
		{"Subject: x\r\nMessage-ID: <a@b.test>\r\n", "<a@b.test>"},
		{"message-id:<a@b.test>\n", "<a@b.test>"},
		{"Message-ID : <a@b.test>\r\n", "<a@b.test>"},
		{"Message-ID\t:\r\n <a@b.test>\r\n", "<a@b.test>"},
		{"Subject: x\r\n message-id: <no@b.test>\r\n", ""},
		{"Message-IDs: <no@b.test>\r\n", ""},
	} {
		if got := string(messageID([]byte(tc.header))); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.header, got, tc.want)
		}
	}
}
