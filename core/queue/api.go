// Package queue is the durable spool: every accepted message is one file
// holding its envelope and its bytes, fsynced (file and directory) before the
// client is told 250. A crash at any instant leaves a whole message or none.
//
// The same Store type serves the delivery queue and the quarantine (another
// directory). The CLI opens the directory while the daemon may be running;
// both see each other's changes. Run as root, it gives every file it makes
// there to the directory's owner, the daemon's user (owner.go).
//
// # Layout
//
//	ID.tmp    a draft: the message bytes, streamed to disk as they arrive
//	ID.msg    a committed message: body | prepend | envelope JSON | trailer
//	ID.env    the envelope's newer state (Update, Flush), when it changed
//	ID.rel    a released message staged in the destination, not yet queued
//	ID.moved  in the source, next to ID.msg: its release is decided
//	.lock     flocked shared by every open Dir, exclusive during recovery
//	.changed  control file: a new token is written on Delete, Flush and Move
//	corrupt/  files that did not parse, kept for an admin
//
// The body goes first because it is written before the prepend (header
// fields added after spooling) and the envelope are known; the 32-byte
// trailer (magic, body, prepend and envelope lengths, CRC-32C of the
// envelope) is written last. Readers stream prepend then body.
//
// # Why a crash loses nothing
//
// Commit appends prepend, envelope and trailer to ID.tmp, fsyncs it,
// renames it to ID.msg (RENAME_NOREPLACE), and fsyncs the directory; only
// then does it return, and only then does the client get 250. The rename is
// the commit point: before it the message is a .tmp file that recovery
// removes (the client got no 250 and will retry); after it the name points
// at a complete, fsynced file. A .msg whose trailer does not match its size
// (truncated, garbage) cannot come from this code path and is moved to
// corrupt/, never deleted.
//
// Update never rewrites the (possibly large) .msg: it writes the envelope
// to ID.env.tmp, fsyncs, renames it over ID.env, fsyncs the directory. A
// crash leaves the old ID.env (or none: the envelope in the trailer) or the
// new one. Removal unlinks ID.msg first (the message is gone at that
// instant), then ID.env; an ID.env left without its .msg is cleared by the
// next recovery. Move stages the copy in the destination, marks the
// original as released, and only then makes the copy a message and
// removes the original (release.go): a crash at any point leaves the
// message held or queued once, and releasing it again finishes the move
// without ever queueing a second copy.
//
// Open recovers only when it gets the .lock exclusively, i.e. when no
// other process has the directory open: a CLI run while the daemon works
// must not remove the daemon's drafts.
//
// # Leases and other processes
//
// A lease is an exclusive flock on ID.msg, so a CLI delete of a message
// being delivered fails with ErrLeased. The in-memory index holds only ID
// and due time per message (a heap); envelopes are read from disk. Other
// processes' changes reach a running Dir through the control file: Delete,
// Flush and Move write a new random token into .changed; every open Dir
// reads those 16 bytes every Options.Poll (250ms) and rescans the
// directory only when they changed (a token, not the mtime, because file
// timestamps can be coarser than two changes in a row). So the daemon sees
// a CLI delete, flush or quarantine release within about a quarter of a
// second, and an idle queue of any size costs one small read per poll. A message another process holds is passed over for a
// second, one that cannot be read (EMFILE, EIO) for 30 seconds; neither is
// ever dropped from the schedule.
//
// # IDs
//
// 16 characters of [0-9A-Z]: 12 base-36 digits of a nanosecond timestamp,
// forced to increase within the process, then 4 random digits that keep
// two processes apart. They sort by time as strings and are safe to use as
// file names (ValidID refuses anything else before a path is built).
package queue

import (
	"errors"
	"io"
	"time"
)

// Errors callers test for.
var (
	ErrNotFound = errors.New("queue: no such message")
	ErrEmpty    = errors.New("queue: nothing due")
	ErrLeased   = errors.New("queue: message is being delivered")
)

// Client is what is known of the client that handed the message in.
type Client struct {
	IP            string `json:"ip"`
	Port          int    `json:"port,omitempty"`
	HELO          string `json:"helo,omitempty"`
	Hostname      string `json:"hostname,omitempty"` // forward-confirmed rDNS
	TLS           bool   `json:"tls,omitempty"`
	Listener      string `json:"listener,omitempty"`
	Trusted       bool   `json:"trusted,omitempty"` // in relay.networks
	Authenticated bool   `json:"authenticated,omitempty"`
	User          string `json:"user,omitempty"`
}

// RcptStatus is where one recipient stands.
type RcptStatus string

// Recipient states. Pending recipients are (re)tried; the others are final.
const (
	RcptPending   RcptStatus = "pending"
	RcptDelivered RcptStatus = "delivered"
	RcptFailed    RcptStatus = "failed" // permanent failure or expiry; a DSN may be owed
)

