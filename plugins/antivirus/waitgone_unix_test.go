//go:build unix

package antivirus

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitGone waits until process pid no longer exists (killed, and reaped
// by init once its parent, the scanner script, is gone).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	for range 500 {
		if pid <= 0 || syscall.Kill(pid, 0) != nil {
			return
		}
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if f := strings.Fields(string(b)); len(f) > 2 && f[2] == "Z" {
			return // killed; a zombie until its new parent reaps it
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("the scanner's child %d still runs", pid)
}
