package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/portcullis-mta/portcullis/core/queue"
	dnstest "github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"
)

// buildBinary builds portcullis once per test binary run.
var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func portcullisBinary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		dir, err := buildDir("portcullis-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "portcullis")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return binPath
}

const runYAML = `hostname: mx.example.test
listeners:
  - {name: mx, address: "127.0.0.1:0"}
relay:
  domains: [example.test]
  networks: ["127.0.0.1/32"]
routes:
  - {domains: ["*"], next_hop: "127.0.0.1:9"}
dns: {servers: ["%DNS%"]}
queue: {dir: spool, quarantine_dir: quarantine}
limits: {shutdown_grace: 5s}
log: {format: text, level: info}
`

func writeRunConfig(t *testing.T) (path, dir string) {
	dns := dnstest.New(t)
	dir = t.TempDir()
	path = filepath.Join(dir, "portcullis.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(runYAML, "%DNS%", dns.Addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, dir
}

// gateway is one `portcullis run` process.
type gateway struct {
	cmd  *exec.Cmd
	addr string
	mu   sync.Mutex
	log  strings.Builder
	done chan error
}

// listeningRE finds the mx listener's address in the text or JSON format.
var listeningRE = regexp.MustCompile(`msg=listening listener=mx address=(\S+)|"msg":"listening","listener":"mx","address":"([^"]+)"`)

func startGateway(tb testing.TB, cfgPath string) *gateway {
	tb.Helper()
	g := &gateway{cmd: exec.Command(portcullisBinary(tb), "run", "-c", cfgPath), done: make(chan error, 1)}
	stderr, err := g.cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := g.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			g.mu.Lock()
			g.log.WriteString(sc.Text() + "\n")
			g.mu.Unlock()
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1] + m[2]
			}
		}
		g.done <- g.cmd.Wait()
	}()
	select {
	case g.addr = <-addr:
	case err := <-g.done:
		tb.Fatalf("gateway exited at start: %v\n%s", err, g.logs())
	case <-time.After(30 * time.Second):
		tb.Fatalf("gateway did not start:\n%s", g.logs())
	}
	tb.Cleanup(func() { _ = g.cmd.Process.Kill() })
	return g
}

func (g *gateway) logs() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.log.String()
}

func (g *gateway) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-g.done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("gateway did not exit:\n%s", g.logs())
		return nil
	}
}

// rawSession opens a connection and reads the greeting.
func rawSession(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	expectLine(t, br, "220 ")
	return c, br
}

func expectLine(t *testing.T, br *bufio.Reader, prefix string) string {
	t.Helper()
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("want %q: %v", prefix, err)
		}
		if len(l) > 3 && l[3] == '-' {
			continue
		}
		if !strings.HasPrefix(l, prefix) {
			t.Fatalf("got %q, want %q", l, prefix)
		}
		return l
	}
}

func say(t *testing.T, c net.Conn, br *bufio.Reader, cmd, want string) string {
	t.Helper()
	if _, err := io.WriteString(c, cmd+"\r\n"); err != nil {
		t.Fatal(err)
	}
	return expectLine(t, br, want)
}

// TestRunSignals: SIGHUP with a broken file keeps the old config and the
// open session; SIGTERM lets the session finish its message, then exit 0.
func TestRunSignals(t *testing.T) {
	path, dir := writeRunConfig(t)
	g := startGateway(t, path)
	c, br := rawSession(t, g.addr)
	say(t, c, br, "EHLO c.example.org", "250")
	say(t, c, br, "MAIL FROM:<a@example.org>", "250")

	good, _ := os.ReadFile(path)
	os.WriteFile(path, []byte("listeners: [oops\n"), 0o600)
	_ = g.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, g, "reload refused")
	os.WriteFile(path, good, 0o600)

	say(t, c, br, "RCPT TO:<bob@example.test>", "250")
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	waitLog(t, g, "signal: draining")
	say(t, c, br, "DATA", "354")
	id := strings.Fields(say(t, c, br, "Subject: drain\r\n\r\nbody\r\n.", "250 2.0.0"))[2]
	say(t, c, br, "QUIT", "221")
	if err := g.wait(t); err != nil {
		t.Fatalf("exit: %v\n%s", err, g.logs())
	}
	q, err := queue.Open(filepath.Join(dir, "spool"), queue.Options{Poll: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if _, err := q.Get(id); err != nil {
		t.Fatalf("message %s accepted during the drain is not in the queue: %v", id, err)
	}
}

func waitLog(t *testing.T, g *gateway, s string) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if strings.Contains(g.logs(), s) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("log never said %q:\n%s", s, g.logs())
}

// crashMessage is message i with the SHA-256 of its body in a header.
func crashMessage(i int) string {
	r := rand.New(rand.NewPCG(uint64(i), 7))
	var body strings.Builder
	for n := 0; n < 20+r.IntN(200); n++ {
		fmt.Fprintf(&body, "%d line %d %x\r\n", i, n, r.Uint64())
	}
	sum := sha256.Sum256([]byte(body.String()))
	return fmt.Sprintf("Subject: m%d\r\nX-Sum: %s\r\n\r\n%s", i, hex.EncodeToString(sum[:]), body.String())
}

// intact checks a stored message against the hash in its header.
func intact(msg []byte) bool {
	head, body, ok := strings.Cut(string(msg), "\r\n\r\n")
	if !ok {
		return false
	}
	i := strings.Index(head, "X-Sum: ")
	if i < 0 || len(head) < i+7+64 {
		return false
	}
	sum := sha256.Sum256([]byte(body))
	return head[i+7:i+7+64] == hex.EncodeToString(sum[:])
}

// sendAcked sends message i and returns the queue ID from the 250 reply.
func sendAcked(addr string, i int) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	c := smtp.NewClient(conn)
	if err := c.Hello("loader.example.org"); err != nil {
		return "", err
	}
	if err := c.Mail("a@example.org", nil); err != nil {
		return "", err
	}
	if err := c.Rcpt(fmt.Sprintf("u%d@example.test", i), nil); err != nil {
		return "", err
	}
	w, err := c.Data()
	if err != nil {
		return "", err
	}
	if _, err := io.WriteString(w, crashMessage(i)); err != nil {
		return "", err
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return "", err
	}
	return strings.Fields(resp.StatusText)[1], nil
}
