package auth

import (
	"net/netip"
	"sync"
	"time"
)

// maxTracked bounds the lockout table: beyond it, expired entries are
// pruned, then the least dangerous (fewest failures, not locked) are dropped.
const maxTracked = 65536

// Lockout counts failed authentications per client network: after
// Failures failures within Window, the network is locked out of AUTH for
// Duration. IPv4 clients count per address, IPv6 clients per /64 (one
// host usually holds a whole /64 and could otherwise rotate addresses).
// Safe for concurrent use.
type Lockout struct {
	failures int
	window   time.Duration
	duration time.Duration
	now      func() time.Time
	max      int

	mu sync.Mutex
	m  map[netip.Prefix]*lockEntry
}

type lockEntry struct {
	first  time.Time // start of the current counting window
	count  int
	locked time.Time // locked until; zero: not locked
	// byUser splits count by the user name tried, so that a success
	// forgives only that user's typos: a client that holds one good
	// account must not reset its count between guesses at another's.
	byUser map[string]int
}

// maxUsersTracked bounds byUser; failures for further names go to
// otherUsers, which no success forgives.
const maxUsersTracked = 16

const otherUsers = "\x00other"

// NewLockout returns a lockout of failures failures within window, lasting
// duration (limits.auth_failures, and limits.auth_lockout for both times).
// now is the clock; nil means time.Now.
func NewLockout(failures int, window, duration time.Duration, now func() time.Time) *Lockout {
	if now == nil {
		now = time.Now
	}
	return &Lockout{failures: failures, window: window, duration: duration, now: now, max: maxTracked,
		m: map[netip.Prefix]*lockEntry{}}
}

// SetLimits applies new limits (a config reload) and keeps the table: a
// reload must not forgive a guesser. Counts go on under the new limits;
// a lockout already started keeps the end it was given.
func (l *Lockout) SetLimits(failures int, window, duration time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures, l.window, l.duration = failures, window, duration
}

func lockKey(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p
	}
	return netip.PrefixFrom(ip, 32)
}

// Locked reports whether ip may not try AUTH now.
func (l *Lockout) Locked(ip netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.m[lockKey(ip)]
	return e != nil && l.now().Before(e.locked)
}

// Fail records a failed authentication from ip, as user (the name tried;
// "" when none was given), and reports whether this failure locked it out
// (true once per lockout: the caller logs it).
func (l *Lockout) Fail(ip netip.Addr, user string) (nowLocked bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now, k := l.now(), lockKey(ip)
	e := l.m[k]
	if e == nil {
		if len(l.m) >= l.max {
			l.prune(now)
		}
		e = &lockEntry{first: now}
		l.m[k] = e
	}
	if now.Before(e.locked) {
		return false // already locked; failures while locked do not extend it
	}
	if now.Sub(e.first) >= l.window {
		e.first, e.count, e.byUser = now, 0, nil
	}
	e.count++
	if e.byUser == nil {
		e.byUser = map[string]int{}
	}
	if _, known := e.byUser[user]; !known && len(e.byUser) >= maxUsersTracked {
		user = otherUsers
	}
	e.byUser[user]++
	if e.count >= l.failures {
		e.locked = now.Add(l.duration)
		e.first, e.count, e.byUser = now, 0, nil
		return true
	}
	return false
}

// Succeed forgets the failures ip had as user: a user who finally typed
// the password right starts afresh. Failures as other names stay, so that
// a login to one account cannot reset a count of guesses at another's.
func (l *Lockout) Succeed(ip netip.Addr, user string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := lockKey(ip)
	e := l.m[k]
	if e == nil || l.now().Before(e.locked) {
		return
	}
	e.count -= e.byUser[user]
	delete(e.byUser, user)
	if e.count <= 0 {
		delete(l.m, k)
	}
}

// Len is the number of tracked networks (for metrics and tests).
func (l *Lockout) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// prune drops entries whose window and lockout are over; if the table is
// still full, it drops unlocked entries, then any, until a quarter is free.
func (l *Lockout) prune(now time.Time) {
	for k, e := range l.m {
		if !now.Before(e.locked) && now.Sub(e.first) >= l.window {
			delete(l.m, k)
		}
	}
	target := l.max * 3 / 4
	for _, lockedToo := range []bool{false, true} {
		for k, e := range l.m {
			if len(l.m) <= target {
				return
			}
			if lockedToo || !now.Before(e.locked) {
				delete(l.m, k)
			}
		}
	}
}
