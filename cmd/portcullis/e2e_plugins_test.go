package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	dnstest "github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"
)

// hopMsg is one message the next hop accepted.
type hopMsg struct {
	from  string
	rcpts []string
	data  string
}

// header returns the first value of header field name in the message.
func (m hopMsg) header(name string) string {
	head, _, _ := strings.Cut(m.data, "\r\n\r\n")
	for _, l := range strings.Split(head, "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// nextHop is an in-process go-smtp server on 127.0.0.1:0 that the
// gateway's route points to. It keeps what it receives, or with discard
// only counts it (the benchmark's sink).
type nextHop struct {
	addr    string
	discard bool
	count   atomic.Int64

	mu   sync.Mutex
	msgs []hopMsg
}

func startNextHop(tb testing.TB, discard bool) *nextHop {
	tb.Helper()
	h := &nextHop{discard: discard}
	srv := smtp.NewServer(h)
	srv.Domain = "hop.example.test"
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	srv.MaxMessageBytes = 64 << 20
	srv.ErrorLog = quietLog{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	h.addr = ln.Addr().String()
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close() })
	return h
}

type quietLog struct{}

func (quietLog) Printf(string, ...any) {}
func (quietLog) Println(...any)        {}

func (h *nextHop) NewSession(*smtp.Conn) (smtp.Session, error) { return &hopSession{h: h}, nil }

// received returns a copy of the messages kept so far.
func (h *nextHop) received() []hopMsg {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hopMsg(nil), h.msgs...)
}

