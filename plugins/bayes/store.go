package bayes

import (
	"context"
	"time"

	"github.com/cespare/xxhash/v2"
)

// Key identifies a token in a store: the 64-bit xxhash of its text, as
// rspamd stores them. Collisions at 64 bits are negligible for the few
// million tokens a site learns, and fixed-size keys keep the store small.
type Key uint64

// KeyOf returns the store key of token.
func KeyOf(token string) Key { return Key(xxhash.Sum64String(token)) }

// MsgHash identifies a learned message so that learning it again is a
// no-op and learning it as the other class moves its counts.
type MsgHash [16]byte

// Totals are the numbers of learned spam and ham messages.
type Totals struct {
	Spam, Ham uint32
}

// Learned is one message to learn.
type Learned struct {
	Hash MsgHash
	Keys []Key // distinct
	// Grams are the message's byte 4-gram features (gramFeatures), for
	// the gram model a GramStore keeps; nil leaves that model alone.
	Grams []uint32
	Spam  bool
	// Reinforce counts a message already learned as this class once more
	// (train-on-error: see Trainer). Its weight is remembered, so that
	// moving it to the other class later takes all of it back.
	Reinforce bool
}

// Outcome says what learning one message did.
type Outcome int

// The outcomes of learning one message.
const (
	Added      Outcome = iota // new message, counted
	Moved                     // known as the other class: its counts moved over
	Unchanged                 // already learned as this class
	Reinforced                // counted once more (Learned.Reinforce)
)

func (o Outcome) String() string {
	return [...]string{"added", "moved", "unchanged", "reinforced"}[o]
}

// Stats describes a store for `portcullis bayes stats`.
type Stats struct {
	Totals                 // counted messages per class, train-on-error weights included
	SpamMessages int       // distinct messages learned as spam
	HamMessages  int       // distinct messages learned as ham
	Tokens       int       // distinct tokens
	Messages     int       // learned message hashes
	Bytes        int64     // size on disk, 0 if not applicable
	LastLearn    time.Time // zero if never
	GramModel    Totals    // messages the gram model learned (GramStore)
	// OldHashes: the message hashes were made by an older build (see
	// hashVersion): relearning a message counts it again.
	OldHashes bool
}

// Store keeps per-token counts, per-token last-seen times (for expiry),
// message totals and the hashes of learned messages.
//
// The bbolt file store (OpenBolt) is the embedded default; a Redis store
// shared by several gateways can implement the same interface (a hash per
// token, a set of message hashes, Learn as a MULTI or Lua script).
type Store interface {
	// Totals returns the learned message counts.
	Totals(ctx context.Context) (Totals, error)
	// Lookup fills out[i] with the counts of keys[i] (zero when unknown).
	Lookup(ctx context.Context, keys []Key, out []Count) error
	// Learn applies a batch atomically and reports each message's outcome.
	Learn(ctx context.Context, batch []Learned, now time.Time) ([]Outcome, error)
	// Expire deletes tokens last seen before cutoff and reports how many.
	Expire(ctx context.Context, cutoff time.Time) (int, error)
	// Trim deletes tokens, those with the least evidence first, when
	// there are more than max, and reports how many (see BoltStore.Trim).
	Trim(ctx context.Context, max int) (int, error)
	// Stats describes the store.
	Stats(ctx context.Context) (Stats, error)
	// Close releases the store.
	Close() error
}

// GramStore is a Store that also keeps the gram model (see grams.go): its
// weights and how many spam and ham it learned. The bbolt store is one; a
// store that is not leaves Fisher's score alone.
type GramStore interface {
	// Grams returns the weights, nil when none were learned, and the
	// learned message counts.
	Grams(ctx context.Context) (Weights, Totals, error)
	// LearnGrams runs fn on the weights (zero when none were learned),
	// adds the deltas to the counts and stores both, atomically.
	LearnGrams(ctx context.Context, spam, ham int, fn func(Weights)) error
}
