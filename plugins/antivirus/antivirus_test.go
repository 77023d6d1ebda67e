package antivirus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/plugintest"
)

// script writes an executable shell script standing in for a scanner.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "scanner.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCommand(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		verdict sdk.Verdict
		virus   string
		errText string
	}{
		{"clean", `grep -q "Subject: test" "$1" && exit 0; exit 2`, sdk.VerdictPass, "", ""},
		{"infected clamscan style", `echo "$1: Win.Test.Dropper FOUND"; exit 1`, sdk.VerdictFail, "Win.Test.Dropper", ""},
		{"infected other output", `echo "W32/Virus detected"; exit 1`, sdk.VerdictFail, "W32/Virus detected", ""},
		{"error status", `echo "cannot read database" >&2; exit 2`, "", "", "cannot read database"},
		{"timeout", `sleep 5`, "", "", "deadline"},
		// Output without end is cut off, not written to temp_dir until the timeout.
		{"endless output", `yes "$1: OK"; exit 0`, "", "", "MiB of output"},
		// A wrapper that leaves a helper running: its exit status is the
		// answer (it used to be an error when the helper kept the output
		// pipe open), and the helper is killed with its process group.
		{"clean, child left running", `sleep 30 & echo $! > "$1.pid"; echo "$1: OK"; exit 0`, sdk.VerdictPass, "", ""},
		{"infected, child left running", `sleep 30 & echo $! > "$1.pid"; echo "$1: Eicar-Test FOUND"; exit 1`, sdk.VerdictFail, "Eicar-Test", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := map[string]any{"command": []any{script(t, tc.body), "{file}"}, "timeout": "500ms", "temp_dir": t.TempDir()}
			res, err := scanWith(t, cfg, plain([]byte("hello")))
			if tc.errText != "" {
				if !errors.Is(err, ErrScan) || !strings.Contains(err.Error(), tc.errText) {
					t.Errorf("error %v, want one mentioning %q", err, tc.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Verdict != tc.verdict || res.Attrs["virus"] != tc.virus {
				t.Errorf("verdict %s virus %q, want %s %q", res.Verdict, res.Attrs["virus"], tc.verdict, tc.virus)
			}
			entries, _ := os.ReadDir(cfg["temp_dir"].(string))
			for _, e := range entries {
				if !strings.HasSuffix(e.Name(), ".pid") {
					t.Errorf("temporary file left behind: %s", e.Name())
					continue
				}
				b, _ := os.ReadFile(filepath.Join(cfg["temp_dir"].(string), e.Name()))
				pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
				waitGone(t, pid)
			}
		})
	}
}

// fakeClamd is an in-process server on 127.0.0.1:0 that reads up to
// readLimit bytes, answers reply and closes: enough to script the replies
// real clamd gives, including the reply before a reset.
func fakeClamd(t *testing.T, readLimit int64, reply string, delay time.Duration) string {
	t.Helper()
	return serveLoopback(t, func(c net.Conn) {
		io.CopyN(io.Discard, c, readLimit)
		time.Sleep(delay)
		c.Write([]byte(reply))
	})
}

// serveLoopback serves each connection to a new listener on 127.0.0.1:0
// with handle (which need not close it) until the test ends, and returns
// the listener's address.
func serveLoopback(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return l.Addr().String()
}

// readInstream reads one zINSTREAM command and its chunks up to the
// zero-length terminator, as clamd does; false if the stream broke off or
// did not start with the command.
func readInstream(r io.Reader) bool {
	cmd := make([]byte, len("zINSTREAM\x00"))
	if _, err := io.ReadFull(r, cmd); err != nil || string(cmd) != "zINSTREAM\x00" {
		return false
	}
	for {
		var n [4]byte
		if _, err := io.ReadFull(r, n[:]); err != nil {
			return false
		}
		size := int64(n[0])<<24 | int64(n[1])<<16 | int64(n[2])<<8 | int64(n[3])
		if size == 0 {
			return true
		}
		if _, err := io.CopyN(io.Discard, r, size); err != nil {
			return false
		}
	}
}

func TestClamdReplies(t *testing.T) {
	big := plain(bytes.Repeat([]byte("x"), 4<<20))
	tests := []struct {
		name     string
		limit    int64 // > 0: the server stops reading after limit bytes and answers
		reply    string
		delay    time.Duration
		msg      []byte
		virus    string
		errMatch string
	}{
		{"ok", 0, "stream: OK\x00", 0, nil, "", ""},
		{"found", 0, "stream: Eicar-Sig FOUND\x00", 0, nil, "Eicar-Sig", ""},
		{"error", 0, "stream: Can't allocate memory ERROR\x00", 0, nil, "", "allocate"},
		{"size limit then close", 64 << 10, "INSTREAM size limit exceeded. ERROR\x00", 0, big, "", "size limit"},
		{"no reply", 0, "", 0, nil, "", "reply"},
		{"empty reply", 0, "\x00", 0, nil, "", "empty reply"},
		// A server that stops reading partway and says OK has not scanned
		// the rest: that is no clean verdict.
		{"ok before the whole message", 64 << 10, "stream: OK\x00", 0, big, "", "before it had the whole message"},
		{"found before the whole message", 64 << 10, "stream: Eicar-Sig FOUND\x00", 0, big, "Eicar-Sig", ""},
		{"slow", 0, "stream: OK\x00", 3 * time.Second, nil, "", "timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := fakeClamdExact(t, tc.reply, tc.delay)
			if tc.limit > 0 {
				addr = fakeClamd(t, tc.limit, tc.reply, tc.delay)
			}
			msg := tc.msg
			if msg == nil {
				msg = plain([]byte("hello"))
			}
			res, err := scanWith(t, map[string]any{"clamd": "tcp:" + addr, "timeout": "1s"}, msg)
			if tc.errMatch != "" {
				if !errors.Is(err, ErrScan) || !strings.Contains(err.Error(), tc.errMatch) {
					t.Errorf("error %v, want one mentioning %q", err, tc.errMatch)
				}
				return
			}
			if err != nil || res.Attrs["virus"] != tc.virus {
				t.Errorf("result %+v error %v, want virus %q", res, err, tc.virus)
			}
		})
	}
}