// Recipient is one envelope recipient and its delivery state.
type Recipient struct {
	Addr      string     `json:"addr"`
	ORCPT     string     `json:"orcpt,omitempty"`  // DSN ORCPT, "rfc822;addr" form
	Notify    []string   `json:"notify,omitempty"` // DSN NOTIFY: NEVER or SUCCESS/FAILURE/DELAY
	Status    RcptStatus `json:"status"`
	Attempts  int        `json:"attempts,omitempty"`
	LastReply string     `json:"last_reply,omitempty"` // the next hop's last reply, for logs and DSNs
	LastHop   string     `json:"last_hop,omitempty"`   // host and address it came from
	LastLocal bool       `json:"last_local,omitempty"` // LastReply was made here (a connection refused, a loop), not said by the hop
	DSNSent   bool       `json:"dsn_sent,omitempty"`   // a failure DSN was made for this recipient
}

// Envelope is everything about a queued message except its bytes.
type Envelope struct {
	ID       string       `json:"id"`
	From     string       `json:"from"` // reverse-path without brackets; "" is <>
	Rcpts    []*Recipient `json:"rcpts"`
	BodyType string       `json:"body,omitempty"` // 7BIT | 8BITMIME | BINARYMIME
	SMTPUTF8 bool         `json:"smtputf8,omitempty"`
	DSNRet   string       `json:"dsn_ret,omitempty"` // FULL | HDRS
	DSNEnvID string       `json:"dsn_envid,omitempty"`
	Client   Client       `json:"client"`

	Received      time.Time `json:"received"`       // when it was accepted
	NextAttempt   time.Time `json:"next_attempt"`   // when delivery is next due
	Attempts      int       `json:"attempts"`       // delivery attempts so far
	DelayNotified bool      `json:"delay_notified"` // the "still trying" notice went out
	IsDSN         bool      `json:"is_dsn,omitempty"`

	// Kept by the quarantine: why it is held, and the stage results then.
	Reason  string            `json:"reason,omitempty"`
	Results map[string]string `json:"results,omitempty"`
	Tags    []string          `json:"tags,omitempty"`
}

// Pending returns the recipients still to be delivered.
func (e *Envelope) Pending() []*Recipient {
	var out []*Recipient
	for _, r := range e.Rcpts {
		if r.Status == RcptPending {
			out = append(out, r)
		}
	}
	return out
}

// Draft is a message being written. Nothing of it is visible in the queue
// until Commit returns nil.
type Draft interface {
	ID() string
	io.Writer // the message bytes (header and body), in order
	// Path, Offset: where the bytes written so far lie on disk, for stages
	// that read the spooled message before it is committed.
	Path() string
	Offset() int64
	Size() int64
	// Commit stores env (its ID is set to ID()) with the bytes, fsyncs file
	// and directory, and makes the message due now (or at env.NextAttempt).
	// Prepend, when not empty, is placed before the written bytes (header
	// fields added after the body was spooled).
	Commit(env *Envelope, prepend []byte) error
	// Abort discards the draft. Safe after Commit (then it does nothing).
	Abort() error
}

// DurableNotifier is a Draft that calls f once Commit has made its
// message durable and before the message is due for delivery, so that the
// receiving side's log line about the commit ("queued") comes before any
// line about its delivery, yet never before the message is safe. f is not
// called when Commit fails.
type DurableNotifier interface {
	OnDurable(f func())
}

var (
	_ DurableNotifier = (*draft)(nil)
	_ DurableNotifier = (*memDraft)(nil)
)

// Lease is a message taken for delivery. Only one holder at a time.
type Lease interface {
	Envelope() *Envelope
	// Open returns the message bytes, streamed from the spool.
	Open() (io.ReadCloser, error)
	// Update durably records the envelope's new state (recipient statuses,
	// attempts, next attempt, delay notice). When no recipient is pending
	// the message is removed. In *Dir, a successful Update ends the lease
	// (the message is rescheduled at env.NextAttempt); a second Update
	// fails and Release after it does nothing, so `defer l.Release()` is
	// always safe. On error the lease is kept.
	Update(env *Envelope) error
	// Release gives the message back without changes.
	Release() error
}

// Store is the queue (or quarantine) in one directory.
type Store interface {
	// NewDraft starts a new message with a fresh ID. IDs are unique and sort by time.
	NewDraft() (Draft, error)
	// NewDraftAs starts a message that commits as id, the ID of another
	// draft (of this store or another) that it copies and that is aborted
	// once the copy is committed: a message rewritten at commit keeps the
	// ID its client and log lines have seen.
	NewDraftAs(id string) (Draft, error)
	// Lease takes the message due soonest with NextAttempt <= now, or ErrEmpty.
	Lease(now time.Time) (Lease, error)
	// Wake is signalled when a message is committed or flushed.
	Wake() <-chan struct{}
	// NextDue is the earliest NextAttempt of the messages not leased (zero if none).
	NextDue() time.Time

	List() ([]*Envelope, error)
	Get(id string) (*Envelope, error)
	Open(id string) (io.ReadCloser, error)
	Delete(id string) error
	// Flush makes one message (or all, with id "") due now.
	Flush(id string) error
	// Move takes a message out of this store and commits it into dst with
	// env's new state (quarantine release). Not for a leased message.
	Move(id string, dst Store, env *Envelope) error
	Close() error
}
