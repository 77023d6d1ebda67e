package sdk

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// fileMessage writes raw into a file after lead bytes, as a spool file
// holds a message, and describes it.
func fileMessage(t *testing.T, raw []byte) *Message {
	t.Helper()
	lead := []byte("spool record\n")
	path := filepath.Join(t.TempDir(), "msg")
	if err := os.WriteFile(path, append(lead, raw...), 0o600); err != nil {
		t.Fatal(err)
	}
	return NewFileMessage(nil, path, int64(len(lead)), int64(len(raw)))
}

func TestReadAll(t *testing.T) {
	raw := []byte("Subject: hi\r\n\r\nbody\r\n")
	tests := []struct {
		name  string
		msg   *Message
		limit int64
		want  string
	}{
		{"file", fileMessage(t, raw), 0, string(raw)},
		{"file over the limit", fileMessage(t, raw), 7, "Subject"},
		{"file under the limit", fileMessage(t, raw), 1000, string(raw)},
		{"bytes", NewBytesMessage(nil, raw), 0, string(raw)},
		{"bytes over the limit", NewBytesMessage(nil, raw), 7, "Subject"},
		{"empty", NewBytesMessage(nil, nil), 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.msg.ReadAll(context.Background(), tt.limit)
			if err != nil || string(got) != tt.want {
				t.Fatalf("ReadAll = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestReadAllShortFile: a spool file shorter than the size the host gave
// is an error that says so, not a message cut short in silence.
func TestReadAllShortFile(t *testing.T) {
	m := fileMessage(t, []byte("Subject: hi\r\n\r\nbody\r\n"))
	m.Size += 10
	if _, err := m.ReadAll(context.Background(), 0); err == nil || !strings.Contains(err.Error(), "ended after 21 of its 31 bytes") {
		t.Fatalf("error %v, want the message ended early", err)
	}
}

// TestReadAllAllocatesOnce: the message is read into one buffer of its
// size. io.ReadAll, which does not know the size, doubled its buffer as it
// grew and allocated about three times a 25 MiB message in all.
func TestReadAllAllocatesOnce(t *testing.T) {
	raw := bytes.Repeat([]byte("0123456789abcdef\r\n"), 8<<20/18)
	m := fileMessage(t, raw)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got, err := m.ReadAll(context.Background(), 0)
	runtime.ReadMemStats(&after)
	if err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("ReadAll: %v, same bytes %v", err, bytes.Equal(got, raw))
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > uint64(len(raw))+64<<10 {
		t.Errorf("ReadAll of %d bytes allocated %d", len(raw), n)
	}
}
