package delivery

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
)

// smtpSink is Postfix's smtp-sink (Debian package postfix), a real SMTP
// server with PIPELINING that dumps each transaction it receives.
const smtpSink = "/usr/sbin/smtp-sink"

// startSink runs smtp-sink on a free loopback port, dumping every
// transaction to a file of its own under dir.
func startSink(t *testing.T, dir string) string {
	return startSinkArgs(t, "-d", filepath.Join(dir, "msg."))
}

// startSinkTB runs smtp-sink that only counts.
func startSinkTB(t testing.TB) string { return startSinkArgs(t) }

func startSinkArgs(t testing.TB, extra ...string) string {
	t.Helper()
	if _, err := os.Stat(smtpSink); err != nil {
		t.Fatalf("%s is missing: install the Debian package postfix (apt-get install -y postfix); .ci/run does", smtpSink)
	}
	addr := closedPort(t)
	args := append(extra, addr, "100")
	if os.Geteuid() == 0 {
		args = append([]string{"-u", "nobody"}, args...) // smtp-sink refuses to run as root without it
	}
	cmd := exec.Command(smtpSink, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting smtp-sink: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			br := bufio.NewReader(c)
			line, _ := br.ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "220") {
				return addr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("smtp-sink did not come up on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Integration: messages relayed to smtp-sink, each with three recipients in
// one pipelined transaction; every one arrives once, whole.
func TestSmtpSinkIntegration(t *testing.T) {
	// smtp-sink writes as nobody: t.TempDir's parent is private, so a
	// directory of our own, open to it.
	dir, err := os.MkdirTemp("", "portcullis-sink-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	sink := startSink(t, dir)
	cfg := baseConfig(t)
	cfg.Routes = []config.Route{mkRoute([]string{"*"}, sink)}
	w := newWorld(t, cfg)
	const n = 60
	for i := range n {
		body := fmt.Sprintf("From: a@local.test\r\nSubject: sink test %d\r\n\r\nline\rwith bare CR\r\n.leading dot\r\n", i)
		w.enqueue("a@local.test", []string{fmt.Sprintf("r%d@x.test", i), "b@y.test", "c@z.test"}, localSender, body)
	}
	w.start()
	w.waitFor("an empty queue", w.queueEmpty)
	// smtp-sink writes the dump after answering 250: wait for the files.
	var files []string
	w.waitFor("the sink's dump files", func() bool {
		files, _ = filepath.Glob(filepath.Join(dir, "msg.*"))
		return len(files) >= n
	})
	seen := map[string]int{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		var subj string
		for _, l := range strings.Split(s, "\n") {
			if strings.HasPrefix(l, "Subject: sink test ") {
				subj = strings.TrimSpace(l)
			}
		}
		seen[subj]++
		for _, want := range []string{"b@y.test", "c@z.test", "with bare CR", "\n.leading dot"} {
			if !strings.Contains(s, want) {
				t.Errorf("%s lacks %q", f, want)
			}
		}
	}
	if len(files) != n || len(seen) != n {
		t.Fatalf("sink has %d transactions for %d distinct messages, want %d each", len(files), len(seen), n)
	}
	if c := w.logs.Count("status=sent"); c != 3*n {
		t.Errorf("%d 'sent' log lines, want %d", c, 3*n)
	}
}
