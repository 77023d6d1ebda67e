package greylist

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/plugintest"
)

// clock is a movable clock.
type clock struct{ t time.Time }

// clockMu guards every test clock: the stage reads it from its background
// sweep while a test advances it.
var clockMu sync.Mutex

func (c *clock) now() time.Time {
	clockMu.Lock()
	defer clockMu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	clockMu.Lock()
	defer clockMu.Unlock()
	c.t = c.t.Add(d)
}

func newStage(t *testing.T, env sdk.Env, c *clock, cfg map[string]any) *Stage {
	t.Helper()
	s := &Stage{now: c.now}
	if err := s.Configure(context.Background(), env, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func rcpt(ip, from, to string) *sdk.Request {
	return &sdk.Request{Phase: sdk.PhaseRcpt, Conn: sdk.Conn{IP: ip}, Envelope: sdk.Envelope{From: from, Rcpt: to}}
}

type step struct {
	name    string
	advance time.Duration
	req     *sdk.Request
	verdict sdk.Verdict
	tag     string
	retry   string
}

func run(t *testing.T, s *Stage, c *clock, steps []step) {
	t.Helper()
	for _, st := range steps {
		c.advance(st.advance)
		res, err := s.Check(context.Background(), st.req)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if res.Verdict != st.verdict || !slices.Equal(res.Tags, []string{st.tag}) || res.Attrs["retry_after"] != st.retry {
			t.Errorf("%s: got %s %q retry_after=%q, want %s %q %q", st.name, res.Verdict, res.Tags, res.Attrs["retry_after"], st.verdict, st.tag, st.retry)
		}
	}
}

// boltEnv is a fresh bbolt state for a stage.
func boltEnv(t testing.TB) sdk.Env {
	return sdk.Env{StageName: "greylist", StatePath: filepath.Join(t.TempDir(), "g.db")}
}

// backends are the stores the behavioural tests run against: each fresh
// returns the Env of a new, empty state.
var backends = []struct {
	name  string
	fresh func(t testing.TB) sdk.Env
}{
	{"bbolt", boltEnv},
	{"redis", func(t testing.TB) sdk.Env {
		return sdk.Env{StageName: "greylist", RedisURL: startRedis(t).url}
	}},
}

// eachBackend runs test against every store.
func eachBackend(t *testing.T, test func(t *testing.T, fresh func(t testing.TB) sdk.Env)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { test(t, b.fresh) })
	}
}

func TestTriplet(t *testing.T) { eachBackend(t, testTriplet) }

func testTriplet(t *testing.T, fresh func(t testing.TB) sdk.Env) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	s := newStage(t, fresh(t), c, map[string]any{"auto_allow_after": 0})
	a := rcpt("203.0.113.5", "Alice@Sender.example", "bob@example.test")
	run(t, s, c, []step{
		{"first attempt", 0, a, sdk.VerdictFail, "greylist", "300"},
		{"too early", 100 * time.Second, a, sdk.VerdictFail, "greylist", "200"},
		{"other address of the /24, other recipient", 0, rcpt("203.0.113.77", "alice@sender.example", "carol@example.test"), sdk.VerdictFail, "greylist", "300"},
		{"retry from the /24 after the delay", 201 * time.Second, rcpt("203.0.113.9", "alice@sender.example", "BOB@example.test"), sdk.VerdictPass, "passed", ""},
		{"known afterwards", time.Hour, a, sdk.VerdictPass, "known", ""},
		{"other network", 0, rcpt("203.0.114.5", "alice@sender.example", "bob@example.test"), sdk.VerdictFail, "greylist", "300"},
		{"null sender", 0, rcpt("203.0.113.5", "", "bob@example.test"), sdk.VerdictFail, "greylist", "300"},
		{"carol retried too late", 49 * time.Hour, rcpt("203.0.113.77", "alice@sender.example", "carol@example.test"), sdk.VerdictFail, "greylist", "300"},
		{"pass lifetime renewed by use", 32 * 24 * time.Hour, a, sdk.VerdictPass, "known", ""},
		{"forgotten after the lifetime", 36 * 24 * time.Hour, a, sdk.VerdictFail, "greylist", "300"},
	})
}

func TestIPv6AndAutoAllow(t *testing.T) { eachBackend(t, testIPv6AndAutoAllow) }

