package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dnstest "github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"
)

// The connection stages end to end: `portcullis run` with
// examples/rules/connection.yaml included, its plugins started as
// `portcullis plugin NAME`, DNS from an in-process server, list files in
// the test's directory. Each case is its own client, bound to its own
// 127.0.0.N, so the cases do not see each other's state.
//
// Clients: .10 on the deny list, .11 on the allow list and listed at the
// DNSBL, .12 listed at the DNSBL with a TXT reason, .13 in a country the
// example denies (from a delegated-stats file), .14 and .17 denied by
// original-format filter lines (IP, and HOST against the rDNS name), .15
// let through by a PASS/IP line despite a DNSBL listing, .16 greylisted,
// .18 refused by a rule on conn.country, .19 whose DNSBL query SERVFAILs,
// .22 listed with a TXT reason holding quotes, a backslash, CR LF, an
// escape sequence and UTF-8.
const connYAML = `hostname: mx.example.test
listeners:
  - {name: mx, address: "127.0.0.1:0"}
relay:
  domains: [example.test]
  networks: ["127.0.0.1/32"]
routes:
  - {domains: ["*"], next_hop: "127.0.0.1:9"}
dns: {servers: ["%DNS%"], timeout: 2s}
queue: {dir: spool, quarantine_dir: quarantine}
state: {path: state.db}
limits: {shutdown_grace: 2s}
log: {format: text, level: info}
include: ["rules/connection.yaml", "rules/country.yaml"]
`

// greylistDelay replaces the example's 5m so that the test can wait it out.
const greylistDelay = 2 * time.Second

func connDNS(t *testing.T) *dnstest.Server {
	var recs []string
	for n := 2; n <= 30; n++ {
		name := fmt.Sprintf("c%d.client.test.", n)
		if n == 17 {
			name = "h17.dyn.client.test."
		}
		recs = append(recs, fmt.Sprintf("%d.0.0.127.in-addr.arpa. 60 IN PTR %s", n, name),
			fmt.Sprintf("%s 60 IN A 127.0.0.%d", name, n))
	}
	for _, n := range []int{11, 12, 15} {
		recs = append(recs, fmt.Sprintf("%d.0.0.127.bl.example.test. 60 IN A 127.0.0.2", n),
			fmt.Sprintf(`%d.0.0.127.bl.example.test. 60 IN TXT "Listed by BL-Test, see https://bl.example.test/127.0.0.%d"`, n, n))
	}
	recs = append(recs, "22.0.0.127.bl.example.test. 60 IN A 127.0.0.2",
		`22.0.0.127.bl.example.test. 60 IN TXT "Listed\013\010X-Injected: yes \027[31mRED\027[0m \"q\" see https://bl.example.test/?q=a\\b caf\195\169"`)
	srv := dnstest.New(t, recs...)
	srv.ServFail("19.0.0.127.bl.example.test.")
	return srv
}

func writeConnConfig(t *testing.T) string {
	dns := connDNS(t)
	dir := t.TempDir()
	example, err := os.ReadFile("../../examples/rules/connection.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rules := strings.Replace(string(example), "delay: 5m ", fmt.Sprintf("delay: %s ", greylistDelay), 1)
	if rules == string(example) {
		t.Fatal("examples/rules/connection.yaml: no `delay: 5m` to shorten")
	}
	// The test clients are on 127.0.0.n, which dnsbl leaves alone unless told.
	withPrivate := strings.Replace(rules, "      threshold: 2 ", "      check_private: true\n      threshold: 2 ", 1)
	if withPrivate == rules {
		t.Fatal("examples/rules/connection.yaml: no dnsbl `threshold: 2` to put check_private before")
	}
	rules = withPrivate
	files := map[string]string{
		"portcullis.yaml":       strings.ReplaceAll(connYAML, "%DNS%", dns.Addr),
		"rules/connection.yaml": rules,
		"lists/deny.txt":        "# denied clients\n127.0.0.10\n",
		"lists/allow.txt":       "127.0.0.11   # a partner, listed at the DNSBL by mistake\n",
		"lists/filter.txt":      "REJECT/IP/127.0.0.14\nPASS/IP/127.0.0.15\nREJECT/HOST/*.dyn.client.test\n",
		"lists/delegated-latest": "2|apnic|20261127|2|19830613|20261126|+0900\n" +
			"apnic|KP|ipv4|127.0.0.13|1|20110412|allocated\napnic|JP|ipv4|127.0.0.14|2|20110412|allocated\n" +
			"apnic|FR|ipv4|127.0.0.18|1|20110412|allocated\n",
		// A rule of one's own on conn.country, after the example's.
		"rules/country.yaml": "rules:\n  - name: no-fr\n    when: 'conn.country == \"FR\"'\n    action: reject\n" +
			"    reply: '554 5.7.1 Not from {{conn.country}}'\n",
	}
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "portcullis.yaml")
}

