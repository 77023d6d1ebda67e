package smtpd

import (
	"net/netip"
	"sync"
	"time"
)

// connRate is limits.max_connection_rate: how many connections one client
// (limitKey: an IPv4 address, an IPv6 /64) may open per minute, as
// Postfix's anvil enforces smtpd_client_connection_rate_limit. A token
// bucket per client holds up to the limit and refills at the limit per
// minute, so a client may open them all at once and then one every
// 60s/limit. Clients in relay.networks are not counted (Postfix's
// smtpd_client_event_limit_exceptions is $mynetworks).
type connRate struct {
	mu    sync.Mutex
	m     map[netip.Prefix]*tokenBucket
	swept time.Time
}

type tokenBucket struct {
	tokens float64
	last   time.Time
}

// sweepAt is the number of clients above which full buckets (idle for a
// minute or more) are dropped, at most once a minute: memory stays
// bounded by the clients of the last minute or two.
const sweepAt = 4096

func newConnRate() *connRate { return &connRate{m: map[netip.Prefix]*tokenBucket{}} }

// allow takes a token for k at now, or reports false when its bucket is
// empty. perMinute 0 (or less) means no limit.
func (r *connRate) allow(k netip.Prefix, perMinute int, now time.Time) bool {
	if perMinute <= 0 {
		return true
	}
	limit := float64(perMinute)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.m) >= sweepAt && now.Sub(r.swept) >= time.Minute {
		r.swept = now
		for key, b := range r.m {
			if now.Sub(b.last) >= time.Minute {
				delete(r.m, key)
			}
		}
	}
	b := r.m[k]
	if b == nil {
		b = &tokenBucket{tokens: limit, last: now}
		r.m[k] = b
	}
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = min(limit, b.tokens+elapsed.Minutes()*limit)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