func testIPv6AndAutoAllow(t *testing.T, fresh func(t testing.TB) sdk.Env) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	s := newStage(t, fresh(t), c, map[string]any{"delay": "1m", "auto_allow_after": 2})
	var steps []step
	for _, to := range []string{"a@example.test", "b@example.test"} { // an hour apart: two occasions
		r := rcpt("2001:db8:1:2::5", "s@sender.example", to)
		steps = append(steps,
			step{"first " + to, time.Hour, r, sdk.VerdictFail, "greylist", "60"},
			step{"retry " + to, 61 * time.Second, rcpt("2001:db8:1:2:ffff::1", "s@sender.example", to), sdk.VerdictPass, "passed", ""})
	}
	steps = append(steps,
		step{"auto-allowed client", 0, rcpt("2001:db8:1:2::99", "x@other.example", "z@example.test"), sdk.VerdictPass, "auto_allow", ""},
		step{"other /64", 0, rcpt("2001:db8:1:3::5", "x@other.example", "z@example.test"), sdk.VerdictFail, "greylist", "60"})
	run(t, s, c, steps)
}

// TestPersistence: state survives closing and reopening the store (a
// plugin restart), and expired records are dropped: a bbolt Sweep removes
// only those; Redis ignores them on read until its TTL removes them.
func TestPersistence(t *testing.T) { eachBackend(t, testPersistence) }

func testPersistence(t *testing.T, fresh func(t testing.TB) sdk.Env) {
	env := fresh(t)
	c := &clock{time.Unix(1_800_000_000, 0)}
	s := newStage(t, env, c, nil)
	a := rcpt("198.51.100.1", "a@x.example", "b@example.test")
	run(t, s, c, []step{{"first", 0, a, sdk.VerdictFail, "greylist", "300"}})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = newStage(t, env, c, nil)
	run(t, s, c, []step{{"after reopen", 5 * time.Minute, a, sdk.VerdictPass, "passed", ""}})
	other := rcpt("198.51.100.1", "a@x.example", "c@example.test")
	run(t, s, c, []step{{"another", 0, other, sdk.VerdictFail, "greylist", "300"}})
	c.advance(49 * time.Hour)
	if b, ok := s.store.(*BoltStore); ok {
		n, err := b.Sweep()
		if err != nil || n != 1 {
			t.Fatalf("sweep removed %d (%v), want the one expired greylist record", n, err)
		}
	}
	run(t, s, c, []step{
		{"passed triplet kept", 0, a, sdk.VerdictPass, "known", ""},
		{"expired triplet starts over", 0, other, sdk.VerdictFail, "greylist", "300"},
	})
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []map[string]any{
		{"delay": 5}, {"delay": "5x"}, {"retry_window": "0s"}, {"ipv4_prefix": 33}, {"auto_allow_after": -1}, {"dealy": "1m"},
	} {
		if err := New().Configure(context.Background(), sdk.Env{StatePath: filepath.Join(t.TempDir(), "g.db")}, cfg); err == nil {
			t.Errorf("%v: no error", cfg)
		}
	}
	if err := New().Configure(context.Background(), sdk.Env{}, nil); err == nil {
		t.Error("no state path: no error")
	}
}

// TestOverProtocol: the stage over gRPC; Env.RedisURL crosses the wire.
func TestOverProtocol(t *testing.T) { eachBackend(t, testOverProtocol) }

func testOverProtocol(t *testing.T, fresh func(t testing.TB) sdk.Env) {
	c := plugintest.Start(t, New())
	if err := c.Configure(fresh(t), map[string]any{"delay": "5m", "pass_lifetime": "35d"}); err != nil {
		t.Fatal(err)
	}
	res, err := c.Check(context.Background(), rcpt("192.0.2.1", "a@x.example", "b@example.test"))
	if err != nil || res.Verdict != sdk.VerdictFail || res.Attrs["retry_after"] != "300" || res.Attrs["client"] != "192.0.2.0/24" {
		t.Fatalf("%+v %v", res, err)
	}
}

// TestConcurrent: concurrent recipients of one triplet (go test -race)
// create one record; all are deferred, and the retry passes once.
func TestConcurrent(t *testing.T) { eachBackend(t, testConcurrent) }

