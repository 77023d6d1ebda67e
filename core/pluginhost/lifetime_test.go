//go:build linux

package pluginhost

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk/hostrpc"
)

// TestPluginIgnoresSIGTERM: a service manager's SIGTERM to the whole
// process group must not take the stages away from a draining gateway.
func TestPluginIgnoresSIGTERM(t *testing.T) {
	h, _ := newHost(t, Options{})
	mustLoad(t, h, faultSpec(t, "f", nil))
	b, err := os.ReadFile("/proc/" + strconv.Itoa(mustStage(t, h, "f").PID()) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if hex, ok := strings.CutPrefix(line, "SigIgn:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			if mask&(1<<(15-1)) == 0 { // SIGTERM is signal 15
				t.Errorf("plugin does not ignore SIGTERM (SigIgn %s)", strings.TrimSpace(hex))
			}
			return
		}
	}
	t.Fatal("no SigIgn line in /proc/PID/status")
}

// TestOrphanedPluginExits: a plugin whose gateway died (no Kill, no
// shutdown call) exits by itself instead of holding its state files.
func TestOrphanedPluginExits(t *testing.T) {
	hs := hostrpc.Handshake()
	// The shell starts the plugin in the background and exits at once,
	// as a gateway killed with SIGKILL would leave it.
	cmd := exec.Command("sh", "-c", hostrpc.HostPIDEnv+`=$$ "$0" >/dev/null 2>&1 & echo $!`, faultBin(t))
	cmd.Env = append(os.Environ(), hs.MagicCookieKey+"="+hs.MagicCookieValue,
		"PLUGIN_UNIX_SOCKET_DIR="+shortTempDir(t))
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("no pid from the shell: %q", out)
	}
	t.Cleanup(func() {
		if p, err := os.FindProcess(pid); err == nil && alive(pid) {
			p.Kill()
		}
	})
	waitFor(t, "the orphaned plugin to exit", func() bool { return !alive(pid) })
}
