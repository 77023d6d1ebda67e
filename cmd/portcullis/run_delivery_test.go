package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	dnstest "github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"
)

// runSink is the next hop of the gateway under test: an in-process
// go-smtp server that keeps the messages it accepts.
type runSink struct {
	addr string
	mu   sync.Mutex
	got  map[string]int // Subject -> times received
	bad  int            // messages that arrived damaged
}

func newRunSink(t *testing.T) *runSink {
	s := &runSink{got: map[string]int{}}
	srv := smtp.NewServer(s)
	srv.Domain = "sink.test"
	s.addr = serveSMTP(t, srv)
	return s
}

func (s *runSink) NewSession(*smtp.Conn) (smtp.Session, error) { return &runSinkSession{s}, nil }

func (s *runSink) counts() (distinct, total, bad int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.got {
		total += n
	}
	return len(s.got), total, s.bad
}

type runSinkSession struct{ s *runSink }

var subjectRE = regexp.MustCompile(`(?m)^Subject: (m\d+)\r$`)

func (r *runSinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (r *runSinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (r *runSinkSession) Reset()                               {}
func (r *runSinkSession) Logout() error                        { return nil }
func (r *runSinkSession) Data(rd io.Reader) error {
	b, err := io.ReadAll(rd)
	if err != nil {
		return err
	}
	// The gateway adds its Received header on top: check from Subject on.
	m := subjectRE.FindSubmatchIndex(b)
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if m == nil || !intact(b[m[0]:]) {
		r.s.bad++
		return nil
	}
	r.s.got[string(b[m[2]:m[3]])]++
	return nil
}

// TestRunDeliveryCrash: `portcullis run` relaying to a next hop while
// loaded, SIGKILLed several times during delivery and restarted. Every
// message that got a 250 reaches the next hop intact at least once; the
// duplicates the kills caused (a kill between the next hop's 250 and the
// removal from the queue) are counted and printed.
func TestRunDeliveryCrash(t *testing.T) {
	const messages, senders = 300, 8
	sink := newRunSink(t)
	dns := dnstest.New(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "portcullis.yaml")
	conf := strings.NewReplacer("%DNS%", dns.Addr, "%SINK%", sink.addr).Replace(`hostname: mx.example.test
listeners:
  - {name: mx, address: "127.0.0.1:0"}
relay:
  domains: [example.test]
  networks: ["127.0.0.1/32"]
routes:
  - {domains: ["*"], next_hop: "%SINK%", tls: none}
dns: {servers: ["%DNS%"]}
queue: {dir: spool, quarantine_dir: quarantine, retry: [100ms], workers: 8}
limits: {shutdown_grace: 5s}
log: {format: text, level: info} # startGateway waits for the "listening" line
`)
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, path)

	var mu sync.Mutex
	addr, next, acked := g.addr, 0, map[int]bool{}
	var wg sync.WaitGroup
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i, a := next, addr
				next++
				mu.Unlock()
				if i >= messages {
					return
				}
				for {
					if _, err := sendAcked(a, i); err == nil {
						mu.Lock()
						acked[i] = true
						mu.Unlock()
						break
					}
					time.Sleep(20 * time.Millisecond) // the gateway is down: retry, as a client would
					mu.Lock()
					a = addr
					mu.Unlock()
				}
			}
		}()
	}
	kills := 0
	for _, frac := range []int{20, 45, 70} {
		waitUntil(t, fmt.Sprintf("%d%% at the next hop", frac), func() bool {
			_, total, _ := sink.counts()
			return total >= messages*frac/100
		})
		_ = g.cmd.Process.Signal(syscall.SIGKILL)
		_ = g.wait(t)
		kills++
		g = startGateway(t, path)
		mu.Lock()
		addr = g.addr
		mu.Unlock()
	}
	wg.Wait()
	waitUntil(t, "every acknowledged message at the next hop", func() bool {
		distinct, _, _ := sink.counts()
		return distinct >= len(acked)
	})
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	_ = g.wait(t)
	distinct, total, bad := sink.counts()
	for i := range messages {
		sink.mu.Lock()
		n := sink.got[fmt.Sprintf("m%d", i)]
		sink.mu.Unlock()
		if acked[i] && n == 0 {
			t.Errorf("message m%d got 250 but never reached the next hop", i)
		}
	}
	if bad > 0 {
		t.Errorf("%d messages reached the next hop damaged", bad)
	}
	t.Logf("%d messages acknowledged, %d SIGKILLs during delivery: %d distinct delivered, %d deliveries in all, %d duplicate(s)",
		len(acked), kills, distinct, total, total-distinct)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second) // turns a hang into a failure; measures nothing
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