func testConcurrent(t *testing.T, fresh func(t testing.TB) sdk.Env) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	s := newStage(t, fresh(t), c, nil)
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		go func() {
			res, err := s.Check(context.Background(), rcpt("192.0.2.1", "a@x.example", "b@example.test"))
			if err == nil && res.Verdict != sdk.VerdictFail {
				err = fmt.Errorf("verdict %s", res.Verdict)
			}
			errs <- err
		}()
	}
	for i := 0; i < 16; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	s.mu.Lock()
	c.advance(5 * time.Minute)
	s.mu.Unlock()
	run(t, s, c, []step{
		{"retry", 0, rcpt("192.0.2.1", "a@x.example", "b@example.test"), sdk.VerdictPass, "passed", ""},
		{"again", 0, rcpt("192.0.2.1", "a@x.example", "b@example.test"), sdk.VerdictPass, "known", ""},
	})
}

// TestReconfigure: a reload with the same state file keeps it open (a
// second open would wait for bbolt's lock); a new path moves the stage to it.
func TestReconfigure(t *testing.T) {
	dir := t.TempDir()
	c := &clock{time.Unix(1_800_000_000, 0)}
	s := newStage(t, sdk.Env{StatePath: filepath.Join(dir, "a.db")}, c, nil)
	a := rcpt("192.0.2.1", "a@x.example", "b@example.test")
	run(t, s, c, []step{{"first", 0, a, sdk.VerdictFail, "greylist", "300"}})
	if err := s.Configure(context.Background(), sdk.Env{StatePath: filepath.Join(dir, "a.db")}, map[string]any{"delay": "1m"}); err != nil {
		t.Fatal(err)
	}
	run(t, s, c, []step{{"new delay, same state", 61 * time.Second, a, sdk.VerdictPass, "passed", ""}})
	if err := s.Configure(context.Background(), sdk.Env{StatePath: filepath.Join(dir, "b.db")}, nil); err != nil {
		t.Fatal(err)
	}
	run(t, s, c, []step{{"other file", 0, a, sdk.VerdictFail, "greylist", "300"}})
}

func TestKeysFromClientStrings(t *testing.T) { eachBackend(t, testKeysFromClientStrings) }

// testKeysFromClientStrings: the sender and the recipient are the client's
// choice. A "|" in them must not let one triplet pass as another (unescaped,
// both of the first two had the key "t|192.0.2.0/24|s@x.example|b|c@example.test"),
// and an address too long for a bbolt key (32 KiB) must be greylisted like
// any other, not be an error that on_error continue lets through.
func testKeysFromClientStrings(t *testing.T, fresh func(t testing.TB) sdk.Env) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	s := newStage(t, fresh(t), c, map[string]any{"auto_allow_after": 0})
	long := strings.Repeat("a", 40<<10) + "@x.example"
	run(t, s, c, []step{
		{"first", 0, rcpt("192.0.2.1", "s@x.example|b", "c@example.test"), sdk.VerdictFail, "greylist", "300"},
		{"retried", 5 * time.Minute, rcpt("192.0.2.1", "s@x.example|b", "c@example.test"), sdk.VerdictPass, "passed", ""},
		{"another triplet, same key unescaped", 0, rcpt("192.0.2.1", "s@x.example", "b|c@example.test"), sdk.VerdictFail, "greylist", "300"},
		{"escape character", 0, rcpt("192.0.2.1", "s@x.example%7cb", "c@example.test"), sdk.VerdictFail, "greylist", "300"},
		{"long sender", 0, rcpt("192.0.2.1", long, "c@example.test"), sdk.VerdictFail, "greylist", "300"},
		{"long sender retried", 5 * time.Minute, rcpt("192.0.2.1", long, "c@example.test"), sdk.VerdictPass, "passed", ""},
		{"long sender, another recipient", 0, rcpt("192.0.2.1", long, "d@example.test"), sdk.VerdictFail, "greylist", "300"},
		{"long sender, other domain", 0, rcpt("192.0.2.1", strings.Repeat("a", 40<<10)+"@y.example", "c@example.test"), sdk.VerdictFail, "greylist", "300"},
	})
	if k := tripletKey("2001:db8::/64", long, "c@example.test"); len(k) > maxKeyLen {
		t.Errorf("key of %d bytes, want at most %d", len(k), maxKeyLen)
	}
}
