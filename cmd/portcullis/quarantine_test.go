package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/queue"
)

func heldEnv() *queue.Envelope {
	return &queue.Envelope{From: "promo@example.net", Received: t0,
		Client: queue.Client{IP: "198.51.100.9", Hostname: "mail.example.net"},
		Rcpts:  []*queue.Recipient{{Addr: "x@example.test", Status: queue.RcptPending}},
		Reason: "bayes score 0.97", Tags: []string{"spam", "bulk"},
		Results: map[string]string{"bayes": "fail score=0.97", "dnsbl": "pass"}}
}

func TestQuarantineListShow(t *testing.T) {
	f := newSpoolFixture(t)
	h := f.store(t, f.hold)
	id := put(t, h, heldEnv(), testHeader, testBody)
	code, out, errs := runSpool("quarantine", "list", "-c", f.cfg)
	size := len(testHeader + testBody)
	want := "ID                     SIZE  RECEIVED (UTC)       SENDER\n" +
		fmt.Sprintf("%s %10d  ", id, size) + "2026-11-27 06:00:00  <promo@example.net>\n" +
		"    subject: quarterly report\n    reason: bayes score 0.97\n    tags: spam, bulk\n    to: x@example.test\n" +
		"-- 1 message held, " + strconv.Itoa(size) + " bytes\n"
	if code != 0 || out != want {
		t.Fatalf("quarantine list: %d %q\n got:\n%s\nwant:\n%s", code, errs, out, want)
	}
	// The JSON listing has the decoded subject too, beside the envelope.
	code, out, _ = runSpool("quarantine", "list", "--json", "-c", f.cfg)
	var listed []struct {
		ID      string `json:"id"`
		Subject string `json:"subject"`
		Reason  string `json:"reason"`
	}
	if err := json.Unmarshal([]byte(out), &listed); code != 0 || err != nil || len(listed) != 1 ||
		listed[0].ID != id || listed[0].Subject != "quarterly report" || listed[0].Reason != "bayes score 0.97" {
		t.Errorf("quarantine list --json: %d %v %+v\n%s", code, err, listed, out)
	}
	code, out, _ = runSpool("quarantine", "show", id, "-c", f.cfg)
	for _, s := range []string{"Reason:       bayes score 0.97", "Tags:         spam, bulk",
		"Results:\n  bayes: fail score=0.97\n  dnsbl: pass\n", "Client:       mail.example.net [198.51.100.9]",
		"\nSubject: quarterly report\n"} {
		if !strings.Contains(out, s) {
			t.Errorf("quarantine show lacks %q:\n%s", s, out)
		}
	}
	if code != 0 || strings.Contains(out, "Next attempt") {
		t.Errorf("quarantine show: exit %d, or shows queue scheduling:\n%s", code, out)
	}
	code, _, errs = runSpool("queue", "show", id, "-c", f.cfg)
	if want := "no such message: " + id + " (it is in the quarantine: portcullis quarantine show " + id + ")"; code != 1 || !strings.Contains(errs, want) {
		t.Errorf("queue show of a held message: %d %q, want %q", code, errs, want)
	}
}

// A Japanese subject is shown decoded in list and show: the admin sorting
// the quarantine reads it, not its encoded words.
func TestQuarantineJapaneseSubject(t *testing.T) {
	f := newSpoolFixture(t)
	h := f.store(t, f.hold)
	hdr := "From: =?ISO-2022-JP?B?GyRCRWw1fhsoQg==?= <a@example.jp>\r\nSubject: =?ISO-2022-JP?B?GyRCTCQ+NUJ6OS05cBsoQg==?=\r\n"
	id := put(t, h, heldEnv(), hdr, testBody)
	_, out, _ := runSpool("quarantine", "list", "-c", f.cfg)
	if !strings.Contains(out, "    subject: 未承諾広告\n") {
		t.Errorf("quarantine list:\n%s", out)
	}
	_, out, _ = runSpool("quarantine", "show", id, "-c", f.cfg)
	for _, s := range []string{"Subject:      未承諾広告\n", "From:         東京 <a@example.jp>\n", "\nSubject: =?ISO-2022-JP?B?"} {
		if !strings.Contains(out, s) {
			t.Errorf("quarantine show lacks %q:\n%s", s, out)
		}
	}
}

