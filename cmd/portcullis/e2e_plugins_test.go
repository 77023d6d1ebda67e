package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestE2EPluginHello runs `portcullis run` with examples/plugin-hello and
// its rule file: a flagged message is refused with the rule's reply, a
// tagged one reaches the next hop with the tag and the plugin's header
// edit, a quarantined one is held until `quarantine release`.
func TestE2EPluginHello(t *testing.T) {
	hop := startNextHop(t, false)
	g, cfg, _ := helloGateway(t, hop)
	const greeting = "hello from the example"

	t.Run("reject", func(t *testing.T) {
		r := sendOne(g.addr, "b@example.test", subjectMsg("[reject-me] one"))
		if want := "5.7.1 Rejected on request (" + greeting + ")"; r.code != 550 || r.text != want {
			t.Fatalf("reply %v, want 550 %s", r, want)
		}
	})
	t.Run("tag", func(t *testing.T) {
		r := sendOne(g.addr, "b@example.test", subjectMsg("[tag-me] two"))
		id := r.queueID()
		if id == "" {
			t.Fatalf("reply %v, want 250 with a queue ID", r)
		}
		m := findSubject(hop.waitFor(t, "the tagged message", bySubject("[tag-me] two")), "[tag-me] two")
		if got := m.header("X-Portcullis-Tag"); got != "hello-tag" {
			t.Errorf("X-Portcullis-Tag %q, want hello-tag (the rule's name)", got)
		}
		if got := m.header("X-Hello"); got != greeting {
			t.Errorf("X-Hello %q, want the plugin's edit %q", got, greeting)
		}
		if !strings.Contains(m.data, id) || len(m.rcpts) != 1 || m.rcpts[0] != "b@example.test" {
			t.Errorf("delivered message lacks queue ID %s or has recipients %v:\n%s", id, m.rcpts, m.data)
		}
	})
	t.Run("quarantine", func(t *testing.T) {
		r := sendOne(g.addr, "c@example.test", subjectMsg("[quarantine-me] three"))
		id := r.queueID()
		if id == "" {
			t.Fatalf("reply %v, want 250 with a queue ID", r)
		}
		list := portcullisCLI(t, "quarantine", "list", "-c", cfg)
		if !strings.Contains(list, id) || !strings.Contains(list, "hello-quarantine") || !strings.Contains(list, "1 message held") {
			t.Fatalf("quarantine list does not hold %s by rule hello-quarantine:\n%s", id, list)
		}
		if findSubject(hop.received(), "[quarantine-me]") != nil {
			t.Fatal("the quarantined message reached the next hop before its release")
		}
		if out := portcullisCLI(t, "quarantine", "release", id, "-c", cfg); out != id+": released to the delivery queue\n" {
			t.Fatalf("release said %q", out)
		}
		m := findSubject(hop.waitFor(t, "the released message", bySubject("[quarantine-me] three")), "[quarantine-me]")
		if !strings.Contains(m.data, id) || len(m.rcpts) != 1 || m.rcpts[0] != "c@example.test" {
			t.Errorf("released message lacks queue ID %s or has recipients %v", id, m.rcpts)
		}
		if got := m.header("X-Hello"); got != greeting {
			t.Errorf("released message: X-Hello %q, want the plugin's edit %q", got, greeting)
		}
		if list := portcullisCLI(t, "quarantine", "list", "-c", cfg); !strings.Contains(list, "0 messages held") {
			t.Errorf("quarantine still holds something after the release:\n%s", list)
		}
	})
	if findSubject(hop.received(), "[reject-me]") != nil {
		t.Error("the rejected message reached the next hop")
	}
}

// loadMsg is message i of a load run, numbered in X-Seq.
func loadMsg(i int) string {
	return fmt.Sprintf("From: a@example.org\r\nTo: u%d@example.test\r\nSubject: load %d\r\nX-Seq: %d\r\n\r\nbody %d\r\n", i, i, i, i)
}

// loadRun sends numbered messages from several sessions at once until
// stopped, recording every reply by message number.
type loadRun struct {
	addr string
	stop atomic.Bool
	wg   sync.WaitGroup

	mu      sync.Mutex
	next    int
	replies map[int]reply
}

func startLoad(addr string, workers int) *loadRun {
	l := &loadRun{addr: addr, replies: map[int]reply{}}
	for w := 0; w < workers; w++ {
		l.wg.Go(func() {
			for !l.stop.Load() {
				l.mu.Lock()
				i := l.next
				l.next++
				l.mu.Unlock()
				r := sendOne(l.addr, fmt.Sprintf("u%d@example.test", i), loadMsg(i))
				l.mu.Lock()
				l.replies[i] = r
				l.mu.Unlock()
			}
		})
	}
	return l
}

func (l *loadRun) halt() { l.stop.Store(true); l.wg.Wait() }

// sent is the number of the next message to be sent.
func (l *loadRun) sent() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.next
}

