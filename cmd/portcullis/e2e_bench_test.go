package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// BenchmarkE2EStages measures end-to-end throughput through the real
// daemon: 20 concurrent sessions send 5 KB messages, each accepted (spooled,
// fsynced, 250) and delivered to an in-process next hop that discards, with
// 0, 1, 4 and 8 trivial data-phase stages (testdata/trivialplugin, one
// process each). msgs/s counts a message when the next hop has it;
// accepted/s when its sender has the 250; daemon- and plugin-cpu-us/msg are
// the CPU time the processes used per message (from /proc: robust where
// wall time is not, on a machine shared with other work). The 0-stage run
// is the baseline: the closing log line gives each stage count's msgs/s as
// a fraction of it, and the gateway's CPU per message.
func BenchmarkE2EStages(b *testing.B) {
	plugin := filepath.Join(b.TempDir(), "trivialplugin")
	placePlugin(b, "./testdata/trivialplugin", plugin)
	msg := benchMessage(5 * 1024)
	counts := []int{0, 1, 4, 8}
	rate, cpu := map[int]float64{}, map[int]float64{}
	for _, n := range counts {
		rate[n], cpu[n] = benchStages(b, n, plugin, msg)
	}
	if base := rate[0]; base > 0 {
		parts := []string{fmt.Sprintf("0 stages %.0f msgs/s (%.0f us CPU/msg)", base, cpu[0])}
		for _, n := range counts[1:] {
			parts = append(parts, fmt.Sprintf("%d stages %.0f msgs/s = %.2f (%.0f us CPU/msg)", n, rate[n], rate[n]/base, cpu[n]))
		}
		b.Logf("%s", strings.Join(parts, "; "))
	}
}

// benchStages runs sub-benchmark stages=n against a gateway of its own and
// returns the msgs/s of its last round and the gateway's CPU per message
// (daemon and plugins).
func benchStages(b *testing.B, n int, plugin, msg string) (rate, cpuPerMsg float64) {
	hop := startNextHop(b, true)
	files := map[string]string{}
	if n > 0 {
		files["rules.yaml"] = trivialStages(n, plugin)
	}
	cfg, _ := e2eSetup(b, hop, files)
	g := startGateway(b, cfg)
	cpu := func() (daemon, plugins time.Duration) {
		daemon = procCPU(g.cmd.Process.Pid)
		for _, pid := range pluginPIDs(b, plugin) {
			plugins += procCPU(pid)
		}
		return daemon, plugins
	}
	b.Run(fmt.Sprintf("stages=%d", n), func(b *testing.B) {
		d0, p0 := cpu()
		rate = benchSessions(b, g.addr, hop, msg)
		d1, p1 := cpu()
		perMsg := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(b.N) }
		b.ReportMetric(perMsg(d1-d0), "daemon-cpu-us/msg")
		b.ReportMetric(perMsg(p1-p0), "plugin-cpu-us/msg")
		cpuPerMsg = perMsg(d1 - d0 + p1 - p0)
	})
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.done:
	case <-time.After(20 * time.Second):
		b.Fatalf("gateway did not exit:\n%s", g.logs())
	}
	return rate, cpuPerMsg
}

// procCPU is the user and system CPU time process pid has used, from
// /proc/PID/stat (utime and stime, in clock ticks of 10ms).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	f := strings.Fields(rest) // from field 3, state
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// trivialStages is a rule file with n trivial data-phase stages.
func trivialStages(n int, plugin string) string {
	var s strings.Builder
	s.WriteString("stages:\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&s, "  - {name: trivial%d, plugin: %s, timeout: 10s, on_error: tempfail}\n", i, plugin)
	}
	return s.String()
}

// benchMessage is a plain text message of about size bytes.
func benchMessage(size int) string {
	var s strings.Builder
	s.WriteString("From: a@example.org\r\nTo: b@example.test\r\nSubject: benchmark\r\nMessage-ID: <bench@client.example.org>\r\n\r\n")
	for i := 0; s.Len() < size; i++ {
		fmt.Fprintf(&s, "line %04d of the benchmark body, plain text wrapped well under 78 columns.\r\n", i)
	}
	return s.String()
}

// benchSessions sends b.N messages over 20 concurrent sessions and waits
// until the next hop has them all. It returns the end-to-end msgs/s.
func benchSessions(b *testing.B, addr string, hop *nextHop, msg string) float64 {
	const sessions = 20
	before := hop.count.Load()
	var next atomic.Int64
	var mu sync.Mutex
	var failure string
	fail := func(s string) {
		mu.Lock()
		if failure == "" {
			failure = s
		}
		mu.Unlock()
	}
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for s := 0; s < sessions; s++ {
		wg.Go(func() {
			c, err := benchClient(addr)
			if err != nil {
				fail(err.Error())
				return
			}
			defer c.Close()
			for next.Add(1) <= int64(b.N) {
				if r := sendOn(c, "b@example.test", msg, false); r.code != 250 {
					fail(r.String())
					return
				}
			}
			_ = c.Quit()
		})
	}
	wg.Wait()
	accepted := time.Since(start)
	if failure != "" {
		b.Fatalf("a session failed: %s", failure)
	}
	for deadline := time.Now().Add(60 * time.Second); hop.count.Load() < before+int64(b.N); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("next hop has %d of %d messages after 60s", hop.count.Load()-before, b.N)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	perSec := float64(b.N) / elapsed.Seconds()
	b.ReportMetric(perSec, "msgs/s")
	b.ReportMetric(float64(b.N)/accepted.Seconds(), "accepted/s")
	return perSec
}

// benchClient opens a session and says EHLO.
func benchClient(addr string) (*smtp.Client, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(5 * time.Minute))
	c := smtp.NewClient(conn)
	if err := c.Hello("bench.example.org"); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}
