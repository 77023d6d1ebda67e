package core_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// TestBuildsOnOtherUnixes: the whole module, tests included (vet compiles
// them), builds on the BSDs and macOS, not on Linux alone, as the README's
// "Layout and tests" says. Each system call that differs lives in a file
// per system; these broke it: the queue's fdatasync(2) and renameat2(2)
// (Linux's), the spool's free space from statfs fields that OpenBSD names
// otherwise and NetBSD does not have, and a test helper reading /proc.
func TestBuildsOnOtherUnixes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the module for four other systems")
	}
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	for _, goos := range []string{"freebsd", "openbsd", "netbsd", "darwin"} {
		cmd := exec.Command(goTool, "vet", "./...")
		cmd.Dir = ".." // the module root
		cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH=amd64", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("GOOS=%s go vet ./...: %v\n%s", goos, err, out)
		}
	}
}
