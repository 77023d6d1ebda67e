package core_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// TestBuildsOnOtherUnixes: the whole module, tests included (vet compiles
// them), builds on the BSDs and macOS, not on Linux alone, and for a 32-bit
// processor, as the README's "Layout and tests" says (a constant 1<<40
// compared with an int broke the 32-bit build). Each system call that differs lives in a file
// per system; these broke it: the queue's fdatasync(2) and renameat2(2)
// (Linux's), the spool's free space from statfs fields that OpenBSD names
// otherwise and NetBSD does not have, and a test helper reading /proc.
func TestBuildsOnOtherUnixes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the module for four other systems")
	}
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	for _, sys := range [][2]string{{"freebsd", "amd64"}, {"openbsd", "amd64"}, {"netbsd", "amd64"}, {"darwin", "arm64"}, {"linux", "386"}} {
		cmd := exec.Command(goTool, "vet", "./...")
		cmd.Dir = ".." // the module root
		cmd.Env = append(os.Environ(), "GOOS="+sys[0], "GOARCH="+sys[1], "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("GOOS=%s GOARCH=%s go vet ./...: %v\n%s", sys[0], sys[1], err, out)
		}
	}
}
