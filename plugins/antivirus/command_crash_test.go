//go:build linux

package antivirus

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
)

// pluginDirEnv makes TestScannerDiesWithPlugin's process the plugin: it
// scans with the hanging scanner in that directory until it is killed.
const pluginDirEnv = "ANTIVIRUS_TEST_PLUGIN_DIR"

// TestScannerDiesWithPlugin: a plugin killed mid-scan (SIGKILL, as the
// OOM killer does; the host then restarts it) takes its scanner with it.
// The scanner runs in a process group of its own, out of reach of the
// host's kill of the plugin's group, and a hung one ran for ever.
func TestScannerDiesWithPlugin(t *testing.T) {
	if dir := os.Getenv(pluginDirEnv); dir != "" {
		scanWith(t, map[string]any{"command": []any{filepath.Join(dir, "scanner.sh"), "{file}"},
			"temp_dir": dir, "timeout": "1m"}, plain([]byte("hello")))
		return
	}
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "scanner.pid")
	err := os.WriteFile(filepath.Join(dir, "scanner.sh"),
		[]byte("#!/bin/sh\necho $$ > "+pidFile+"\nwhile :; do sleep 1; done\n"), 0o755)
	if err != nil {
		t.Fatal(err)
	}
	plugin := exec.Command(os.Args[0], "-test.run=^TestScannerDiesWithPlugin$")
	plugin.Env = append(os.Environ(), pluginDirEnv+"="+dir)
	if err := plugin.Start(); err != nil {
		t.Fatal(err)
	}
	pid := 0
	for deadline := time.Now().Add(10 * time.Second); pid == 0 && time.Now().Before(deadline); {
		b, _ := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		time.Sleep(20 * time.Millisecond)
	}
	plugin.Process.Kill()
	plugin.Wait()
	if pid == 0 {
		t.Fatal("the scanner did not start")
	}
	waitGone(t, pid)
	if t.Failed() {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// TestSweepTemp: the temporary files a dead plugin left (copies of the
// messages it was scanning) are removed at the next Configure; those of a
// live process, and files not ours, stay.
func TestSweepTemp(t *testing.T) {
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	dead, self := strconv.Itoa(gone.Process.Pid), strconv.Itoa(os.Getpid())
	dir := t.TempDir()
	files := map[string]bool{ // name: swept
		tempPrefix + dead + "-123.eml": true,
		tempPrefix + dead + "-456.out": true,
		tempPrefix + self + "-789.eml": false,
		tempPrefix + "1234567890.eml":  false, // an older name, without the PID
		tempPrefix + "x-1.eml":         false,
		"other-" + dead + "-1.eml":     false,
	}
	for name := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("From: a@example.test\r\n\r\nhello\r\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sweptOnce.Store(true) // not this process's first sweep: its own files may be scans in flight
	st := New()
	cfg := map[string]any{"command": []any{script(t, "exit 0"), "{file}"}, "temp_dir": dir}
	if err := st.Configure(context.Background(), sdk.Env{}, cfg); err != nil {
		t.Fatal(err)
	}
	for name, swept := range files {
		_, err := os.Stat(filepath.Join(dir, name))
		if gotSwept := os.IsNotExist(err); gotSwept != swept {
			t.Errorf("%s: swept %v, want %v", name, gotSwept, swept)
		}
	}
	// The first sweep of a process takes files under its own PID too: a
	// dead plugin's, whose PID it took (a container restarted).
	sweptOnce.Store(false)
	sweepTemp(dir)
	if _, err := os.Stat(filepath.Join(dir, tempPrefix+self+"-789.eml")); !os.IsNotExist(err) {
		t.Errorf("the first sweep left a file under this process's PID: %v", err)
	}
}
