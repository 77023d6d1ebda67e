package auth

import (
	"net/netip"
	"testing"
	"time"
)

func TestLockout(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	l := NewLockout(3, 15*time.Minute, 15*time.Minute, clock.Now)
	ip := netip.MustParseAddr("198.51.100.7")
	other := netip.MustParseAddr("198.51.100.8")

	steps := []struct {
		name       string
		advance    time.Duration
		fail       netip.Addr // zero: no failure this step
		wantNow    bool       // Fail's result
		wantLocked bool
	}{
		{"first failure", 0, ip, false, false},
		{"second failure", time.Minute, ip, false, false},
		{"other IP unaffected", 0, other, false, false},
		{"third failure locks", time.Minute, ip, true, true},
		{"still locked later", 14 * time.Minute, netip.Addr{}, false, true},
		{"failures while locked do not extend", 0, ip, false, true},
		{"unlocked after duration", time.Minute, netip.Addr{}, false, false},
		{"counting starts afresh", 0, ip, false, false},
		{"window expires between failures", 16 * time.Minute, ip, false, false},
		{"second in new window", time.Minute, ip, false, false},
		{"third in new window locks", time.Minute, ip, true, true},
	}
	for _, s := range steps {
		clock.Add(s.advance)
		if s.fail.IsValid() {
			if got := l.Fail(s.fail, "u"); got != s.wantNow {
				t.Errorf("%s: Fail = %v, want %v", s.name, got, s.wantNow)
			}
		}
		if got := l.Locked(ip); got != s.wantLocked {
			t.Errorf("%s: Locked = %v, want %v", s.name, got, s.wantLocked)
		}
	}
	if l.Locked(other) {
		t.Error("other IP locked")
	}
}

func TestLockoutSucceedAndIPv6(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	l := NewLockout(2, time.Hour, time.Hour, clock.Now)
	a := netip.MustParseAddr("2001:db8:1:2::1")
	b := netip.MustParseAddr("2001:db8:1:2::ffff") // same /64
	c := netip.MustParseAddr("2001:db8:1:3::1")    // another /64
	l.Fail(a, "u")
	l.Succeed(a, "u")
	if l.Fail(b, "u") {
		t.Error("Succeed did not reset the count")
	}
	if !l.Fail(a, "u") {
		t.Error("two failures in one /64 did not lock")
	}
	if !l.Locked(b) || l.Locked(c) {
		t.Errorf("locked: b %v c %v; want true false", l.Locked(b), l.Locked(c))
	}
	l.Succeed(b, "u") // a success cannot lift a lockout (it cannot happen while locked anyway)
	if !l.Locked(a) {
		t.Error("Succeed lifted a lockout")
	}
	m := NewLockout(1, time.Hour, time.Hour, clock.Now)
	if !m.Fail(netip.MustParseAddr("::ffff:192.0.2.1"), "u") || !m.Locked(netip.MustParseAddr("192.0.2.1")) {
		t.Error("v4-mapped address not the same as IPv4")
	}
}

func TestLockoutBounded(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	l := NewLockout(3, time.Minute, time.Minute, clock.Now)
	l.max = 1000
	locked := netip.MustParseAddr("203.0.113.1")
	for range 3 {
		l.Fail(locked, "u")
	}
	for i := range 5000 {
		l.Fail(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), "u")
		if l.Len() > l.max {
			t.Fatalf("table grew to %d > %d", l.Len(), l.max)
		}
	}
	if !l.Locked(locked) {
		t.Error("pruning dropped a locked entry while unlocked ones remained")
	}
	clock.Add(2 * time.Minute)
	l.Fail(netip.MustParseAddr("192.0.2.99"), "u")
	for i := range 2000 {
		l.Fail(netip.AddrFrom4([4]byte{11, 0, byte(i >> 8), byte(i)}), "u")
	}
	if l.Len() > l.max {
		t.Errorf("table %d > %d", l.Len(), l.max)
	}
}

// TestLockoutSetLimits: new limits apply to the counts already in the
// table; a lockout already started keeps its end.
func TestLockoutSetLimits(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	l := NewLockout(3, time.Hour, time.Hour, clock.Now)
	counting := netip.MustParseAddr("198.51.100.7")
	locked := netip.MustParseAddr("198.51.100.8")
	l.Fail(counting, "u")
	for range 3 {
		l.Fail(locked, "u")
	}
	l.SetLimits(2, time.Minute, time.Minute)
	if l.Len() != 2 {
		t.Fatalf("table has %d entries after SetLimits, want 2", l.Len())
	}
	if !l.Fail(counting, "u") {
		t.Error("second failure under auth_failures 2 did not lock")
	}
	clock.Add(30 * time.Minute)
	if !l.Locked(locked) {
		t.Error("a lockout started before SetLimits was shortened")
	}
	if l.Locked(counting) {
		t.Error("a lockout started after SetLimits does not use its duration")
	}
}

// TestLockoutSuccessForgivesOnlyThatUser: a client holding one good
// account must not reset its count between guesses at another's (a
// black-box test made 12 guesses at bob's password, logging in as alice
// after every four); a user's own typos are forgiven when they get in.
func TestLockoutSuccessForgivesOnlyThatUser(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	l := NewLockout(5, time.Hour, time.Hour, clock.Now)
	ip := netip.MustParseAddr("192.0.2.4")
	for round := range 2 {
		for range 2 {
			if l.Fail(ip, "bob") {
				t.Fatalf("round %d: locked early", round)
			}
		}
		l.Succeed(ip, "alice")
	}
	if !l.Fail(ip, "bob") || !l.Locked(ip) {
		t.Fatal("five guesses at bob, between logins as alice, did not lock")
	}

	typo := netip.MustParseAddr("192.0.2.5")
	for range 4 {
		l.Fail(typo, "carol")
	}
	l.Succeed(typo, "carol")
	for range 4 {
		if l.Fail(typo, "carol") {
			t.Fatal("carol's forgiven typos still counted")
		}
	}
}

// TestLockoutWindowLength: failures count together only within window
// (limits.auth_lockout) of the first. A window counted twice as long, or
// never expiring, locks out a user whose few typos are days apart; one too
// short lets a guesser pace its tries just past it. Both edges are
// checked: a failure just inside the window still counts, one at
// window's end starts a new count.
func TestLockoutWindowLength(t *testing.T) {
	const window = 10 * time.Minute
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	l := NewLockout(2, window, time.Hour, clock.Now)
	inside := netip.MustParseAddr("192.0.2.10")
	l.Fail(inside, "u")
	clock.Add(window - time.Second)
	if !l.Fail(inside, "u") || !l.Locked(inside) {
		t.Error("a second failure inside the window did not lock")
	}

	atEnd := netip.MustParseAddr("192.0.2.11")
	l.Fail(atEnd, "u")
	clock.Add(window)
	if l.Fail(atEnd, "u") || l.Locked(atEnd) {
		t.Error("a failure from the previous window (window ago) still counted")
	}
	// The count restarted with that failure: one more inside its window locks.
	clock.Add(window - time.Second)
	if !l.Fail(atEnd, "u") {
		t.Error("the new window did not count from its first failure")
	}
}
