package queue

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// crashEnv names the spool directory when the test binary runs as the
// crash test's child.
const crashEnv = "PORTCULLIS_QUEUE_CRASH_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashEnv); dir != "" {
		crashChild(dir) // never returns: the parent kills it
	}
	os.Exit(m.Run())
}

// crashChild commits messages forever. Each body is random, of random size,
// and the prepend carries the body's SHA-256, so any message can be checked
// whole on its own; after Commit returns it prints "ID SHA256(prepend+body)".
func crashChild(dir string) {
	d, err := Open(dir, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], uint64(time.Now().UnixNano())^uint64(os.Getpid()))
	fill := rand.NewChaCha8(seed)
	rng := rand.New(fill)
	chunk := make([]byte, 4096)
	for {
		dr, err := d.NewDraft()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		body := sha256.New()
		for n := 1 + rng.IntN(150<<10); n > 0; n -= len(chunk) {
			c := chunk[:min(n, len(chunk))]
			fill.Read(c)
			dr.Write(c)
			body.Write(c)
		}
		prepend := "X-Body-SHA256: " + hex.EncodeToString(body.Sum(nil)) + "\r\n"
		if err := dr.Commit(testEnv("crash@x.test"), []byte(prepend)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		sum, _ := messageSum(d, dr.ID())
		fmt.Printf("%s %s\n", dr.ID(), sum)
	}
}

// messageSum returns the SHA-256 of a stored message and whether its body
// matches the checksum in its first line.
func messageSum(s Store, id string) (string, bool) {
	rc, err := s.Open(id)
	if err != nil {
		return "", false
	}
	defer rc.Close()
	all, err := io.ReadAll(rc)
	if err != nil {
		return "", false
	}
	total := sha256.Sum256(all)
	line, body, ok := bytes.Cut(all, []byte("\r\n"))
	want, _ := strings.CutPrefix(string(line), "X-Body-SHA256: ")
	bs := sha256.Sum256(body)
	return hex.EncodeToString(total[:]), ok && want == hex.EncodeToString(bs[:])
}

// TestCrashNeverLosesCommitted SIGKILLs a committing child at random
// moments. Everything it reported committed must be there, intact, and
// nothing partial may be listed. (SIGKILL tests the process-crash path;
// the fsyncs extend the same argument to power loss.)
func TestCrashNeverLosesCommitted(t *testing.T) {
	const rounds = 8
	dir := t.TempDir()
	printed := map[string]string{}
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	var tmpLeft int
	for r := 0; r < rounds; r++ {
		for id, sum := range runAndKill(t, dir, rng) {
			printed[id] = sum
		}
		tmpLeft += countExt(t, dir, tmpExt)
		d, err := Open(dir, Options{Logger: testLogger(t), Poll: -1})
		if err != nil {
			t.Fatal(err)
		}
		if n := countExt(t, dir, tmpExt); n != 0 {
			t.Fatalf("round %d: %d temporary files survive recovery", r, n)
		}
		checkIntact(t, d, printed, r)
		d.Close()
	}
	d, _ := Open(dir, Options{Logger: testLogger(t), Poll: -1})
	defer d.Close()
	l, _ := d.List()
	t.Logf("%d kills: %d commits reported, %d messages on disk (%d committed but killed before reporting), "+
		"%d drafts cut off and removed, %d corrupt", rounds, len(printed), len(l), len(l)-len(printed),
		tmpLeft, countExt(t, filepath.Join(dir, corruptDir), msgExt))
}

// runAndKill starts the child, lets it commit a random number of messages
// (then a random few milliseconds more), SIGKILLs it, and returns what it
// reported.
func runAndKill(t *testing.T, dir string, rng *rand.Rand) map[string]string {
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashNeverLosesCommitted$")
	cmd.Env = append(os.Environ(), crashEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	sc := bufio.NewScanner(out)
	killAfter := 1 + rng.IntN(25)
	for len(got) < killAfter && sc.Scan() {
		addLine(got, sc.Text())
	}
	time.Sleep(time.Duration(rng.IntN(20000)) * time.Microsecond)
	cmd.Process.Signal(syscall.SIGKILL)
	for sc.Scan() { // lines printed before the kill count too
		addLine(got, sc.Text())
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended by %v, not by our SIGKILL", err)
	}
	if len(got) == 0 {
		t.Fatal("child committed nothing")
	}
	return got
}

func addLine(m map[string]string, line string) {
	id, sum, ok := strings.Cut(line, " ")
	if ok && ValidID(id) && len(sum) == 64 { // a line cut by the kill is not a report
		m[id] = sum
	}
}

func checkIntact(t *testing.T, d *Dir, printed map[string]string, round int) {
	t.Helper()
	l, err := d.List()
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, env := range l {
		listed[env.ID] = true
		sum, whole := messageSum(d, env.ID)
		if !whole {
			t.Errorf("round %d: %s is listed but not whole", round, env.ID)
		}
		if want, ok := printed[env.ID]; ok && sum != want {
			t.Errorf("round %d: %s has sum %s, child reported %s", round, env.ID, sum, want)
		}
	}
	for id := range printed {
		if !listed[id] {
			t.Errorf("round %d: %s was reported committed and is gone", round, id)
		}
	}
}

func countExt(t *testing.T, dir, ext string) int {
	es, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range es {
		if filepath.Ext(e.Name()) == ext {
			n++
		}
	}
	return n
}
