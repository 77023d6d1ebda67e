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

// crashIntakeEnv set to 1 makes the child use the intake log, as the
// daemon does, and finish (deliver) some messages as well as defer others.
const crashIntakeEnv = "PORTCULLIS_QUEUE_CRASH_INTAKE"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashEnv); dir != "" {
		crashChild(dir) // never returns: the parent kills it
	}
	if spec := os.Getenv(releaseCrashEnv); spec != "" {
		releaseCrashChild(spec) // never returns
	}
	os.Exit(m.Run())
}

// crashChild commits messages forever. Each body is random, of random size,
// and the prepend carries the body's SHA-256, so any message can be checked
// whole on its own; after Commit returns it prints "ID SHA256(prepend+body)".
func crashChild(dir string) {
	intake := os.Getenv(crashIntakeEnv) == "1"
	d, err := Open(dir, Options{Intake: intake})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	maxSize := 150 << 10
	if intake {
		maxSize = 2 * memDraftMax // some spill to files of their own
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
		for n := 1 + rng.IntN(maxSize); n > 0; n -= len(chunk) {
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
		fmt.Printf("C %s %s\n", dr.ID(), sum)
		crashUpdate(d, intake && rng.IntN(3) == 0)
	}
}

// crashUpdate records one more delivery attempt on the message due soonest
// and prints "U ID ATTEMPTS" once Update returned.
// With deliver set it marks the message delivered instead and prints
// "D ID" once it is gone.
func crashUpdate(d *Dir, deliver bool) {
	l, err := d.Lease(time.Now())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	env := l.Envelope()
	if deliver {
		// A kill between Update and the report below may remove a
		// message without a report: this line says one may be gone.
		fmt.Printf("d %s\n", env.ID)
		env.Rcpts[0].Status = RcptDelivered
		if err := l.Update(env); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		fmt.Printf("D %s\n", env.ID)
		return
	}
	env.Attempts++
	env.Rcpts[0].Attempts = env.Attempts
	env.Rcpts[0].LastReply = fmt.Sprintf("451 4.4.1 attempt %d", env.Attempts)
	env.NextAttempt = time.Now()
	if err := l.Update(env); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	fmt.Printf("U %s %d\n", env.ID, env.Attempts)
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

// TestCrashNeverLosesCommitted SIGKILLs a child that commits messages and
// records delivery attempts (Update), at random moments. Everything it
// reported committed must be there, intact, and nothing partial may be
// listed; every reported Update must have stuck, whole. (SIGKILL tests
// the process-crash path; the fsyncs extend the argument to power loss.)
func TestCrashNeverLosesCommitted(t *testing.T) {
	t.Run("files", func(t *testing.T) { testCrash(t, false) })
	t.Run("intake", func(t *testing.T) { testCrash(t, true) })
}

func testCrash(t *testing.T, intake bool) {
	const rounds = 8
	dir := t.TempDir()
	rep := newReports()
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	var tmpLeft int
	for r := 0; r < rounds; r++ {
		runAndKill(t, dir, rng, rep, intake)
		tmpLeft += countExt(t, dir, tmpExt)
		d, err := Open(dir, Options{Logger: testLogger(t), Poll: -1})
		if err != nil {
			t.Fatal(err)
		}
		if n := countExt(t, dir, tmpExt); n != 0 {
			t.Fatalf("round %d: %d temporary files survive recovery", r, n)
		}
		checkIntact(t, d, rep, r)
		d.Close()
	}
	d, _ := Open(dir, Options{Logger: testLogger(t), Poll: -1})
	defer d.Close()
	l, _ := d.List()
	t.Logf("%d kills: %d commits, %d updates and %d deliveries reported; %d messages on disk; "+
		"%d temporary files cut off and removed; %d corrupt; %d intake segments left",
		rounds, len(rep.sums), rep.updates, len(rep.done), len(l), tmpLeft,
		countExt(t, filepath.Join(dir, corruptDir), msgExt), countExt(t, dir, intakeExt))
}

// reports is what the children said they did.
type reports struct {
	sums     map[string]string // ID -> SHA-256 of its bytes
	attempts map[string]int    // ID -> attempts recorded by the last reported Update
	done     map[string]bool   // IDs reported delivered (removed)
	going    map[string]bool   // IDs whose delivery began: they may be gone
	updates  int
}

func newReports() *reports {
	return &reports{sums: map[string]string{}, attempts: map[string]int{}, done: map[string]bool{}, going: map[string]bool{}}
}

// add takes one line of the child's output; a line cut by the kill (no
// newline, so the scanner hands over a fragment) is not a report.
func (r *reports) add(line string) {
	f := strings.Fields(line)
	switch {
	case len(f) == 3 && f[0] == "C" && ValidID(f[1]) && len(f[2]) == 64:
		r.sums[f[1]] = f[2]
	case len(f) == 3 && f[0] == "U" && ValidID(f[1]):
		var n int
		if _, err := fmt.Sscan(f[2], &n); err == nil && n > r.attempts[f[1]] {
			r.attempts[f[1]] = n
			r.updates++
		}
	case len(f) == 2 && f[0] == "D" && ValidID(f[1]):
		r.done[f[1]] = true
	case len(f) == 2 && f[0] == "d" && ValidID(f[1]):
		r.going[f[1]] = true
	}
}

// runAndKill starts the child, lets it commit a random number of messages
// (then a random few milliseconds more), SIGKILLs it, and records what it
// reported.
func runAndKill(t *testing.T, dir string, rng *rand.Rand, rep *reports, intake bool) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashNeverLosesCommitted$")
	cmd.Env = append(os.Environ(), crashEnv+"="+dir)
	if intake {
		cmd.Env = append(cmd.Env, crashIntakeEnv+"=1")
	}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	lines, killAfter := 0, 2+rng.IntN(50)
	for lines < killAfter && sc.Scan() {
		rep.add(sc.Text())
		lines++
	}
	time.Sleep(time.Duration(rng.IntN(20000)) * time.Microsecond)
	cmd.Process.Signal(syscall.SIGKILL)
	for sc.Scan() { // lines printed before the kill count too
		rep.add(sc.Text())
		lines++
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended by %v, not by our SIGKILL", err)
	}
	if lines == 0 {
		t.Fatal("child reported nothing")
	}
}

func checkIntact(t *testing.T, d *Dir, rep *reports, round int) {
	t.Helper()
	l, err := d.List()
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, env := range l {
		listed[env.ID] = true
		if rep.done[env.ID] {
			// A process crash keeps the done record (the kernel has it).
			t.Errorf("round %d: %s was reported delivered and came back", round, env.ID)
		}
		sum, whole := messageSum(d, env.ID)
		if !whole {
			t.Errorf("round %d: %s is listed but not whole", round, env.ID)
		}
		if want, ok := rep.sums[env.ID]; ok && sum != want {
			t.Errorf("round %d: %s has sum %s, child reported %s", round, env.ID, sum, want)
		}
		// Not lost, and not torn: envelope and recipient moved together.
		// (More attempts than reported is fine: the kill can fall between
		// an Update and its report.)
		if n := rep.attempts[env.ID]; env.Attempts < n || env.Rcpts[0].Attempts != env.Attempts {
			t.Errorf("round %d: %s records %d attempts (recipient %d), child reported %d",
				round, env.ID, env.Attempts, env.Rcpts[0].Attempts, n)
		}
	}
	for id := range rep.sums {
		if !listed[id] && !rep.done[id] && !rep.going[id] {
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