// waitFor polls until ok holds for what the hop has received, or fails.
func (h *nextHop) waitFor(t *testing.T, what string, ok func([]hopMsg) bool) []hopMsg {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		msgs := h.received()
		if ok(msgs) {
			return msgs
		}
		if time.Now().After(deadline) {
			t.Fatalf("next hop never received %s; it has %d messages", what, len(msgs))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type hopSession struct {
	h   *nextHop
	cur hopMsg
}

func (s *hopSession) Reset()        { s.cur = hopMsg{} }
func (s *hopSession) Logout() error { return nil }

func (s *hopSession) Mail(from string, _ *smtp.MailOptions) error {
	s.cur.from = from
	return nil
}

func (s *hopSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.rcpts = append(s.cur.rcpts, to)
	return nil
}

func (s *hopSession) Data(r io.Reader) error {
	if s.h.discard {
		_, err := io.Copy(io.Discard, r)
		s.h.count.Add(1)
		return err
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.data = string(b)
	s.h.mu.Lock()
	s.h.msgs = append(s.h.msgs, s.cur)
	s.h.mu.Unlock()
	s.h.count.Add(1)
	return nil
}

// e2eYAML is a gateway whose route sends everything to the next hop and
// whose rule files are rules*.yaml beside the config.
const e2eYAML = `hostname: mx.example.test
listeners:
  - {name: mx, address: "127.0.0.1:0"}
relay:
  domains: [example.test]
  networks: ["127.0.0.1/32"]
routes:
  - {domains: ["*"], next_hop: "%HOP%", tls: none}
dns: {servers: ["%DNS%"]}
queue: {dir: spool, quarantine_dir: quarantine, retry: [1s, 2s]}
limits: {shutdown_grace: 5s, max_connections: 200, max_connections_per_ip: 100}
log: {format: text, level: info}
include: ["rules*.yaml"]
`

// e2eSetup writes a gateway config pointing at hop into a new directory
// with the given rule files (name -> text) and returns the config's path.
func e2eSetup(tb testing.TB, hop *nextHop, ruleFiles map[string]string) (cfg, dir string) {
	tb.Helper()
	dir = tb.TempDir()
	dns := dnstest.New(tb)
	cfg = filepath.Join(dir, "portcullis.yaml")
	text := strings.NewReplacer("%HOP%", hop.addr, "%DNS%", dns.Addr).Replace(e2eYAML)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		tb.Fatal(err)
	}
	for name, rules := range ruleFiles {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(rules), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	return cfg, dir
}

// pluginBuilds holds one build of each test plugin per test binary run.
var pluginBuilds struct {
	sync.Mutex
	dir  string
	errs map[string]error // by package
}

// placePlugin puts a build of the main package pkg (relative to this
// directory) at dst, a copy of its one build in this run.
func placePlugin(tb testing.TB, pkg, dst string) {
	tb.Helper()
	pb := &pluginBuilds
	pb.Lock()
	defer pb.Unlock()
	if pb.dir == "" {
		dir, err := os.MkdirTemp("", "portcullis-plugins")
		if err != nil {
			tb.Fatal(err)
		}
		pb.dir, pb.errs = dir, map[string]error{}
	}
	bin := filepath.Join(pb.dir, filepath.Base(pkg))
	if _, done := pb.errs[pkg]; !done {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			pb.errs[pkg] = fmt.Errorf("building %s: %v\n%s", pkg, err, out)
		} else {
			pb.errs[pkg] = nil
		}
	}
	if err := pb.errs[pkg]; err != nil {
		tb.Fatal(err)
	}
	b, err := os.ReadFile(bin)
	if err == nil {
		err = os.WriteFile(dst, b, 0o755)
	}
	if err != nil {
		tb.Fatal(err)
	}
}

// pluginPIDs lists the running processes whose executable is bin, read
// from /proc (the host starts plugins by path, so /proc/PID/exe is bin).
func pluginPIDs(tb testing.TB, bin string) []int {
	tb.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		tb.Fatal(err)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err == nil && exe == bin && !zombie(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// zombie reports whether pid has exited but is not reaped yet.
func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return strings.HasPrefix(rest, "Z") || strings.HasPrefix(rest, "X")
}

// reply is the gateway's final answer to one message.
type reply struct {
	code int
	text string // enhanced code and text, or the transport error
}

func (r reply) String() string { return fmt.Sprintf("%d %s", r.code, r.text) }

// queueID is the ID in a "250 2.0.0 <ID> Message accepted" reply.
func (r reply) queueID() string {
	if f := strings.Fields(r.text); r.code == 250 && len(f) > 1 {
		return f[1]
	}
	return ""
}

// sendOne sends one message from a@example.org to rcpt over a new session
// and returns the reply to the end of DATA (code 0 if the session failed
// before it).
func sendOne(addr, rcpt, msg string) reply {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return reply{text: err.Error()}
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := smtp.NewClient(conn)
	defer c.Close()
	r := sendOn(c, rcpt, msg, true)
	if r.code != 0 {
		_ = c.Quit()
	}
	return r
}

// sendOn sends one transaction on an open client session (after EHLO when
// hello is set).
func sendOn(c *smtp.Client, rcpt, msg string, hello bool) reply {
	fail := func(err error) reply {
		if se, ok := err.(*smtp.SMTPError); ok {
			return reply{code: se.Code, text: fmt.Sprintf("%d.%d.%d %s", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], se.Message)}
		}
		return reply{text: err.Error()}
	}
	if hello {
		if err := c.Hello("client.example.org"); err != nil {
			return fail(err)
		}
	}
	if err := c.Mail("a@example.org", nil); err != nil {
		return fail(err)
	}
	if err := c.Rcpt(rcpt, nil); err != nil {
		return fail(err)
	}
	w, err := c.Data()
	if err != nil {
		return fail(err)
	}
	if _, err := io.WriteString(w, msg); err != nil {
		return fail(err)
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return fail(err)
	}
	return reply{code: 250, text: resp.StatusText}
}

// subjectMsg is a small message with subject s and a unique Message-ID.
func subjectMsg(s string) string {
	return fmt.Sprintf("From: a@example.org\r\nTo: b@example.test\r\nSubject: %s\r\nMessage-ID: <%s@client.example.org>\r\n\r\nbody of %s\r\n",
		s, strings.NewReplacer(" ", "-", "[", "", "]", "").Replace(s), s)
}

// helloRules is the example's own rule file, loaded unchanged: its stage
// names the plugin as ./plugin-hello beside the config.
func helloRules(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../examples/plugin-hello/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// helloGateway runs the gateway with examples/plugin-hello and its rule
// file; it returns the gateway, its config and the plugin's path.
func helloGateway(t *testing.T, hop *nextHop) (g *gateway, cfg, plugin string) {
	t.Helper()
	cfg, dir := e2eSetup(t, hop, map[string]string{"rules.yaml": helloRules(t)})
	plugin = filepath.Join(dir, "plugin-hello")
	placePlugin(t, "../../examples/plugin-hello", plugin)
	return startGateway(t, cfg), cfg, plugin
}

// portcullisCLI runs the built binary with args and returns its stdout.
func portcullisCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(portcullisBinary(t), args...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("portcullis %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
	}
	return string(out)
}

func bySubject(sub string) func([]hopMsg) bool {
	return func(msgs []hopMsg) bool { return findSubject(msgs, sub) != nil }
}

func findSubject(msgs []hopMsg, sub string) *hopMsg {
	for i := range msgs {
		if strings.Contains(msgs[i].header("Subject"), sub) {
			return &msgs[i]
		}
	}
	return nil
}

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