// fakeClamdExact reads the INSTREAM protocol to its zero-length terminator
// before answering, as clamd does.
func fakeClamdExact(t *testing.T, reply string, delay time.Duration) string {
	t.Helper()
	return serveLoopback(t, func(c net.Conn) {
		if !readInstream(c) {
			return
		}
		time.Sleep(delay)
		c.Write([]byte(reply))
	})
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  map[string]any
		want string
	}{
		{"none", map[string]any{}, "exactly one"},
		{"both", map[string]any{"clamd": "/s", "command": []any{"x", "{file}"}}, "exactly one"},
		{"no placeholder", map[string]any{"command": []any{"x"}}, "{file}"},
		{"unknown key", map[string]any{"clamd": "/s", "sock": "x"}, "sock"},
		{"bad chunk", map[string]any{"clamd": "/s", "chunk_size": 10}, "chunk_size"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := New().Configure(context.Background(), sdk.Env{}, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	addrs := map[string][2]string{
		"/run/clamd.ctl":      {"unix", "/run/clamd.ctl"},
		"unix:/run/clamd.ctl": {"unix", "/run/clamd.ctl"},
		"tcp:127.0.0.1:3310":  {"tcp", "127.0.0.1:3310"},
		"127.0.0.1:3310":      {"tcp", "127.0.0.1:3310"},
		"clamd.sock":          {"unix", "/etc/portcullis/clamd.sock"},
	}
	for in, want := range addrs {
		if n, a := clamdAddress(in, "/etc/portcullis"); n != want[0] || a != want[1] {
			t.Errorf("clamdAddress(%q) = %s %s, want %v", in, n, a, want)
		}
	}
}

// TestExampleConfig: the example's antivirus config is valid.
func TestExampleConfig(t *testing.T) {
	if err := New().Configure(context.Background(), sdk.Env{}, plugintest.StageConfig(t, "../../examples/rules/content.yaml", "antivirus")); err != nil {
		t.Error(err)
	}
}

// TestCommandVirusName: the name is read after the file's path, whatever
// the path holds (here a temp_dir with ": " in it), and never includes it.
func TestCommandVirusName(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool: av")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{`echo "$1: Eicar.Sig FOUND"; exit 1`, `echo "$1"; echo "Eicar.Sig FOUND" >&2; exit 1`} {
		cfg := map[string]any{"command": []any{script(t, body), "{file}"}, "temp_dir": dir}
		res, err := scanWith(t, cfg, plain([]byte("x")))
		if err != nil || res.Verdict != sdk.VerdictFail || strings.Contains(res.Attrs["virus"], "portcullis-scan") {
			t.Errorf("%s: result %+v error %v, want a virus name without the file's path", body, res, err)
		}
	}
}

// TestReconfigureWhileScanning: the host reconfigures a running plugin on
// reload while scans are in flight (go test -race). Every scan uses one
// whole config: the scanner of the old one or of the new one.
func TestReconfigureWhileScanning(t *testing.T) {
	cfgs := []map[string]any{
		{"clamd": "tcp:" + fakeClamdExact(t, "stream: Old.Sig FOUND\x00", 0), "timeout": "20s"},
		{"clamd": "tcp:" + fakeClamdExact(t, "stream: New.Sig FOUND\x00", 0), "timeout": "10s"},
	}
	st := New()
	if err := st.Configure(context.Background(), sdk.Env{}, cfgs[0]); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			for range 20 {
				res, err := st.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseData, Message: sdk.NewBytesMessage(nil, plain([]byte("x")))})
				if err != nil || res.Attrs["virus"] != "Old.Sig" && res.Attrs["virus"] != "New.Sig" {
					errs <- fmt.Errorf("result %+v error %v", res, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for i := range 40 {
		if err := st.Configure(context.Background(), sdk.Env{}, cfgs[i%2]); err != nil {
			t.Fatal(err)
		}
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestClamdReplyAtNUL: the reply ends at its NUL terminator. A server that
// keeps the connection open after replying (a proxy in front of clamd, a
// clamd-compatible scanner) gets its answer taken at once, not when the
// scan's hour-long timeout has run out.
func TestClamdReplyAtNUL(t *testing.T) {
	addr := serveLoopback(t, func(c net.Conn) {
		if !readInstream(c) {
			return
		}
		c.Write([]byte("stream: Kept.Open FOUND\x00"))
		io.Copy(io.Discard, c) // until the client closes
	})
	st := New()
	if err := st.Configure(context.Background(), sdk.Env{}, map[string]any{"clamd": "tcp:" + addr, "timeout": "1h"}); err != nil {
		t.Fatal(err)
	}
	done := make(chan string, 1)
	go func() {
		res, err := st.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseData, Message: sdk.NewBytesMessage(nil, plain([]byte("x")))})
		if err != nil {
			done <- err.Error()
			return
		}
		done <- res.Attrs["virus"]
	}()
	select {
	case got := <-done:
		if got != "Kept.Open" {
			t.Errorf("got %q, want virus Kept.Open", got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("reply not taken at its NUL: the scan waits for the server to close")
	}
}
