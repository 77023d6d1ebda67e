package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	dnstest "github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"
)

// connBenchStages is connfilter + dnsbl + rdns as in the example, without
// greylisting (a connection here ends at MAIL FROM).
const connBenchStages = `stages:
  - name: connfilter
    plugin: connfilter
    timeout: 2s
    config:
      deny: {entries: ["127.0.0.250", "country:KP"], files: [deny.txt]}
      allow: ["127.0.0.251"]
      countries: [delegated]
  - name: dnsbl
    plugin: dnsbl
    timeout: 3s
    when: 'results.connfilter.verdict != "pass" && !conn.trusted'
    config:
      negative_ttl: %NEGTTL%
      check_private: true  # the benchmark clients are on 127.0.0.n
      zones:
        - {zone: bl.example.test, weight: 2}
        - {zone: combined.example.test, codes: ["mask:0.0.0.2"]}
        - {zone: dbl.example.test, domain: true}
  - name: rdns
    plugin: rdns
    timeout: 3s
    when: 'results.connfilter.verdict != "pass" && !conn.trusted'
rules:
  - {name: deny, when: 'results.connfilter.verdict == "fail"', action: reject}
  - {name: dnsbl, when: 'results.dnsbl.verdict == "fail"', action: reject}
  - {name: rdns, when: 'results.rdns.verdict == "fail"', action: tempfail}
`

// startConnGateway runs the daemon on cfg and returns its address and a stop function.
func startConnGateway(tb testing.TB, cfg string) (string, func()) {
	cmd := exec.Command(portcullisBinary(tb), "run", "-c", cfg)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	addr := make(chan string, 1)
	var log strings.Builder
	var mu sync.Mutex
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			log.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	stop := func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }
	select {
	case a := <-addr:
		return a, stop
	case <-time.After(30 * time.Second):
		stop()
		mu.Lock()
		defer mu.Unlock()
		tb.Fatalf("gateway did not start:\n%s", log.String())
	}
	return "", nil
}

func writeBenchConfig(tb testing.TB, dnsAddr, rules string) string {
	dir := tb.TempDir()
	yaml := strings.ReplaceAll(connYAML, "%DNS%", dnsAddr)
	yaml = strings.Replace(yaml, `include: ["rules/connection.yaml", "rules/country.yaml"]`, "", 1)
	yaml = strings.Replace(yaml, "limits: {shutdown_grace: 2s}", "limits: {shutdown_grace: 2s, max_connections: 1000, max_connections_per_ip: 1000}", 1)
	files := map[string]string{"deny.txt": "127.0.0.252\n",
		"delegated": "apnic|KP|ipv4|127.0.0.253|1|20110412|allocated\napnic|JP|ipv4|127.0.0.0|128|20110412|allocated\n"}
	if rules != "" {
		yaml += "include: [\"stages.yaml\"]\n"
		files["stages.yaml"] = rules
	}
	files["portcullis.yaml"] = yaml
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	return filepath.Join(dir, "portcullis.yaml")
}

// BenchmarkConnections is connections per second through the daemon, each
// connect, greeting, EHLO, MAIL FROM, QUIT from one of 200 client
// addresses (every one with a confirmed PTR, on no list): with no stages
// (the baseline), and with connfilter + dnsbl (3 zones) + rdns, once with
// dnsbl's "not listed" answers cached and once with negative_ttl 0s so
// that every connection asks every zone. Four clients connect in parallel.
func BenchmarkConnections(b *testing.B) {
	var recs []string
	for n := 2; n < 202; n++ {
		recs = append(recs, fmt.Sprintf("%d.0.0.127.in-addr.arpa. 60 IN PTR c%d.client.test.", n, n),
			fmt.Sprintf("c%d.client.test. 60 IN A 127.0.0.%d", n, n))
	}
	dns := dnstest.New(b, recs...)
	rate := map[string]float64{}
	cases := []struct{ name, rules string }{
		{"no-stages", ""},
		{"connfilter+dnsbl+rdns/cached", strings.Replace(connBenchStages, "%NEGTTL%", "1h", 1)},
		{"connfilter+dnsbl+rdns/uncached", strings.Replace(connBenchStages, "%NEGTTL%", "0s", 1)},
	}
	for _, c := range cases {
		addr, stop := startConnGateway(b, writeBenchConfig(b, dns.Addr, c.rules))
		b.Run(c.name, func(b *testing.B) {
			var next atomic.Uint32
			start := time.Now()
			b.SetParallelism(2) // 2 x GOMAXPROCS (2 here) = 4 clients
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := benchConn(addr, 2+int(next.Add(1)%200)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			rate[c.name] = float64(b.N) / time.Since(start).Seconds()
			b.ReportMetric(rate[c.name], "conns/s")
		})
		stop()
	}
	if base := rate["no-stages"]; base > 0 {
		for _, c := range cases[1:] {
			b.Logf("%s: %.0f conns/s = %.2f of no-stages (%.0f conns/s)", c.name, rate[c.name], rate[c.name]/base, base)
		}
	}
}

// benchConn is one client connection from 127.0.0.n; MAIL FROM must be accepted.
func benchConn(addr string, n int) error {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(n))}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for _, step := range []struct{ cmd, want string }{
		{"", "220"}, {fmt.Sprintf("EHLO c%d.client.test", n), "250"}, {"MAIL FROM:<s@remote.example>", "250"}, {"QUIT", "221"},
	} {
		if step.cmd != "" {
			if _, err := io.WriteString(c, step.cmd+"\r\n"); err != nil {
				return err
			}
		}
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return fmt.Errorf("%q: %v", step.cmd, err)
			}
			if len(l) >= 4 && l[3] == '-' {
				continue
			}
			if !strings.HasPrefix(l, step.want) {
				return fmt.Errorf("127.0.0.%d %q: got %q", n, step.cmd, l)
			}
			break
		}
	}
	return nil
}
