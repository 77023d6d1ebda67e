package antivirus

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
)

// TestNoMessage: a check without a message is verdict none.
func TestNoMessage(t *testing.T) {
	st := New()
	if err := st.Configure(context.Background(), sdk.Env{}, map[string]any{"clamd": "tcp:127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	res, err := st.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseData})
	if err != nil || res.Verdict != sdk.VerdictNone {
		t.Errorf("no message: %+v %v, want none", res, err)
	}
}

// TestClamdReplyForms: the infected result carries score 1 and tag
// virus; a reply without the "stream: " prefix is read as well; only an
// exact OK is clean.
func TestClamdReplyForms(t *testing.T) {
	for _, tc := range []struct {
		reply   string
		verdict sdk.Verdict // "": an error
	}{
		{"stream: Eicar-Sig FOUND\x00", sdk.VerdictFail},
		{"OK\x00", sdk.VerdictPass},
		{"Eicar-Sig FOUND\x00", sdk.VerdictFail},
		{"stream: NOT OK\x00", ""},
	} {
		res, err := scanWith(t, map[string]any{"clamd": "tcp:" + fakeClamdExact(t, tc.reply, 0), "timeout": "5s"}, plain([]byte("hello")))
		switch {
		case tc.verdict == "":
			if !errors.Is(err, ErrScan) {
				t.Errorf("%q: %+v %v, want a scan error", tc.reply, res, err)
			}
		case err != nil || res.Verdict != tc.verdict:
			t.Errorf("%q: %+v %v, want %s", tc.reply, res, err, tc.verdict)
		case tc.verdict == sdk.VerdictFail && (res.Score != 1 || !slices.Equal(res.Tags, []string{"virus"}) || res.Attrs["virus"] != "Eicar-Sig"):
			t.Errorf("%q: %+v, want score 1, tag virus, attrs.virus Eicar-Sig", tc.reply, res)
		}
	}
}

// TestClamdChunkSize: INSTREAM chunks are chunk_size bytes, the last one
// the rest.
func TestClamdChunkSize(t *testing.T) {
	var mu sync.Mutex
	var sizes []int
	addr := serveLoopback(t, func(c net.Conn) {
		cmd := make([]byte, len("zINSTREAM\x00"))
		if _, err := io.ReadFull(c, cmd); err != nil {
			return
		}
		for {
			var n [4]byte
			if _, err := io.ReadFull(c, n[:]); err != nil {
				return
			}
			size := int(binary.BigEndian.Uint32(n[:]))
			if size == 0 {
				break
			}
			mu.Lock()
			sizes = append(sizes, size)
			mu.Unlock()
			if _, err := io.CopyN(io.Discard, c, int64(size)); err != nil {
				return
			}
		}
		c.Write([]byte("stream: OK\x00"))
	})
	msg := plain([]byte(strings.Repeat("x", 3000)))
	if _, err := scanWith(t, map[string]any{"clamd": "tcp:" + addr, "chunk_size": 1024, "timeout": "5s"}, msg); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []int{1024, 1024, len(msg) - 2048}; !slices.Equal(sizes, want) {
		t.Errorf("chunks %v, want %v", sizes, want)
	}
}

// TestCommandEdgeCases: exit 1 with no output is infected (virus
// "unknown"), never clean; every {file} in an argument is replaced.
func TestCommandEdgeCases(t *testing.T) {
	dir := t.TempDir()
	res, err := scanWith(t, map[string]any{"command": []any{script(t, "exit 1"), "{file}"}, "temp_dir": dir}, plain([]byte("x")))
	if err != nil || res.Verdict != sdk.VerdictFail || res.Attrs["virus"] != "unknown" {
		t.Errorf("exit 1, no output: %+v %v, want fail, virus unknown", res, err)
	}
	// The script fails (status 2) if a placeholder was left in its argument.
	body := `case "$1" in *"{"*) exit 2;; esac; test -f "${1%%:*}" || exit 2; exit 0`
	res, err = scanWith(t, map[string]any{"command": []any{script(t, body), "{file}:{file}"}, "temp_dir": dir}, plain([]byte("x")))
	if err != nil || res.Verdict != sdk.VerdictPass {
		t.Errorf("two placeholders in one argument: %+v %v, want pass", res, err)
	}
}

// TestClamdReplyThenReset: a server that answers without the closing NUL
// and resets the connection rather than close it gave its verdict all the
// same.
func TestClamdReplyThenReset(t *testing.T) {
	addr := serveLoopback(t, func(c net.Conn) {
		if !readInstream(c) {
			return
		}
		c.Write([]byte("stream: Eicar-Sig FOUND"))
		c.(*net.TCPConn).SetLinger(0) // close with a reset
	})
	res, err := scanWith(t, map[string]any{"clamd": "tcp:" + addr, "timeout": "5s"}, plain([]byte("hello")))
	if err != nil || res.Attrs["virus"] != "Eicar-Sig" {
		t.Errorf("reply, then reset: %+v %v, want virus Eicar-Sig", res, err)
	}
}

// TestCommandVirusNameCap: a virus name taken from the scanner's first
// line of output is at most 200 bytes.
func TestCommandVirusNameCap(t *testing.T) {
	res, err := scanWith(t, map[string]any{"command": []any{script(t, "printf '%0300d\\n' 0; exit 1"), "{file}"}, "temp_dir": t.TempDir()}, plain([]byte("x")))
	if err != nil || len(res.Attrs["virus"]) != 200 {
		t.Errorf("300-byte line: %+v %v, want a virus name of 200 bytes", res, err)
	}
}
