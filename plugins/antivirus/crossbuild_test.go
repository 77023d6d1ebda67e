package antivirus

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// TestVetsOnOtherSystems: the plugin and its tests build on each kind of
// system its per-system files are for (command_linux.go, the other
// Unixes', Windows'). waitGone used syscall.Kill and /proc in a file for
// every system, and GOOS=windows go vet failed on it.
func TestVetsOnOtherSystems(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the package for other systems")
	}
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		t.Skip("no go tool:", err)
	}
	for _, goos := range []string{"windows", "freebsd", "darwin"} {
		cmd := exec.Command(goTool, "vet", ".")
		cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH=amd64", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("GOOS=%s go vet: %v\n%s", goos, err, out)
		}
	}
}
