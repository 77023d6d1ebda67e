package antivirus

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// command runs an external scanner on a temporary copy of the message.
type command struct {
	argv    []string // with "{file}" placeholders
	tempDir string
}

// foundRe picks the virus name out of "path: NAME FOUND" (clamscan, clamdscan
// and scanners that imitate them).
var foundRe = regexp.MustCompile(`:\s*(\S.*?)\s+FOUND`)

func (c *command) scan(ctx context.Context, r io.Reader) (string, error) {
	f, err := os.CreateTemp(c.tempDir, tempPattern(".eml"))
	if err != nil {
		return "", fmt.Errorf("%w: temporary file: %v", ErrScan, err)
	}
	defer os.Remove(f.Name())
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("%w: temporary file: %v", ErrScan, err)
	}
	args := make([]string, len(c.argv))
	for i, a := range c.argv {
		args[i] = strings.ReplaceAll(a, "{file}", f.Name())
	}
	// The output goes to a file, not a pipe: a wrapper script that leaves
	// a child behind (a helper in the background) would hold a pipe open,
	// and Run would wait for it and fail ("WaitDelay expired") although
	// the scanner had answered. Its exit status is the answer; the
	// children are killed with its process group once it exits.
	outf, err := os.CreateTemp(c.tempDir, tempPattern(".out"))
	if err != nil {
		return "", fmt.Errorf("%w: temporary file: %v", ErrScan, err)
	}
	defer os.Remove(outf.Name())
	defer outf.Close()
	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	go watchOutput(runCtx, outf, stop)
	cmd := exec.CommandContext(runCtx, args[0], args[1:]...)
	killGroup(cmd) // a scanner that is a script must not leave its children running
	cmd.WaitDelay = 2 * time.Second
	cmd.Stdout, cmd.Stderr = outf, outf
	err = cmd.Run()
	stop(nil)
	reapGroup(cmd)
	var out bytes.Buffer
	if _, serr := outf.Seek(0, io.SeekStart); serr == nil {
		_, _ = io.Copy(&out, io.LimitReader(outf, maxScanOutput))
	}
	var exit *exec.ExitError
	switch {
	case context.Cause(runCtx) == errOutput:
		return "", fmt.Errorf("%w: %s: %v: %s", ErrScan, args[0], errOutput, firstLine(out.String()))
	case err == nil:
		return "", nil
	case ctx.Err() != nil:
		return "", fmt.Errorf("%w: %s: %v", ErrScan, args[0], ctx.Err())
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		// Without the file's path: it may hold a colon (temp_dir), and
		// it is no part of the virus's name.
		return virusName(strings.ReplaceAll(out.String(), f.Name(), "")), nil
	default:
		return "", fmt.Errorf("%w: %s: %v: %s", ErrScan, args[0], err, firstLine(out.String()))
	}
}

// tempPrefix starts the names of a scan's temporary files, the plugin's
// PID and a dash after it: the files of a plugin that died before it could
// remove them (killed with SIGKILL, OOM, or exiting with its gateway) are
// known by the PID and swept at the next Configure (sweepTemp). They are
// copies of messages, and each such death left one per scan in flight.
const tempPrefix = "portcullis-scan-"

// tempPattern is the os.CreateTemp pattern of this process's files.
func tempPattern(ext string) string {
	return tempPrefix + strconv.Itoa(os.Getpid()) + "-*" + ext
}

// maxScanOutput bounds what is read of a scanner's output.
const maxScanOutput = 64 << 10

// maxOutputFile bounds what a scanner may write to its output file: one
// that goes on printing (a loop, a debug mode) filled temp_dir at some
// 100 MB a second until its timeout, and with it, often, the disk of the
// spool. Verbose scanners listing every member of a big archive stay far
// below it.
const maxOutputFile = 16 << 20

var errOutput = fmt.Errorf("killed: more than %d MiB of output", maxOutputFile>>20)

// watchOutput cancels the scan (and so kills the scanner) once f, its
// output, grows past maxOutputFile; it returns when ctx is done.
func watchOutput(ctx context.Context, f *os.File, cancel context.CancelCauseFunc) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if fi, err := f.Stat(); err == nil && fi.Size() > maxOutputFile {
				cancel(errOutput)
				return
			}
		}
	}
}

// virusName reads the scanner's output.
func virusName(out string) string {
	if m := foundRe.FindStringSubmatch(out); m != nil {
		return m[1]
	}
	if l := firstLine(out); l != "" {
		return l
	}
	return "unknown"
}

func firstLine(s string) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			if len(l) > 200 {
				l = l[:200]
			}
			return l
		}
	}
	return ""
}
