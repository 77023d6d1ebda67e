package queue

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// TestBuildsOnOtherUnixes: the queue, and so the gateway, builds on the
// BSDs and macOS, not on Linux alone. fdatasync(2) and renameat2(2) are
// Linux's: called directly, they made `go build ./cmd/portcullis` fail
// there ("undefined: unix.Fdatasync"), with nothing in the README saying
// the gateway is for Linux only.
func TestBuildsOnOtherUnixes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the package for other systems")
	}
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		t.Skip("no go tool:", err)
	}
	for _, goos := range []string{"freebsd", "darwin"} {
		// vet, not build: it compiles the tests too.
		cmd := exec.Command(goTool, "vet", ".")
		cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH=amd64", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("GOOS=%s go vet: %v\n%s", goos, err, out)
		}
	}
}
