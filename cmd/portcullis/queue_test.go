package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/queue"
)

// spoolFixture is a config file with a queue and a quarantine directory.
type spoolFixture struct {
	cfg         string
	queue, hold string
}

func newSpoolFixture(t *testing.T) *spoolFixture {
	t.Helper()
	dir := t.TempDir()
	f := &spoolFixture{cfg: filepath.Join(dir, "portcullis.yaml"),
		queue: filepath.Join(dir, "spool"), hold: filepath.Join(dir, "held")}
	conf := "hostname: mx.example.test\nlisteners: [{name: mx, address: '127.0.0.1:2525'}]\n" +
		"queue: {dir: spool, quarantine_dir: held}\n"
	if err := os.WriteFile(f.cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// store opens one of the fixture's directories as the daemon would.
func (f *spoolFixture) store(t *testing.T, dir string) *queue.Dir {
	t.Helper()
	d, err := queue.Open(dir, queue.Options{Poll: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

var t0 = time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC)

func put(t *testing.T, s queue.Store, env *queue.Envelope, prepend, body string) string {
	t.Helper()
	dr, err := s.NewDraft()
	if err != nil {
		t.Fatal(err)
	}
	dr.Write([]byte(body))
	if err := dr.Commit(env, []byte(prepend)); err != nil {
		t.Fatal(err)
	}
	return dr.ID()
}

func runSpool(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := dispatch(args, &out, &errb)
	return code, out.String(), errb.String()
}

const (
	testHeader = "Received: from client.example.test by mx.example.test; Fri, 27 Nov 2026 06:00:00 +0000\r\n"
	testBody   = "From: a@example.org\r\nSubject: quarterly report\r\n\r\nsecret body text\r\n"
)

func TestQueueListAndShow(t *testing.T) {
	f := newSpoolFixture(t)
	q := f.store(t, f.queue)
	env1 := &queue.Envelope{From: "a@example.org", Received: t0, NextAttempt: t0, Attempts: 1,
		Client: queue.Client{IP: "192.0.2.7", HELO: "client.example.test", TLS: true},
		Rcpts: []*queue.Recipient{
			{Addr: "x@example.test", Status: queue.RcptDelivered, Attempts: 1},
			{Addr: "y@example.test", Status: queue.RcptPending, Attempts: 1,
				LastReply: "451 4.2.1 mailbox busy", LastHop: "mx.example.test[10.0.0.5]"}}}
	id1 := put(t, q, env1, testHeader, testBody)
	later := time.Date(2099, 1, 2, 3, 4, 5, 0, time.UTC)
	env2 := &queue.Envelope{From: "", Received: t0, NextAttempt: later, IsDSN: true,
		Rcpts: []*queue.Recipient{{Addr: "z@example.org", Status: queue.RcptPending}}}
	id2 := put(t, q, env2, "", "Subject: bounce\r\n\r\n")

	code, out, errs := runSpool("queue", "list", "-c", f.cfg)
	size1 := len(testHeader + testBody)
	want := fmt.Sprintf(`ID                     SIZE  RECEIVED (UTC)       NEXT ATTEMPT         TRIES  SENDER
%s %10d  2026-11-27 06:00:00  now                      1  <a@example.org>
    x@example.test  delivered (1 attempt)
    y@example.test  pending (1 attempt)  451 4.2.1 mailbox busy [mx.example.test[10.0.0.5]]
%s         19  2026-11-27 06:00:00  2099-01-02 03:04:05      0  <>
    z@example.org  pending
-- 2 messages, %d bytes, 2 recipients pending
`, id1, size1, id2, size1+19)
	if code != 0 || out != want || errs != "" {
		t.Fatalf("queue list: %d, stderr %q\n got:\n%s\nwant:\n%s", code, errs, out, want)
	}

	code, out, _ = runSpool("queue", "show", id1, "-c", f.cfg)
	for _, s := range []string{"ID:           " + id1, "Sender:       <a@example.org>",
		"Client:       192.0.2.7 helo=client.example.test tls", "Attempts:     1",
		"  y@example.test  pending (1 attempt)  451 4.2.1 mailbox busy",
		"\nReceived: from client.example.test", "\nSubject: quarterly report\n"} {
		if !strings.Contains(out, s) {
			t.Errorf("queue show lacks %q:\n%s", s, out)
		}
	}
	if code != 0 || strings.Contains(out, "secret body text") {
		t.Errorf("queue show: exit %d, or it printed the body:\n%s", code, out)
	}
	code, out, _ = runSpool("queue", "show", "--full", id1, "-c", f.cfg)
	if code != 0 || !strings.HasSuffix(out, "\n\n"+testHeader+testBody) || !strings.HasPrefix(out, "ID:           "+id1) {
		t.Errorf("queue show --full does not end with the whole message:\n%s", out)
	}

	// While the daemon delivers id1, list marks it; --json says the same.
	l, err := q.LeaseID(id1)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	code, out, _ = runSpool("queue", "list", "-c", f.cfg)
	if mark := "\n" + id1 + "*" + fmt.Sprintf("%10d", size1); code != 0 || !strings.Contains(out, mark) {
		t.Errorf("queue list while delivering lacks %q:\n%s", mark, out)
	}
	// The ID copied from that line, mark and all, is the message's.
	if code, out, errs := runSpool("queue", "show", id1+"*", "-c", f.cfg); code != 0 || !strings.HasPrefix(out, "ID:           "+id1+"\n") {
		t.Errorf("queue show %s*: %d %q %q", id1, code, out, errs)
	}
	code, out, _ = runSpool("queue", "list", "--json", "-c", f.cfg)
	var got []struct {
		ID     string `json:"id"`
		Size   int64  `json:"size"`
		Leased bool   `json:"leased"`
		Rcpts  []struct {
			Addr, Status string
		} `json:"rcpts"`
	}
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil {
		t.Fatalf("queue list --json: %d %v\n%s", code, err, out)
	}
	if len(got) != 2 || got[0].ID != id1 || !got[0].Leased || got[0].Size != int64(size1) ||
		got[1].Leased || got[1].Rcpts[0].Addr != "z@example.org" || got[1].Rcpts[0].Status != "pending" {
		t.Errorf("queue list --json = %+v", got)
	}
}

func TestQueueFlushDelete(t *testing.T) {
	f := newSpoolFixture(t)
	q := f.store(t, f.queue)
	later := time.Now().Add(time.Hour)
	mk := func() string {
		return put(t, q, &queue.Envelope{From: "a@example.org", NextAttempt: later,
			Rcpts: []*queue.Recipient{{Addr: "x@example.test", Status: queue.RcptPending}}}, "", testBody)
	}
	a, b := mk(), mk()
	due := func(id string) bool {
		env, err := q.Get(id)
		return err == nil && !env.NextAttempt.After(time.Now())
	}

	if code, out, _ := runSpool("queue", "flush", a, "-c", f.cfg); code != 0 || out != a+": due now\n" || !due(a) || due(b) {
		t.Fatalf("flush one: %d %q, a due %v, b due %v", code, out, due(a), due(b))
	}
	if code, _, _ := runSpool("queue", "-c", f.cfg, "flush"); code != 0 || !due(b) {
		t.Fatalf("flush all: %d, b due %v", code, due(b))
	}

	// A message being delivered (leased by the daemon) cannot be deleted.
	l, err := q.LeaseID(a)
	if err != nil {
		t.Fatal(err)
	}
	code, out, errs := runSpool("queue", "delete", a, "-c", f.cfg)
	if code != 1 || out != "" || !strings.Contains(errs, "message "+a+" is being delivered") {
		t.Fatalf("delete leased: %d %q %q", code, out, errs)
	}
	l.Release()
	if code, out, _ := runSpool("queue", "delete", a, "-c", f.cfg); code != 0 || out != a+": deleted\n" {
		t.Fatalf("delete: %d %q", code, out)
	}
	if _, err := q.Get(a); err != queue.ErrNotFound {
		t.Fatalf("deleted message still there: %v", err)
	}
	if _, err := q.Get(b); err != nil {
		t.Fatalf("the other message went too: %v", err)
	}
}

func TestSpoolErrors(t *testing.T) {
	f := newSpoolFixture(t)
	saved := bounceHook // a binary without delivery built in
	bounceHook = nil
	t.Cleanup(func() { bounceHook = saved })
	tests := []struct {
		name     string
		args     []string
		code     int
		inStderr string
	}{
		{"unknown ID", []string{"queue", "show", "DN5T0NYD4GPFW5FQ"}, 1, "no such message: DN5T0NYD4GPFW5FQ"},
		{"malformed ID", []string{"queue", "delete", "../../etc/passwd"}, 1, `"../../etc/passwd" is not a queue ID`},
		{"ID too long", []string{"quarantine", "release", "DN5T0NYD4GPFW5FQ0"}, 1, "is not a queue ID"},
		{"traversal in quarantine", []string{"quarantine", "show", "../spool/DN5T0NYD4GPFW5FQ"}, 1, "is not a queue ID"},
		{"made-up ID", []string{"queue", "show", "NOSUCHID"}, 1, `no such message: "NOSUCHID" is not a queue ID`},
		{"made-up ID in quarantine", []string{"quarantine", "delete", "nosuch"}, 1, "no such message"},
		{"lower case is the same ID", []string{"queue", "show", "dn5t0nyd4gpfw5fq"}, 1, "no such message: DN5T0NYD4GPFW5FQ"},
		{"flush unknown", []string{"queue", "flush", "DN5T0NYD4GPFW5FQ"}, 1, "no such message"},
		{"bounce without delivery", []string{"queue", "bounce", "DN5T0NYD4GPFW5FQ"}, 1,
			"queue bounce: delivery not built into this binary"},
		{"quarantine unknown", []string{"quarantine", "release", "DN5T0NYD4GPFW5FQ"}, 1, "no such message"},
		{"no verb", []string{"queue"}, 2, "portcullis queue: missing subcommand (bounce, delete, flush, list or show)\nusage: portcullis queue"},
		{"unknown verb", []string{"queue", "purge"}, 2, `portcullis queue: unknown subcommand "purge" (want bounce, delete, flush, list or show)`},
		{"show without ID", []string{"queue", "show"}, 2, "portcullis queue show: missing ID\nusage: portcullis queue"},
		{"delete two", []string{"queue", "delete", "A", "B"}, 2, `queue delete: one ID at a time, got "B" too`},
		{"list with ID", []string{"queue", "list", "A"}, 2, `queue list: takes no ID, got "A"`},
		{"flush two", []string{"queue", "flush", "A", "B"}, 2, `queue flush: one ID at a time, got "B" too`},
		{"unknown flag", []string{"queue", "list", "--all"}, 2, "flag provided but not defined"},
		{"learn-ham on queue", []string{"queue", "flush", "--learn-ham"}, 2, "not defined"},
		{"learn-ham with list", []string{"quarantine", "list", "--learn-ham"}, 2, "goes with release"},
		{"quarantine flush", []string{"quarantine", "flush"}, 2, `quarantine: unknown subcommand "flush" (want delete, list, release or show)`},
		{"quarantine release without ID", []string{"quarantine", "release"}, 2, "portcullis quarantine release: missing ID\n"},
		{"json with show", []string{"queue", "show", "--json", "DN5T0NYD4GPFW5FQ"}, 2, "--json goes with list"},
		{"json with release", []string{"quarantine", "release", "DN5T0NYD4GPFW5FQ", "--json"}, 2, "--json goes with list"},
		{"full with list", []string{"queue", "list", "--full"}, 2, "--full goes with show"},
		{"bad config", []string{"queue", "list", "-c", filepath.Join(t.TempDir(), "none.yaml")}, 1, "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if !strings.Contains(strings.Join(args, " "), "-c") {
				args = append(args, "-c", f.cfg)
			}
			code, out, errs := runSpool(args...)
			if code != tc.code || out != "" || !strings.Contains(errs, tc.inStderr) {
				t.Errorf("got %d %q %q; want %d and stderr containing %q", code, out, errs, tc.code, tc.inStderr)
			}
		})
	}
}

func TestQueueBounceHook(t *testing.T) {
	f := newSpoolFixture(t)
	q := f.store(t, f.queue)
	id := put(t, q, &queue.Envelope{From: "a@example.org",
		Rcpts: []*queue.Recipient{{Addr: "x@example.test", Status: queue.RcptPending}}}, "", testBody)
	saved := bounceHook
	t.Cleanup(func() { bounceHook = saved })
	var gotCfg *config.Config
	bounceHook = func(cfg *config.Config, store queue.Store, bid string) error {
		gotCfg = cfg
		l, err := store.(*queue.Dir).LeaseID(bid)
		if err != nil {
			return err
		}
		env := l.Envelope()
		env.Rcpts[0].Status = queue.RcptFailed
		return l.Update(env)
	}
	code, out, errs := runSpool("queue", "bounce", id, "-c", f.cfg)
	if code != 0 || !strings.HasPrefix(out, id+": bounced; no DSN sent: ") || gotCfg == nil || gotCfg.Queue.Dir != f.queue {
		t.Fatalf("bounce: %d %q %q (cfg %v)", code, out, errs, gotCfg != nil)
	}
	if _, err := q.Get(id); err != queue.ErrNotFound {
		t.Fatalf("bounced message still queued: %v", err)
	}
	if code, _, errs := runSpool("queue", "bounce", id, "-c", f.cfg); code != 1 || !strings.Contains(errs, "no such message") {
		t.Fatalf("bounce of a gone message: %d %q", code, errs)
	}
}

// TestSpoolNotCreatedByLooking: before the daemon has ever run, the queue
// and quarantine commands see empty stores and create no directory (one
// made by root here would lock the daemon's own user out), as Postfix's
// mailq does not create the queue.
func TestSpoolNotCreatedByLooking(t *testing.T) {
	f := newSpoolFixture(t)
	const id = "0000000000000000"
	cases := []struct {
		args []string
		code int
		out  string
		err  string
	}{
		{[]string{"queue", "list"}, 0, "-- 0 messages, 0 bytes, 0 recipients pending\n", ""},
		{[]string{"queue", "list", "--json"}, 0, "[]\n", ""},
		{[]string{"queue", "show", id}, 1, "", "no such message: " + id + "\n"},
		{[]string{"queue", "flush"}, 0, "all queued messages are due now\n", ""},
		{[]string{"queue", "flush", id}, 1, "", "no such message"},
		{[]string{"queue", "delete", id}, 1, "", "no such message"},
		{[]string{"queue", "bounce", id}, 1, "", "no such message"},
		{[]string{"quarantine", "list"}, 0, "-- 0 messages held, 0 bytes\n", ""},
		{[]string{"quarantine", "show", id}, 1, "", "no such message: " + id + "\n"},
		{[]string{"quarantine", "release", id}, 1, "", "no such message"},
		{[]string{"quarantine", "delete", id}, 1, "", "no such message"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, out, errs := run(append(c.args, "-c", f.cfg)...)
			if code != c.code || !strings.HasSuffix(out, c.out) || !strings.Contains(errs, c.err) {
				t.Errorf("got %d %q %q; want %d, stdout ending %q, stderr with %q", code, out, errs, c.code, c.out, c.err)
			}
			// Which directory was read, for an admin who forgot -c.
			note := "note: spool " + f.queue + " does not exist (no messages)\n"
			if c.args[0] == "quarantine" {
				note = "note: quarantine " + f.hold + " does not exist (no messages)\n"
			}
			if !strings.HasPrefix(errs, note) {
				t.Errorf("stderr %q, want it to start with %q", errs, note)
			}
			for _, dir := range []string{f.queue, f.hold} {
				if _, err := os.Stat(dir); !os.IsNotExist(err) {
					t.Fatalf("%s created (stat: %v)", dir, err)
				}
			}
		})
	}
}

// TestSpoolNoteWithoutConfig: without -c the note on a missing spool says
// the built-in config was read, the usual reason for an empty queue that
// is not.
func TestSpoolNoteWithoutConfig(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	code, _, errs := run("queue", "list")
	want := "note: spool " + filepath.Join(dir, "spool") + " does not exist (no messages); no -c FILE given, so this is the built-in config's, from the current directory\n"
	if code != 0 || errs != want {
		t.Errorf("got %d %q, want 0 %q", code, errs, want)
	}
}

// TestQueueListQuotedAddress: the queue keeps addresses as go-smtp hands
// them, unquoted; list and show name them in their envelope form, as
// delivery sends them on, not as another address (<john smith@x>).
func TestQueueListQuotedAddress(t *testing.T) {
	f := newSpoolFixture(t)
	q := f.store(t, f.queue)
	id := put(t, q, &queue.Envelope{From: "john smith@example.org", Received: t0, NextAttempt: t0,
		Rcpts: []*queue.Recipient{{Addr: "a b@example.test", Status: queue.RcptPending}}}, "", testBody)
	for _, args := range [][]string{{"queue", "list", "-c", f.cfg}, {"queue", "show", id, "-c", f.cfg}} {
		code, out, errs := runSpool(args...)
		if code != 0 || !strings.Contains(out, `<"john smith"@example.org>`) || !strings.Contains(out, `"a b"@example.test  pending`) {
			t.Errorf("%s: exit %d, stderr %q:\n%s", args[1], code, errs, out)
		}
	}
}
