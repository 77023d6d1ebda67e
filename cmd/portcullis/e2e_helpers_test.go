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
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	dnstest "github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"
)

// Helpers shared by the end-to-end tests that run the real binary: an
// in-process next hop, gateway configs, plugin builds and an SMTP client.

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
	h.addr = serveSMTP(tb, srv)
	return h
}

// serveSMTP runs srv on 127.0.0.1:0 until the test ends and returns its address.
func serveSMTP(tb testing.TB, srv *smtp.Server) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
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
	if len(ruleFiles) == 0 { // a glob matching no rule file is refused
		text = strings.Replace(text, "include: [\"rules*.yaml\"]\n", "", 1)
	}
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
		dir, err := buildDir("portcullis-plugins")
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

// sendOn sends one transaction from a@example.org on an open client
// session (after EHLO when hello is set).
func sendOn(c *smtp.Client, rcpt, msg string, hello bool) reply {
	return sendFrom(c, "a@example.org", nil, rcpt, msg, hello)
}

// sendFrom is sendOn with the sender and MAIL options given.
func sendFrom(c *smtp.Client, from string, opts *smtp.MailOptions, rcpt, msg string, hello bool) reply {
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
	if err := c.Mail(from, opts); err != nil {
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
