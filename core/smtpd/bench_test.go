package smtpd

import (
	"io"
	"log"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/portcullis-mta/portcullis/core/queue"
)

// discardBackend is the baseline: plain go-smtp that throws the data away.
type discardBackend struct{}

func (discardBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return discardSession{}, nil }

type discardSession struct{}

func (discardSession) Reset()                               {}
func (discardSession) Logout() error                        { return nil }
func (discardSession) Mail(string, *smtp.MailOptions) error { return nil }
func (discardSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (discardSession) Data(r io.Reader) error               { _, err := io.Copy(io.Discard, r); return err }

func startBaseline(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := smtp.NewServer(discardBackend{})
	s.Domain = "baseline.example.test"
	s.MaxLineLength = 4096
	s.ErrorLog = log.New(io.Discard, "", 0)
	go s.Serve(ln)
	b.Cleanup(func() { s.Close() })
	return ln.Addr().String()
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadSessions sends b.N messages over `sessions` concurrent SMTP sessions,
// each sending transaction after transaction.
func loadSessions(b *testing.B, addr string, sessions int, msg string) {
	var mu sync.Mutex
	left := b.N
	take := func() bool {
		mu.Lock()
		defer mu.Unlock()
		left--
		return left >= 0
	}
	var wg sync.WaitGroup
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for i := 0; i < sessions; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := smtp.Dial(addr)
			if err != nil {
				b.Error(err)
				return
			}
			defer c.Close()
			defer c.Quit()
			for take() {
				if err := c.SendMail("a@example.org", []string{"bob@example.test"}, strings.NewReader(msg)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	el, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "msg/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/msg")
}

func benchMessage(size int) string {
	var sb strings.Builder
	sb.WriteString("From: a@example.org\r\nTo: bob@example.test\r\nSubject: bench\r\n\r\n")
	line := strings.Repeat("x", 76) + "\r\n"
	for sb.Len() < size {
		sb.WriteString(line)
	}
	return sb.String()
}

// BenchmarkAccept compares accepting into the real, fsyncing queue through
// the whole session (policy, checks, Received, commit) with a plain go-smtp
// server that discards the data, in the same run: with the intake log (what
// the daemon uses), with one file per message, and with one file per
// message and no fsync. CPU is the whole test process (server and clients)
// per message.
func BenchmarkAccept(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int
	}{{"5KB", 5 << 10}, {"100KB", 100 << 10}} {
		msg := benchMessage(size.n)
		b.Run(size.name+"/baseline-go-smtp-discard", func(b *testing.B) {
			loadSessions(b, startBaseline(b), 20, msg)
		})
		for _, v := range []struct {
			name string
			opts queue.Options
		}{
			{"portcullis-intake-fsync", queue.Options{Poll: -1, Intake: true}}, // the daemon's setting
			{"portcullis-files-fsync", queue.Options{Poll: -1}},                // one file per message
			{"portcullis-files-nosync", queue.Options{Poll: -1, NoSync: true}},
		} {
			b.Run(size.name+"/"+v.name, func(b *testing.B) {
				cfg := testConfig(b)
				cfg.Limits.MaxConnectionsPerIP = 0
				ts := startServer(b, cfg, func(d *Deps) {
					// Logging as in production (info, text), to nowhere.
					d.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
					q, err := queue.Open(b.TempDir(), v.opts)
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { q.Close() })
					d.Queue = q
				})
				loadSessions(b, ts.addr(), 20, msg)
			})
		}
	}
}