// waitAcked waits until n messages numbered from on got a 250.
func (l *loadRun) waitAcked(t *testing.T, from, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		l.mu.Lock()
		got := 0
		for i, r := range l.replies {
			if i >= from && r.code == 250 {
				got++
			}
		}
		l.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d messages from #%d acknowledged", got, n, from)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestE2EPluginKilled SIGKILLs plugin-hello (on_error: tempfail) while
// six sessions send: while it is down messages get 451 4.3.0, never a 5xx
// or a silent accept; the host restarts it and later messages pass
// through it again; every message that got 250 reaches the next hop, with
// the plugin's header edit, since none was accepted without the stage.
func TestE2EPluginKilled(t *testing.T) {
	hop := startNextHop(t, false)
	g, _, plugin := helloGateway(t, hop)
	pids := pluginPIDs(t, plugin)
	if len(pids) != 1 {
		t.Fatalf("want one plugin-hello process, found %v", pids)
	}
	load := startLoad(g.addr, 6)
	defer load.halt()
	load.waitAcked(t, 0, 20)
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitLog(t, g, "plugin restarted")
	after := load.sent()
	load.waitAcked(t, after, 20)
	load.halt()

	if now := pluginPIDs(t, plugin); len(now) != 1 || now[0] == pids[0] {
		t.Errorf("plugin processes after the restart %v (killed %d)", now, pids[0])
	}
	acked, tempfailed := map[string]int{}, 0
	for i, r := range load.replies {
		switch {
		case r.code == 250:
			acked[strconv.Itoa(i)] = i
		case r.code == 451 && strings.HasPrefix(r.text, "4.3.0 "):
			tempfailed++
		default:
			t.Errorf("message %d: reply %v, want 250 or the on_error 451 4.3.0", i, r)
		}
	}
	if tempfailed == 0 {
		t.Error("no message got 451 while the plugin was down")
	}
	msgs := hop.waitFor(t, "every acknowledged message", func(msgs []hopMsg) bool {
		n := 0
		for _, m := range msgs {
			if _, ok := acked[m.header("X-Seq")]; ok {
				n++
			}
		}
		return n >= len(acked)
	})
	laterSeen := false
	for _, m := range msgs {
		if m.header("X-Hello") != "hello from the example" {
			t.Errorf("message %s reached the next hop without the plugin's header edit", m.header("X-Seq"))
		}
		if i, ok := acked[m.header("X-Seq")]; ok && i >= after {
			laterSeen = true
		}
	}
	if !laterSeen {
		t.Error("no message sent after the restart reached the next hop")
	}
	t.Logf("%d messages: %d acknowledged and delivered, %d got 451 while the plugin was down", len(load.replies), len(acked), tempfailed)
}

// TestE2EPluginHang: a stage whose plugin sleeps far past its 1s timeout
// (deaf to the call's context) gives its session the on_error reply, while
// the sessions running beside it complete, and the gateway still drains
// and exits on SIGTERM with the call stuck in the plugin.
func TestE2EPluginHang(t *testing.T) {
	hop := startNextHop(t, false)
	rules := `stages:
  - {name: stuck, plugin: ./trivialplugin, timeout: 1s, on_error: tempfail, config: {hang_subject: "[hang-me]", hang: 1h}}
`
	cfg, dir := e2eSetup(t, hop, map[string]string{"rules.yaml": rules})
	placePlugin(t, "./testdata/trivialplugin", filepath.Join(dir, "trivialplugin"))
	g := startGateway(t, cfg)

	const hung, normal = 2, 10
	replies := make([]reply, hung+normal)
	var wg sync.WaitGroup
	for i := range replies {
		subject := fmt.Sprintf("normal %d", i)
		if i < hung {
			subject = fmt.Sprintf("[hang-me] %d", i)
		}
		wg.Go(func() { replies[i] = sendOne(g.addr, "b@example.test", subjectMsg(subject)) })
	}
	wg.Wait()
	for i, r := range replies {
		if i < hung && (r.code != 451 || r.text != "4.3.0 Temporary failure in stage stuck") {
			t.Errorf("hung message %d: reply %v, want 451 4.3.0 Temporary failure in stage stuck", i, r)
		}
		if i >= hung && r.code != 250 {
			t.Errorf("message %d beside the hung ones: reply %v, want 250", i, r)
		}
	}
	waitLog(t, g, "timeout after 1s")
	hop.waitFor(t, "the messages sent beside the hung ones", func(msgs []hopMsg) bool { return len(msgs) >= normal })
	if r := sendOne(g.addr, "b@example.test", subjectMsg("after the hang")); r.code != 250 {
		t.Errorf("a message after the hang: reply %v, want 250", r)
	}
	if findSubject(hop.received(), "[hang-me]") != nil {
		t.Error("a message whose stage timed out reached the next hop")
	}
	drain := time.Now()
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	if err := g.wait(t); err != nil {
		t.Fatalf("exit with a plugin call stuck: %v\n%s", err, g.logs())
	}
	t.Logf("SIGTERM to exit with the plugin still hung: %v", time.Since(drain).Round(time.Millisecond))
}

// TestE2EReloadDropsStage: a session that began before a SIGHUP which
// removed its data stage finishes its message as the new rules would take
// it (the stage skipped), not with the removed stage's on_error (tempfail).
func TestE2EReloadDropsStage(t *testing.T) {
	hop := startNextHop(t, false)
	g, cfg, _ := helloGateway(t, hop)
	c, br := rawSession(t, g.addr)
	say(t, c, br, "EHLO c.example.org", "250")
	say(t, c, br, "MAIL FROM:<a@example.org>", "250")
	say(t, c, br, "RCPT TO:<b@example.test>", "250")

	rules := filepath.Join(filepath.Dir(cfg), "rules.yaml")
	if err := os.WriteFile(rules, []byte("stages: []\nrules: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = g.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, g, "msg=reloaded")
	say(t, c, br, "DATA", "354")
	id := strings.Fields(say(t, c, br, strings.TrimSuffix(subjectMsg("[reject-me] after reload"), "\r\n")+"\r\n.", "250 2.0.0"))[2]
	say(t, c, br, "QUIT", "221")
	m := findSubject(hop.waitFor(t, "the message", bySubject("[reject-me] after reload")), "[reject-me] after reload")
	if !strings.Contains(m.data, id) || m.header("X-Hello") != "" {
		t.Errorf("delivered message lacks %s, or the removed stage edited it:\n%s", id, m.data)
	}
	if !strings.Contains(g.logs(), "removed by a reload") {
		t.Errorf("the skip is not logged:\n%s", g.logs())
	}
}
