package delivery

import (
	"bytes"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/delivery/smtpc"
	"github.com/portcullis-mta/portcullis/core/dkimsign"
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
// message is read as the SMTP client reads it, 32 KiB at a time). signed:
// through the DKIM signer too, as transactOnce does.
func BenchmarkOpen7bit(b *testing.B) {
	key, err := dkimsign.GenerateKey("ed25519")
	if err != nil {
		b.Fatal(err)
	}
	signer := dkimsign.New([]*dkimsign.Key{{Domain: "local.test", Selector: "s1", Signer: key}})
	for _, tc := range []struct {
		name      string
		multipart bool
		sign      bool
	}{{"text", false, false}, {"multipart", true, false}, {"signed", false, true}} {
		b.Run(tc.name, func(b *testing.B) {
			msg := bigUTF8(20<<20, tc.multipart)
			open, size := memOpener(msg)
			m := &Manager{log: slog.New(slog.DiscardHandler)}
			env := &queue.Envelope{ID: "bench", Client: queue.Client{Trusted: true}}
			buf := make([]byte, 32<<10)
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				body, err := m.open7bit(env, "old.test", open, size)
				if err != nil {
					b.Fatal(err)
				}
				r := smtpc.FoldLines(body)
				if tc.sign {
					if r, err = signer.Sign(env, r); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, buf); err != nil {
					b.Fatal(err)
				}
				body.Close()
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

// The DKIM signer reads a seekable message twice (the body hash, then the
// bytes sent) and keeps any other in memory and a temporary file; the
// converted message is seekable (rewinding converts again), so it is
// signed with neither: here no temporary file can be made at all, and a
// 1.5 MB message (over dkimsign.MemLimit) is converted once in the log,
// signed, and verifies at a next hop without 8BITMIME.
func TestDowngradeSignedWithoutCopy(t *testing.T) {
	const ehlo = "250-script.test\r\n250 ENHANCEDSTATUSCODES\r\n"
	old := newScriptPeer(t, func(line string) string { return basicReplies(ehlo, line) })
	cfg := baseConfig(t)
	cfg.Routes = []config.Route{mkRoute([]string{"*"}, old.addr)}
	w := newWorld(t, cfg)
	record := w.signing()
	msg := bigUTF8(dkimsign.MemLimit*3/2, true)
	w.enqueue("u@local.test", []string{"x@far.test"}, localSender, string(msg))
	t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "absent"))
	w.start()
	w.waitFor("the delivery", func() bool { return len(old.messages()) == 1 && w.queueEmpty() })

	got := strings.ReplaceAll(old.messages()[0], "\r\n..", "\r\n.")
	vs, err := dkim.VerifyWithOptions(strings.NewReader(got), &dkim.VerifyOptions{
		LookupTXT: func(string) ([]string, error) { return []string{record}, nil },
	})
	if err != nil || len(vs) != 1 || vs[0].Err != nil {
		t.Fatalf("the signature does not verify at the next hop: %v %+v", err, vs)
	}
	want, _ := downgrade8bit(msg)
	if !strings.HasPrefix(got, "DKIM-Signature:") || !strings.HasSuffix(got, "\r\n"+string(want)) {
		t.Fatalf("the next hop did not get the conversion, signed (%d bytes, want %d and a signature)", len(got), len(want))
	}
	if n := strings.Count(w.logs.String(), "8-bit body converted to quoted-printable"); n != 1 {
		t.Errorf("the conversion was logged %d times, want once", n)
	}
}

// Rewinding gives the same bytes again; only the start can be sought.
func TestDowngradeRewind(t *testing.T) {
	msg := bigUTF8(100<<10, false)
	logged := 0
	r := startDowngrade(msg, func() { logged++ })
	defer r.Close()
	first, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if pos, err := r.Seek(0, io.SeekCurrent); err != nil || pos != int64(len(first)) {
		t.Fatalf("Seek(0, SeekCurrent) = %d, %v; want %d", pos, err, len(first))
	}
	if _, err := r.Seek(10, io.SeekStart); err == nil {
		t.Error("Seek to the middle succeeded")
	}
	if pos, err := r.Seek(0, io.SeekStart); err != nil || pos != 0 {
		t.Fatalf("rewind: %d, %v", pos, err)
	}
	again, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(again, first) {
		t.Fatalf("the second read differs (%d bytes, %d the first time): %v", len(again), len(first), err)
	}
	if logged != 1 {
		t.Errorf("converted %d times in the log, want once", logged)
	}
}