// TestQuarantineTerminalEscapes: what a sender or client chose (a subject
// decoded from =1B]0;...=07, a HELO name, a stage's reason quoting the
// message) reaches the admin's terminal only in caret notation: it cannot
// retitle or clear the terminal, recolour it, or forge listing lines.
func TestQuarantineTerminalEscapes(t *testing.T) {
	f := newSpoolFixture(t)
	h := f.store(t, f.hold)
	env := heldEnv()
	env.Client.HELO = "evil\x1b[31mred"
	env.Reason = "matched \x1b[2J"
	hdr := "From: a@example.net\r\nSubject: QUAR =?utf-8?q?=1B]0;pwned=07=1B[2J=0D=0Afake: line?=\r\nX-Raw: a\x1bb\r\n"
	id := put(t, h, env, hdr, testBody)
	_, list, _ := runSpool("quarantine", "list", "-c", f.cfg)
	_, show, _ := runSpool("quarantine", "show", id, "-c", f.cfg)
	for name, out := range map[string]string{"list": list, "show": show} {
		if strings.ContainsAny(out, "\x1b\x07\r") {
			t.Errorf("quarantine %s prints control characters: %q", name, out)
		}
		if strings.Contains(out, "\nfake: line") {
			t.Errorf("quarantine %s: a decoded line end forged a line: %q", name, out)
		}
	}
	for _, s := range []string{"subject: QUAR ^[]0;pwned^G^[[2J^M^Jfake: line\n", "reason: matched ^[[2J\n"} {
		if !strings.Contains(list, s) {
			t.Errorf("quarantine list lacks %q:\n%s", s, list)
		}
	}
	for _, s := range []string{"helo=evil^[[31mred", "X-Raw: a^[b\n"} {
		if !strings.Contains(show, s) {
			t.Errorf("quarantine show lacks %q:\n%s", s, show)
		}
	}
}

func TestQuarantineRelease(t *testing.T) {
	f := newSpoolFixture(t)
	h := f.store(t, f.hold)
	q := f.store(t, f.queue)
	id := put(t, h, heldEnv(), testHeader, testBody)
	before := time.Now()

	code, out, errs := runSpool("quarantine", "release", id, "-c", f.cfg)
	if code != 0 || out != id+": released to the delivery queue\n" {
		t.Fatalf("release: %d %q %q", code, out, errs)
	}
	if _, err := h.Get(id); err != queue.ErrNotFound {
		t.Fatalf("still in quarantine: %v", err)
	}
	env, err := q.Get(id)
	if err != nil {
		t.Fatalf("not in the queue: %v", err)
	}
	if env.NextAttempt.Before(before.Add(-time.Second)) || env.NextAttempt.After(time.Now()) {
		t.Fatalf("released message due at %v, want now", env.NextAttempt)
	}
	if err := q.Rescan(); err != nil {
		t.Fatal(err)
	}
	l, err := q.Lease(time.Now())
	if err != nil || l.Envelope().ID != id {
		t.Fatalf("the daemon cannot lease the released message: %v", err)
	}
	rc, _ := l.Open()
	b, _ := io.ReadAll(rc)
	rc.Close()
	l.Release()
	if string(b) != testHeader+testBody {
		t.Fatalf("released bytes %q", b)
	}
	want := `msg="queue: released from the quarantine" queue_id=` + id + ` by="portcullis quarantine release"`
	if logs := daemonNotes(t, f.queue); !strings.Contains(logs, want) {
		t.Errorf("daemon's log lacks %q:\n%s", want, logs)
	}
}

