package delivery

import (
	"bytes"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/core/queue"
)

// bigUTF8 is a message of about n bytes whose body is Japanese UTF-8 text
// sent as 8bit: quoted-printable makes it about three times longer.
func bigUTF8(n int, multipart bool) []byte {
	line := strings.Repeat("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 8) + " text\r\n" // "Japanese" x8
	var b bytes.Buffer
	b.WriteString("From: a@local.test\r\nSubject: big\r\nMIME-Version: 1.0\r\n")
	if multipart {
		b.WriteString("Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n" +
			"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	} else {
		b.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	}
	for b.Len() < n {
		b.WriteString(line)
	}
	if multipart {
		b.WriteString("--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n")
	}
	return b.Bytes()
}

// memOpener serves msg as the queue would, with its size known.
func memOpener(msg []byte) (opener, func() (int64, error)) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(msg)), nil },
		func() (int64, error) { return int64(len(msg)), nil }
}

// BenchmarkOpen7bit: what a 20 MB 8-bit message costs to send to a next
// hop without 8BITMIME (bytes/op is the figure to watch; the converted
// message is read as the SMTP client reads it, 32 KiB at a time).
func BenchmarkOpen7bit(b *testing.B) {
	for _, mp := range []bool{false, true} {
		name := "text"
		if mp {
			name = "multipart"
		}
		b.Run(name, func(b *testing.B) {
			msg := bigUTF8(20<<20, mp)
			open, size := memOpener(msg)
			m := &Manager{log: slog.New(slog.DiscardHandler)}
			env := &queue.Envelope{ID: "bench"}
			buf := make([]byte, 32<<10)
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				r, err := m.open7bit(env, "old.test", open, size)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, buf); err != nil {
					b.Fatal(err)
				}
				r.Close()
			}
		})
	}
}

// The conversion for a next hop without 8BITMIME holds the message once,
// not the 9 to 10 times of a read that doubled its buffer and a converted
// copy that grew by doubling too (quoted-printable triples 8-bit text):
// 20 MB of UTF-8 cost 236 MB. TotalAlloc counts every byte allocated
// meanwhile, garbage included.
func TestOpen7bitHoldsTheMessageOnce(t *testing.T) {
	for _, mp := range []bool{false, true} {
		msg := bigUTF8(8<<20, mp)
		open, size := memOpener(msg)
		m := &Manager{log: slog.New(slog.DiscardHandler)}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		r, err := m.open7bit(&queue.Envelope{ID: "big"}, "old.test", open, size)
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, make([]byte, 32<<10))
		r.Close()
		runtime.ReadMemStats(&after)
		if err != nil || n < 2*int64(len(msg)) {
			t.Fatalf("multipart %v: read %d bytes of the conversion, %v", mp, n, err)
		}
		if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(len(msg))*3/2; got > limit {
			t.Errorf("multipart %v: converting a %d-byte message allocated %d bytes, want at most %d", mp, len(msg), got, limit)
		}
	}
}

// A delivery that stops half way (the next hop hangs up during DATA)
// closes the reader: the conversion ends then, not blocked for ever on a
// pipe nobody reads.
func TestDowngradeClosedHalfWay(t *testing.T) {
	r := startDowngrade(bigUTF8(4<<20, true), func() { t.Error("a conversion cut short was logged as done") })
	if _, err := io.ReadFull(r, make([]byte, 100<<10)); err != nil {
		t.Fatal(err)
	}
	r.Close()
	// Close waited for the conversion: no goroutine is left in it.
	buf := make([]byte, 1<<20)
	if stacks := string(buf[:runtime.Stack(buf, true)]); strings.Contains(stacks, "delivery.downgradeTo") {
		t.Fatalf("the conversion still runs after Close:\n%s", stacks)
	}
	if _, err := r.Read(make([]byte, 10)); err == nil {
		t.Error("read after Close succeeded")
	}
}
