package delivery

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/delivery/smtpc"
	"github.com/portcullis-mta/portcullis/core/queue"
)

var benchBody = "From: a@local.test\r\nSubject: bench\r\n\r\n" + strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n", 80)

// BenchmarkDeliverQueue: messages in a durable queue relayed to smtp-sink
// by the Manager (lease, stream, per-recipient replies, update with fsync).
// Compare with BenchmarkBaselineDirectSend in the same run: the same
// messages sent straight from memory over one reused connection, no queue.
func BenchmarkDeliverQueue(b *testing.B) {
	b.Run("fsync", func(b *testing.B) { benchDeliverQueue(b, false) })
	// NoSync shows what the queue's fsyncs (lease update, removal) cost.
	b.Run("nosync", func(b *testing.B) { benchDeliverQueue(b, true) })
}

func benchDeliverQueue(b *testing.B, nosync bool) {
	dir := b.TempDir()
	sink := startSinkTB(b)
	q, err := queue.Open(filepath.Join(dir, "spool"), queue.Options{Poll: -1, NoSync: nosync})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	for i := range b.N {
		d, _ := q.NewDraft()
		d.Write([]byte(benchBody))
		env := &queue.Envelope{From: "a@local.test", Received: time.Now(),
			Rcpts: []*queue.Recipient{{Addr: fmt.Sprintf("r%d@d.test", i), Status: queue.RcptPending}}}
		if err := d.Commit(env, nil); err != nil {
			b.Fatal(err)
		}
	}
	cfg := &config.Config{Hostname: "gw.test", DNS: config.DNS{Servers: []string{"127.0.0.1:1"}},
		Queue:  config.Queue{Workers: 20, MaxAge: config.Duration(time.Hour)},
		Routes: []config.Route{{Domains: []string{"*"}, NextHop: sink, TLS: "none"}}}
	m, err := New(Deps{Config: cfg, Queue: q, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	m.Start(context.Background())
	// List reads every envelope: poll it rarely, so that the poll does not
	// weigh in the measurement.
	for {
		if l, _ := q.List(); len(l) == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.StopTimer()
	m.Stop(context.Background())
}

func BenchmarkBaselineDirectSend(b *testing.B) {
	sink := startSinkTB(b)
	conn, err := net.Dial("tcp", sink)
	if err != nil {
		b.Fatal(err)
	}
	c := smtpc.New(conn, 10*time.Second)
	defer c.Close()
	if err := c.Greet(); err != nil {
		b.Fatal(err)
	}
	if err := c.Hello("gw.test"); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		res, err := c.Send("a@local.test", nil, []smtpc.Rcpt{{Addr: fmt.Sprintf("r%d@d.test", i)}}, strings.NewReader(benchBody))
		if err != nil || !res.Delivered(0) {
			b.Fatalf("%v %+v", err, res)
		}
	}
}
