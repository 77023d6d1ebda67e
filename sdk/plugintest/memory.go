package plugintest

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
)

// AttachmentMessage is a message with a short text part and a binary
// attachment of size random bytes (the same bytes every time), base64 in
// lines of 76 (RFC 2045 6.8): the large message of a memory benchmark.
func AttachmentMessage(size int) []byte {
	bin := make([]byte, size)
	r := rand.NewChaCha8([32]byte{})
	r.Read(bin)
	enc := base64.StdEncoding.EncodeToString(bin)
	var m bytes.Buffer
	m.WriteString("From: a@example.com\r\nSubject: report\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee the file\r\n" +
		"--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=data.bin\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n")
	for len(enc) > 0 {
		n := min(76, len(enc))
		m.WriteString(enc[:n] + "\r\n")
		enc = enc[n:]
	}
	m.WriteString("--b--\r\n")
	return m.Bytes()
}

// PeakRSS runs calls concurrent data-phase Checks of msg through c in
// every iteration of b and reports the process's peak resident memory
// (VmHWM, Linux) over its RSS before them, as the metric "peak-RSS-MB",
// with the allocations. The plugin's stage runs in this process, so this
// is the memory a burst of such messages costs the plugin. Run it with
// -cpu 1 (the gateway starts plugins with GOMAXPROCS=1) and one
// sub-benchmark per process, as the peak is the process's.
func PeakRSS(b *testing.B, c *Client, msg *sdk.Message, calls int) {
	b.Helper()
	b.ReportAllocs()
	base := resetPeakRSS(b)
	for b.Loop() {
		var wg sync.WaitGroup
		for range calls {
			wg.Go(func() {
				if _, err := c.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseData, Message: msg}); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
	}
	b.ReportMetric(float64(procStatus(b, "VmHWM")-base)/1e6, "peak-RSS-MB")
}

// resetPeakRSS returns the memory the runtime holds to the system, resets
// the process's peak RSS (Linux: 5 to /proc/self/clear_refs) and returns
// the RSS it starts from.
func resetPeakRSS(b *testing.B) int64 {
	runtime.GC()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Fatalf("cannot reset the peak RSS: %v", err)
	}
	return procStatus(b, "VmRSS")
}

// procStatus reads a size field of /proc/self/status, in bytes.
func procStatus(b *testing.B, field string) int64 {
	st, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatalf("no %s in /proc/self/status", field)
	return 0
}