// dialFrom connects from 127.0.0.n and returns the first reply line.
func dialFrom(t *testing.T, addr string, n int) (net.Conn, *bufio.Reader, string) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(n))}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	return c, br, readReply(t, br)
}

// readReply reads one (possibly multi-line) reply and returns its last line.
func readReply(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading a reply: %v", err)
		}
		if len(l) < 4 || l[3] != '-' {
			return strings.TrimRight(l, "\r\n")
		}
	}
}

func send(t *testing.T, c net.Conn, br *bufio.Reader, cmd string) string {
	t.Helper()
	if _, err := io.WriteString(c, cmd+"\r\n"); err != nil {
		t.Fatal(err)
	}
	return readReply(t, br)
}

// transaction runs EHLO, MAIL and RCPT from 127.0.0.n and returns the
// replies to each, stopping at the first refusal.
func transaction(t *testing.T, addr string, n int, rcpt string) (greeting string, replies []string, c net.Conn, br *bufio.Reader) {
	t.Helper()
	c, br, greeting = dialFrom(t, addr, n)
	if !strings.HasPrefix(greeting, "220 ") {
		return greeting, nil, c, br
	}
	for _, cmd := range []string{fmt.Sprintf("EHLO c%d.client.test", n), "MAIL FROM:<sender@remote.example>", "RCPT TO:<" + rcpt + ">"} {
		r := send(t, c, br, cmd)
		replies = append(replies, r)
		if !strings.HasPrefix(r, "250") {
			break
		}
	}
	return greeting, replies, c, br
}

func TestConnectionStagesEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon with its plugins; not in -short")
	}
	cfg := writeConnConfig(t)
	g := startGateway(t, cfg)

	t.Run("deny list refuses at connect", func(t *testing.T) {
		if _, _, greet := dialFrom(t, g.addr, 10); !strings.HasPrefix(greet, "554 5.7.1 Access denied for [127.0.0.10]") {
			t.Errorf("greeting %q", greet)
		}
	})
	t.Run("country from delegated stats refuses at connect", func(t *testing.T) {
		if _, _, greet := dialFrom(t, g.addr, 13); !strings.HasPrefix(greet, "554 5.7.1 Access denied") {
			t.Errorf("greeting %q", greet)
		}
	})
	t.Run("conn.country in a rule", func(t *testing.T) {
		if _, _, greet := dialFrom(t, g.addr, 18); greet != "554 5.7.1 Not from FR" {
			t.Errorf("greeting %q", greet)
		}
	})
	t.Run("original filter lines", func(t *testing.T) {
		for _, n := range []int{14, 17} {
			if _, _, greet := dialFrom(t, g.addr, n); !strings.HasPrefix(greet, "554 5.7.1 Access denied") {
				t.Errorf("127.0.0.%d: greeting %q", n, greet)
			}
		}
		_, replies, c, br := transaction(t, g.addr, 15, "pass15@example.test")
		if len(replies) != 3 || !strings.HasPrefix(replies[2], "250") {
			t.Fatalf("PASS/IP client despite its DNSBL listing: %q", replies)
		}
		deliver(t, c, br)
	})
	t.Run("allow list beats a DNSBL listing", func(t *testing.T) {
		_, replies, c, br := transaction(t, g.addr, 11, "partner@example.test")
		if len(replies) != 3 || !strings.HasPrefix(replies[2], "250") {
			t.Fatalf("allowed client: %q", replies)
		}
		deliver(t, c, br)
	})
	t.Run("DNSBL refuses with the zone and its reason", func(t *testing.T) {
		greet, replies, _, _ := transaction(t, g.addr, 12, "x@example.test")
		want := "554 5.7.1 Service unavailable; [127.0.0.12] listed at bl.example.test: Listed by BL-Test, see https://bl.example.test/127.0.0.12"
		if !strings.HasPrefix(greet, "220") || len(replies) != 2 || replies[1] != want {
			t.Fatalf("greeting %q, replies %q; want MAIL refused with %q", greet, replies, want)
		}
	})
	t.Run("DNSBL reason unescaped, then made reply text", func(t *testing.T) {
		// The TXT bytes, not miekg/dns's zone-file escapes (\013\010,
		// \"): CR and the escape character dropped, LF a space, and UTF-8
		// '?' for a client that did not ask for SMTPUTF8, as the reply
		// template does with any value.
		_, replies, _, _ := transaction(t, g.addr, 22, "x@example.test")
		want := "554 5.7.1 Service unavailable; [127.0.0.22] listed at bl.example.test: " +
			`Listed X-Injected: yes [31mRED[0m "q" see https://bl.example.test/?q=a\b caf?`
		if len(replies) != 2 || replies[1] != want {
			t.Fatalf("replies %q; want MAIL refused with %q", replies, want)
		}
		if logs := g.logs(); strings.Contains(logs, "\x1b") || strings.Contains(logs, "\nX-Injected") || strings.Contains(logs, `\\013`) {
			t.Errorf("the reason reached the log raw or escaped twice:\n%s", logs)
		}
	})
	t.Run("DNSBL lookup failure is a 451, not a pass", func(t *testing.T) {
		_, replies, _, _ := transaction(t, g.addr, 19, "x@example.test")
		want := "451 4.4.3 DNS lookup failed for [127.0.0.19], try again later"
		if len(replies) != 2 || replies[1] != want {
			t.Fatalf("replies %q; want MAIL %q", replies, want)
		}
	})
	t.Run("greylisted, then accepted after the delay", func(t *testing.T) {
		_, replies, _, _ := transaction(t, g.addr, 16, "grey@example.test")
		want := fmt.Sprintf("451 4.7.1 Greylisted, try again in %d seconds", int(greylistDelay.Seconds()))
		if len(replies) != 3 || replies[2] != want {
			t.Fatalf("first attempt: %q, want RCPT %q", replies, want)
		}
		_, replies, _, _ = transaction(t, g.addr, 16, "grey@example.test")
		if len(replies) != 3 || !strings.HasPrefix(replies[2], "451 4.7.1 Greylisted") {
			t.Fatalf("retry before the delay: %q", replies)
		}
		time.Sleep(greylistDelay + 200*time.Millisecond)
		// A retry from another address of the same /24 is the same client.
		_, replies, c, br := transaction(t, g.addr, 26, "grey@example.test")
		if len(replies) != 3 || !strings.HasPrefix(replies[2], "250") {
			t.Fatalf("retry after the delay: %q", replies)
		}
		deliver(t, c, br)
	})
	t.Run("deny list re-read on SIGHUP and on change", func(t *testing.T) {
		deny := filepath.Join(filepath.Dir(cfg), "lists", "deny.txt")
		appendLine(t, deny, "127.0.0.20")
		_ = g.cmd.Process.Signal(syscall.SIGHUP)
		waitLog(t, g, "msg=reloaded")
		if _, _, greet := dialFrom(t, g.addr, 20); !strings.HasPrefix(greet, "554 5.7.1 Access denied") {
			t.Errorf("after SIGHUP: greeting %q", greet)
		}
		// Without a signal: the stage notices the change within reload_interval (5s).
		appendLine(t, deny, "127.0.0.21")
		deadline := time.Now().Add(15 * time.Second)
		for {
			c, _, greet := dialFrom(t, g.addr, 21)
			c.Close()
			if strings.HasPrefix(greet, "554 5.7.1 Access denied") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("changed deny list not picked up; greeting %q", greet)
			}
			time.Sleep(500 * time.Millisecond)
		}
		waitLog(t, g, `msg="connfilter: changed list files loaded"`)
		// A change that does not load keeps the lists in force, and the
		// log says why, as a refused SIGHUP does.
		appendLine(t, deny, "999.1.1.1/garbage")
		appendLine(t, deny, "127.0.0.23")
		refused := `level=ERROR msg="connfilter: changed list file refused, keeping the previous lists"`
		deadline = time.Now().Add(15 * time.Second)
		for !strings.Contains(g.logs(), refused) {
			c, _, greet := dialFrom(t, g.addr, 23)
			c.Close()
			if !strings.HasPrefix(greet, "220 ") {
				t.Fatalf("an entry of a refused list took effect: greeting %q", greet)
			}
			if time.Now().After(deadline) {
				t.Fatalf("the refused change was not logged")
			}
			time.Sleep(500 * time.Millisecond)
		}
		if !strings.Contains(g.logs(), `:5: bad CIDR \"999.1.1.1/garbage\"`) {
			t.Errorf("the log line does not name the line and the problem")
		}
	})
	if t.Failed() {
		t.Logf("gateway log:\n%s", g.logs())
	}
}

func appendLine(t *testing.T, path, line string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.WriteString(f, line+"\n"); err != nil {
		t.Fatal(err)
	}
}

// deliver finishes an open transaction with a message and wants it queued.
func deliver(t *testing.T, c net.Conn, br *bufio.Reader) {
	t.Helper()
	if r := send(t, c, br, "DATA"); !strings.HasPrefix(r, "354") {
		t.Fatalf("DATA: %q", r)
	}
	if r := send(t, c, br, "Subject: e2e\r\n\r\nhello\r\n."); !strings.HasPrefix(r, "250 2.0.0 ") {
		t.Fatalf("end of data: %q", r)
	}
	send(t, c, br, "QUIT")
}
