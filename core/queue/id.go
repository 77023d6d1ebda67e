package queue

import (
	"crypto/rand"
	"encoding/binary"
	"strings"
	"sync"
	"time"
)

// IDLen is the length of a queue ID.
const IDLen = 16

const idDigits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

// An ID is 12 base-36 digits of a nanosecond Unix timestamp (enough until the
// year 2119) followed by 4 random base-36 digits. Within one process the
// timestamp part is forced to increase strictly, so IDs from one process are
// unique and sorted even when the clock stalls or steps back; across
// processes the random part (1.7 million values) separates two IDs made in
// the same nanosecond. Fixed width and the digit order make string order
// equal to time order.
type idGen struct {
	mu   sync.Mutex
	last int64
}

var ids idGen // shared by every Dir of the process: one monotonic sequence

func (g *idGen) next(now time.Time) string {
	ns := now.UnixNano()
	g.mu.Lock()
	if ns <= g.last {
		ns = g.last + 1
	}
	g.last = ns
	g.mu.Unlock()

	var b [IDLen]byte
	encode36(b[:12], uint64(ns))
	var r [8]byte
	_, _ = rand.Read(r[:]) // crypto/rand.Read never fails (Go 1.24+)
	encode36(b[12:], binary.LittleEndian.Uint64(r[:]))
	return string(b[:])
}

// encode36 writes v in base 36 into dst, most significant digit first,
// keeping the low len(dst) digits.
func encode36(dst []byte, v uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = idDigits[v%36]
		v /= 36
	}
}

// ValidID reports whether s has the form of a queue ID. Paths are built from
// IDs, so anything else (a "../x" from the command line) is refused.
func ValidID(s string) bool {
	if len(s) != IDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !strings.ContainsRune(idDigits, rune(s[i])) {
			return false
		}
	}
	return true
}

// IDTime returns the time encoded in a queue ID (zero if s is not one).
func IDTime(s string) time.Time {
	if !ValidID(s) {
		return time.Time{}
	}
	var v uint64
	for i := 0; i < 12; i++ {
		v = v*36 + uint64(strings.IndexByte(idDigits, s[i]))
	}
	return time.Unix(0, int64(v))
}

// randDigits returns n random base-36 digits (n <= 12).
func randDigits(n int) string {
	var r [8]byte
	_, _ = rand.Read(r[:])
	b := make([]byte, n)
	encode36(b, binary.LittleEndian.Uint64(r[:]))
	return string(b)
}