func TestQuarantineReleaseLearnHam(t *testing.T) {
	f := newSpoolFixture(t)
	h := f.store(t, f.hold)
	id := put(t, h, heldEnv(), testHeader, testBody)
	saved := learnHamHook
	t.Cleanup(func() { learnHamHook = saved })

	learnHamHook = nil
	code, _, errs := runSpool("quarantine", "release", "--learn-ham", id, "-c", f.cfg)
	if code != 1 || !strings.Contains(errs, "nothing released") {
		t.Fatalf("learn-ham without bayes: %d %q", code, errs)
	}
	if _, err := h.Get(id); err != nil {
		t.Fatalf("released although learning was impossible: %v", err)
	}

	// A config the stage cannot learn with (no bayes stage, its config
	// refused): refused before the release, nothing moved.
	learnHamHook = func(*config.Config) (func(string) error, func(), error) {
		return nil, nil, errors.New("no stage in the rule files of x runs the bayes plugin")
	}
	code, _, errs = runSpool("quarantine", "release", "--learn-ham", id, "-c", f.cfg)
	if code != 1 || !strings.Contains(errs, "runs the bayes plugin; nothing released") {
		t.Fatalf("learn-ham without a bayes stage: %d %q", code, errs)
	}
	if _, err := h.Get(id); err != nil {
		t.Fatalf("released although learning was impossible: %v", err)
	}

	var learned string
	closed := false
	learnHamHook = func(*config.Config) (func(string) error, func(), error) {
		return func(path string) error {
			b, err := os.ReadFile(path)
			learned = string(b)
			return err
		}, func() { closed = true }, nil
	}
	code, out, errs := runSpool("quarantine", "release", id, "--learn-ham", "-c", f.cfg)
	if code != 0 || !strings.Contains(out, id+": learned as ham") || learned != testHeader+testBody || !closed {
		t.Fatalf("release --learn-ham: %d %q %q, hook saw %q, closed %v", code, out, errs, learned, closed)
	}
}

func TestQuarantineDelete(t *testing.T) {
	f := newSpoolFixture(t)
	h := f.store(t, f.hold)
	id := put(t, h, heldEnv(), "", testBody)
	if code, out, _ := runSpool("quarantine", "delete", id, "-c", f.cfg); code != 0 || out != id+": deleted\n" {
		t.Fatalf("delete: %d %q", code, out)
	}
	if code, out, _ := runSpool("quarantine", "list", "-c", f.cfg); code != 0 || !strings.HasSuffix(out, "-- 0 messages held, 0 bytes\n") {
		t.Fatalf("list after delete: %d %q", code, out)
	}
}

// Learning that fails after the release (the state file busy) keeps the
// exported copy and says how to learn it: a second release finds nothing.
func TestQuarantineReleaseLearnHamFails(t *testing.T) {
	f := newSpoolFixture(t)
	h := f.store(t, f.hold)
	id := put(t, h, heldEnv(), testHeader, testBody)
	saved := learnHamHook
	t.Cleanup(func() { learnHamHook = saved })
	learnHamHook = func(*config.Config) (func(string) error, func(), error) {
		return func(string) error { return errors.New("state.db: timeout") }, func() {}, nil
	}

	code, out, errs := runSpool("quarantine", "release", id, "--learn-ham", "-c", f.cfg)
	if code != 1 || out != id+": released to the delivery queue\n" || !strings.Contains(errs, "learning it as ham failed: state.db: timeout") {
		t.Fatalf("release --learn-ham, learning failed: %d %q %q", code, out, errs)
	}
	_, kept, ok := strings.Cut(errs, "learn it with: portcullis bayes learn --ham ")
	path, cfgArg, _ := strings.Cut(strings.TrimSpace(kept), " ")
	if !ok || cfgArg != "-c "+f.cfg {
		t.Fatalf("no command to learn it later in %q", errs)
	}
	t.Cleanup(func() { os.Remove(path) })
	if b, err := os.ReadFile(path); err != nil || string(b) != testHeader+testBody {
		t.Fatalf("kept copy %s: %q %v", path, b, err)
	}
}

// A quarantined message another command holds is "in use", not "being
// delivered": the daemon never delivers from the quarantine.
func TestQuarantineBusy(t *testing.T) {
	f := newSpoolFixture(t)
	h := f.store(t, f.hold)
	id := put(t, h, heldEnv(), testHeader, testBody)
	l, err := h.LeaseID(id)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	code, _, errs := runSpool("quarantine", "release", id, "-c", f.cfg)
	if want := "message " + id + " is in use by another command"; code != 1 || !strings.Contains(errs, want) {
		t.Fatalf("release of a busy message: %d %q, want %q", code, errs, want)
	}
}
