package antivirus

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
)

// eicar is the EICAR test string, assembled here so that it appears
// nowhere verbatim in the repository.
func eicar() []byte {
	parts := []string{`X5O!P%@AP[4\PZX54(P^)7CC)7}$`, "EICAR-STANDARD-", "ANTIVIRUS-TEST-", "FILE!$H+H*"}
	return []byte(strings.Join(parts, ""))
}

const eicarName = "Custom.Test.EICAR-NDB.UNOFFICIAL"

// repoRoot walks up from the test's directory to go.mod.
func repoRoot(t testing.TB) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// startClamd starts a private clamd with ../shared/clamd/start-clamd.sh
// (which installs clamav-daemon if it is missing) and stops it at the end.
// It returns the unix socket, the TCP address and a function that stops
// clamd early.
func startClamd(t testing.TB) (sock, tcp string, stop func()) {
	t.Helper()
	script := filepath.Join(repoRoot(t), "..", "shared", "clamd", "start-clamd.sh")
	state := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command("bash", script, "-d", state, "-p", strconv.Itoa(port), "-m", "2M")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("start-clamd.sh: %v\n%s%s", err, out, stderr.String())
	}
	stopScript := filepath.Join(filepath.Dir(script), "stop-clamd.sh")
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		if out, err := exec.Command("bash", stopScript, state).CombinedOutput(); err != nil {
			t.Errorf("stop-clamd.sh: %v\n%s", err, out)
		}
	}
	t.Cleanup(stop)
	return strings.TrimSpace(string(out)), "127.0.0.1:" + strconv.Itoa(port), stop
}

func zipOf(t testing.TB, name string, data []byte) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create(name)
	w.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func withAttachment(name string, data []byte) []byte {
	return []byte("From: a@example.test\r\nSubject: files\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n" +
		"--B\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"" + name + "\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" + base64.StdEncoding.EncodeToString(data) + "\r\n--B--\r\n")
}

func plain(body []byte) []byte {
	return append([]byte("From: a@example.test\r\nSubject: test\r\n\r\n"), append(body, "\r\n"...)...)
}

func scanWith(t *testing.T, cfg map[string]any, raw []byte) (*sdk.Result, error) {
	t.Helper()
	st := New()
	if err := st.Configure(context.Background(), sdk.Env{}, cfg); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return st.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseData, Message: sdk.NewBytesMessage(nil, raw)})
}

// TestRealClamd scans with the clamd from Debian, over both sockets.
func TestRealClamd(t *testing.T) {
	sock, tcp, stop := startClamd(t)
	tests := []struct {
		name  string
		raw   []byte
		virus string
	}{
		{"eicar plain", plain(eicar()), eicarName},
		{"eicar in zip", withAttachment("a.zip", zipOf(t, "eicar.com", eicar())), eicarName},
		{"eicar base64 attachment", withAttachment("eicar.com", eicar()), eicarName},
		{"clean", withAttachment("notes.txt", []byte("meeting at ten")), ""},
	}
	for label, addr := range map[string]string{"path": sock, "unix": "unix:" + sock, "tcp": "tcp:" + tcp} {
		for _, tc := range tests {
			t.Run(label+"/"+tc.name, func(t *testing.T) {
				res, err := scanWith(t, map[string]any{"clamd": addr, "timeout": "20s"}, tc.raw)
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				want := sdk.VerdictPass
				if tc.virus != "" {
					want = sdk.VerdictFail
				}
				if res.Verdict != want || res.Attrs["virus"] != tc.virus {
					t.Errorf("verdict %s virus %q, want %s %q", res.Verdict, res.Attrs["virus"], want, tc.virus)
				}
			})
		}
	}
	t.Run("over StreamMaxLength", func(t *testing.T) {
		big := plain(bytes.Repeat([]byte("0123456789abcdef\r\n"), 200_000)) // 3.6 MB > -m 2M
		_, err := scanWith(t, map[string]any{"clamd": sock}, big)
		if !errors.Is(err, ErrScan) || !strings.Contains(err.Error(), "size limit") {
			t.Errorf("error %v, want clamd's size limit reply", err)
		}
	})
	stop()
	t.Run("clamd stopped", func(t *testing.T) {
		for _, addr := range []string{sock, "tcp:" + tcp} {
			res, err := scanWith(t, map[string]any{"clamd": addr}, plain(eicar()))
			if !errors.Is(err, ErrScan) || res != nil {
				t.Errorf("%s: result %v error %v, want a scan error", addr, res, err)
			}
		}
	})
}
