package pluginhost

import (
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

	"github.com/portcullis-mta/portcullis/core/internal/logbuf"
)

// Plugin binaries, built once per test binary on first use (not in
// TestMain, so that fuzzing workers do not build them).
var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

func pluginBins(tb testing.TB) (fault, hello string) {
	tb.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "pluginhost-test-")
		if buildErr != nil {
			return
		}
		// One go command for all: -o DIR/ writes each main package there.
		cmd := exec.Command("go", "build", "-o", buildDir+string(filepath.Separator),
			"./testdata/faultplugin", "./testdata/checkplugin", "../../examples/plugin-hello")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building the test plugins: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "faultplugin"), filepath.Join(buildDir, "plugin-hello")
}

func faultBin(tb testing.TB) string { f, _ := pluginBins(tb); return f }
func helloBin(tb testing.TB) string { _, h := pluginBins(tb); return h }

// checkBin is faultplugin's stage with a CheckConfig.
func checkBin(tb testing.TB) string {
	f, _ := pluginBins(tb)
	return filepath.Join(filepath.Dir(f), "checkplugin")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// newHost returns a host whose log goes to the returned buffer, closed at
// the end of the test.
func newHost(t *testing.T, o Options) (*Host, *logbuf.Buffer) {
	t.Helper()
	logs := &logbuf.Buffer{}
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

func faultSpec(tb testing.TB, name string, cfg map[string]any) Spec {
	return Spec{Name: name, Plugin: faultBin(tb), Config: cfg}
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

// script writes an executable shell script into a fresh directory.
func script(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(shortTempDir(t), "plugin.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}
