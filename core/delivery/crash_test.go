package delivery

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/queue"
)

// crashChildEnv makes the test binary a delivery process (see TestMain).
const crashChildEnv = "PORTCULLIS_DELIVERY_CRASH_CHILD"

func TestMain(m *testing.M) {
	if v := os.Getenv(crashChildEnv); v != "" {
		crashChild(v)
		return
	}
	os.Exit(m.Run())
}

// crashChild delivers the durable queue in dir to addr until killed.
func crashChild(v string) {
	dir, addr, _ := strings.Cut(v, ",")
	q, err := queue.Open(dir, queue.Options{Intake: true}) // fsync on, intake log: what the daemon does
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
	cfg := &config.Config{Hostname: "gw.test", DNS: config.DNS{Servers: []string{"127.0.0.1:1"}},
		Queue:  config.Queue{Workers: 8, Retry: []config.Duration{config.Duration(50 * time.Millisecond)}, MaxAge: config.Duration(time.Hour)},
		Routes: []config.Route{{Domains: []string{"*"}, NextHop: addr, TLS: "none"}}}
	m, err := New(Deps{Config: cfg, Queue: q, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
	m.Start(context.Background())
	select {}
}

// SIGKILL during delivery under load, several times, then a restart: every
// queued message reaches the next hop at least once. Duplicates are only
// possible for a kill between the next hop's 250 and the removal from the
// queue; the test prints how many there were.
func TestCrashDuringDelivery(t *testing.T) {
	const n = 400
	down := newPeer(t)
	dir := filepath.Join(t.TempDir(), "spool")
	q, err := queue.Open(dir, queue.Options{Poll: -1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		d, _ := q.NewDraft()
		fmt.Fprintf(d, "Subject: crash %d\r\n\r\nbody\r\n", i)
		env := &queue.Envelope{From: "a@local.test", Received: time.Now(),
			Rcpts: []*queue.Recipient{{Addr: fmt.Sprintf("r%d@d.test", i), Status: queue.RcptPending}}}
		if err := d.Commit(env, nil); err != nil {
			t.Fatal(err)
		}
	}
	q.Close()

	kills := 0
	for _, frac := range []int{15, 35, 55, 75} {
		child := startChild(t, dir, down.addr)
		w := &world{t: t}
		w.waitFor(fmt.Sprintf("%d%% delivered", frac), func() bool { return len(down.messages()) >= n*frac/100 })
		child.Process.Signal(syscall.SIGKILL)
		child.Wait()
		kills++
	}
	child := startChild(t, dir, down.addr)
	defer func() { child.Process.Kill(); child.Wait() }()
	w := &world{t: t}
	subj := regexp.MustCompile(`Subject: crash (\d+)`)
	seen := map[string]int{}
	w.waitFor("every message delivered", func() bool {
		clear(seen)
		for _, m := range down.messages() {
			if s := subj.FindStringSubmatch(m.data); s != nil {
				seen[s[1]]++
			}
		}
		return len(seen) == n
	})
	q2, err := queue.Open(dir, queue.Options{Poll: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer q2.Close()
	w.waitFor("an empty queue", func() bool { l, _ := q2.List(); return len(l) == 0 })
	dups := len(down.messages()) - n
	t.Logf("%d messages, %d SIGKILLs during delivery: all delivered, %d duplicate(s) (kill between the next hop's 250 and the queue update)", n, kills, dups)
	if dups > kills*8 {
		t.Errorf("%d duplicates from %d kills of 8 workers: more than the in-flight messages", dups, kills)
	}
}

func startChild(t *testing.T, dir, addr string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir+","+addr)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}
