package pluginhost

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
)

// Plugin binaries built once for the whole test binary.
var (
	faultBin string
	helloBin string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pluginhost-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// One go command for both: -o DIR writes each main package there.
	faultBin = filepath.Join(dir, "faultplugin")
	helloBin = filepath.Join(dir, "plugin-hello")
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator),
		"./testdata/faultplugin", "../../examples/plugin-hello")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the test plugins: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer collects log output written from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newHost returns a host whose log goes to the returned buffer, closed at
// the end of the test.
func newHost(t *testing.T, o Options) (*Host, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if o.SocketDir == "" {
		o.SocketDir = shortTempDir(t)
	}
	if o.MinBackoff == 0 {
		o.MinBackoff = 20 * time.Millisecond
	}
	h := New(o)
	t.Cleanup(h.Close)
	return h, logs
}

// shortTempDir: t.TempDir paths can outgrow a Unix socket path (108 bytes).
func shortTempDir(t *testing.T) string {
	d, err := os.MkdirTemp("", "ph")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func faultSpec(name string, cfg map[string]any) Spec {
	return Spec{Name: name, Plugin: faultBin, Config: cfg}
}

func mustLoad(t *testing.T, h *Host, specs ...Spec) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.Load(ctx, specs); err != nil {
		t.Fatal(err)
	}
}

func mustStage(t *testing.T, h *Host, name string) *Stage {
	t.Helper()
	s, ok := h.Stage(name)
	if !ok {
		t.Fatalf("no stage %s", name)
	}
	return s
}

func connect(helo string) *sdk.Request {
	return &sdk.Request{Phase: sdk.PhaseConnect, Conn: sdk.Conn{IP: "192.0.2.7", HELO: helo}}
}

func check(s *Stage, helo string, d time.Duration) (*sdk.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return s.Check(ctx, connect(helo))
}

// waitFor polls cond until it holds; the bound only keeps a broken build
// from hanging CI, it asserts nothing about speed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func discardLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
