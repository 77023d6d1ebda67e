package smtpd

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// TestBuildsOnOtherUnixes: the session code, and so the gateway, builds
// on each BSD and macOS, as the queue does (core/queue's test of the same
// name). The spool's free space was read with syscall.Statfs and the
// Bavail and Bsize fields, which OpenBSD names f_bavail and f_bsize and
// NetBSD does not have (statvfs instead): GOOS=openbsd or netbsd go build
// ./cmd/portcullis failed here.
func TestBuildsOnOtherUnixes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the package for other systems")
	}
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		t.Skip("no go tool:", err)
	}
	for _, goos := range []string{"freebsd", "openbsd", "netbsd", "darwin"} {
		// vet, not build: it compiles the tests too.
		cmd := exec.Command(goTool, "vet", ".")
		cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH=amd64", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("GOOS=%s go vet: %v\n%s", goos, err, out)
		}
	}
}
