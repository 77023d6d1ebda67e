package queue

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"
)

// The intake log is where a running daemon keeps the small messages it
// accepted until they are delivered (Options.Intake). On this project's
// machine creating a file costs 0.5 ms of CPU and removing a delivered one
// more than a millisecond, which made one file per message the gateway's
// largest cost. The log costs neither: messages are appended to a few
// preallocated segment files that are reused, and one fdatasync (of blocks
// already allocated, so no journal commit) serves every session waiting at
// that moment: group commit, as a database's write-ahead log.
//
// # Format
//
// A segment starts with a 32-byte header (magic, generation, CRC-32C).
// Records follow, each a 28-byte header and a payload:
//
//	magic u32 | type u8 | 3 zero bytes | generation u64 | payload length u32 |
//	payload CRC-32C u32 | CRC-32C of the 24 header bytes before it u32
//
// A message record ('M') holds the ID and then exactly the bytes of an
// ID.msg file (body, prepend, envelope, trailer). A done record ('D') holds an ID whose message left
// the log: delivered, failed, or moved to its own file. Records carry the
// segment's generation, which changes each time the segment is reused, so
// the stale records of an earlier use beyond the write point are never
// read as new ones.
//
// # Why nothing is lost
//
// Commit returns (and the client gets 250) only after an fdatasync that
// began after the record was written. Each segment is flocked by the Dir
// that writes it. On Open, any segment whose lock can be taken belongs to
// no live process: its messages without a done record are written out as
// ordinary ID.msg files (fsynced, renamed, directory fsynced) and only
// then is the segment removed. A message that must wait (a deferral, a
// move or a bounce, or one older than intakeMaxAge) is written to its own
// file before its done record, so the queue commands can act on every
// message that waits; those in the log they show as being delivered
// (intake_view.go).
//
// Done records are not fsynced: after a power failure a delivered message
// may come back and be delivered again (at least once); a process crash
// keeps them, as the kernel holds the written pages.
const (
	intakePrefix  = "intake-"
	intakeExt     = ".log"
	segMagic      = "PCINTAK1"
	segHeaderLen  = 32
	recMagic      = 0x50434952 // "PCIR"
	recHeaderLen  = 28
	recMsg        = 'M'
	recDone       = 'D'
	segCap        = 4 << 20   // a segment takes no new message past this size
	memDraftMax   = 256 << 10 // bigger messages are spooled to a file of their own
	intakeMaxAge  = 30 * time.Second
	maxFreeSegs   = 4
	maxRecPayload = segCap + memDraftMax + 1<<20 // bound for recovery
)

// segment is one intake log file.
type segment struct {
	path   string
	f      *os.File // flocked exclusively while this Dir has it
	gen    uint64
	off    int64 // next write offset
	live   int   // message records without a done record
	sealed bool  // takes done records only
	doomed bool  // to be removed once the fdatasync running on it returns
}

// intakeRef is where a message lies in the log.
type intakeRef struct {
	seg *segment
	off int64 // first byte of the .msg-file image (after the ID)
	lay layout
	env *Envelope // as committed; never changed (a changed one goes to a file)
	at  time.Time
}

// intake is a Dir's log.
type intake struct {
	d     *Dir
	token string

	mu   sync.Mutex
	cur  *segment
	free []*segment
	n    int    // segments created, for names
	gen  uint64 // last generation used
	gs   *groupSync
	// syncing is the segment an fdatasync is running on (groupSync runs
	// one at a time): it is not closed under it.
	syncing *segment
}

func newIntake(d *Dir) *intake {
	in := &intake{d: d, token: randDigits(8), gen: uint64(time.Now().UnixNano())}
	in.gs = newGroupSync(in.syncCur)
	return in
}

// syncCur fdatasyncs the segment being written. A segment is fdatasynced
// when it stops being current, so a record written to an earlier segment
// is durable whichever segment this call finds.
func (in *intake) syncCur() error {
	in.mu.Lock()
	seg := in.cur
	if seg == nil || in.d.opts.NoSync {
		in.mu.Unlock()
		return nil
	}
	in.syncing = seg
	fd := int(seg.f.Fd())
	in.mu.Unlock()
	err := fdatasync(fd)
	in.mu.Lock()
	in.syncing = nil
	if seg.doomed {
		in.drop(seg)
	}
	in.mu.Unlock()
	return err
}

// commit appends a message record and returns once it is durable.
func (in *intake) commit(id string, body, prepend []byte, env *Envelope) (*intakeRef, error) {
	rec, err := buildMsgRecord(getBuf(), id, body, prepend, env)
	if err != nil {
		return nil, err
	}
	defer putBuf(rec)
	in.mu.Lock()
	seg, err := in.writable(int64(len(rec)))
	if err == nil {
		err = in.write(seg, rec)
	}
	if err != nil {
		in.mu.Unlock()
		return nil, err
	}
	ref := &intakeRef{seg: seg, off: seg.off - int64(len(rec)) + recHeaderLen + IDLen,
		lay: layout{int64(len(body)), int64(len(prepend))}, env: env, at: in.d.now()}
	seg.live++
	in.mu.Unlock()
	if err := in.gs.Sync(); err != nil {
		in.done(ref) // not known durable: the client is told 4xx and sends it again
		return nil, err
	}
	return ref, nil
}

// write puts a record with seg's generation at seg.off (in.mu held).
func (in *intake) write(seg *segment, rec []byte) error {
	binary.BigEndian.PutUint64(rec[8:], seg.gen)
	binary.BigEndian.PutUint32(rec[24:], crc32.Checksum(rec[:24], castagnoli))
	if _, err := seg.f.WriteAt(rec, seg.off); err != nil {
		return err
	}
	seg.off += int64(len(rec))
	return nil
}

// done writes id's done record and frees its segment when that was the
// last live message of a segment no longer written.
func (in *intake) done(ref *intakeRef) {
	id := ref.env.ID
	rec := make([]byte, recHeaderLen+IDLen)
	fillRecHeader(rec, recDone, []byte(id))
	copy(rec[recHeaderLen:], id)
	in.mu.Lock()
	defer in.mu.Unlock()
	seg := ref.seg
	if seg.f == nil {
		return
	}
	if err := in.write(seg, rec); err != nil {
		// Only a duplicate after a crash can come of it.
		in.d.log.Warn("queue: cannot write intake done record", "queue_id", id, "err", err)
	}
	seg.live--
	if seg.sealed && seg.live == 0 {
		in.release(seg)
	}
}

// writable returns the segment to append n bytes to (in.mu held).
func (in *intake) writable(n int64) (*segment, error) {
	if in.cur != nil && (in.cur.off+n <= segCap || in.cur.off == segHeaderLen) {
		return in.cur, nil
	}
	if in.cur != nil {
		old := in.cur
		// Whoever wrote to it may next sync the new current segment.
		if !in.d.opts.NoSync {
			if err := fdatasync(int(old.f.Fd())); err != nil {
				return nil, err
			}
		}
		old.sealed = true
		in.cur = nil
		if old.live == 0 {
			in.release(old)
		}
	}
	var seg *segment
	if k := len(in.free); k > 0 {
		seg, in.free = in.free[k-1], in.free[:k-1]
	} else {
		var err error
		if seg, err = in.create(); err != nil {
			return nil, err
		}
	}
	if err := in.reset(seg); err != nil {
		in.drop(seg)
		return nil, err
	}
	in.cur = seg
	return seg, nil
}

// reset starts a new generation in seg: a new header, writing from the
// top again. The header reaches the disk with the first record's sync.
func (in *intake) reset(seg *segment) error {
	in.gen = max(in.gen+1, uint64(time.Now().UnixNano()))
	var h [segHeaderLen]byte
	copy(h[:8], segMagic)
	binary.BigEndian.PutUint64(h[8:], in.gen)
	binary.BigEndian.PutUint32(h[16:], crc32.Checksum(h[:16], castagnoli))
	if _, err := seg.f.WriteAt(h[:], 0); err != nil {
		return err
	}
	seg.gen, seg.off, seg.live, seg.sealed = in.gen, segHeaderLen, 0, false
	return nil
}

// create makes a new segment file, zero-filled to segCap so that later
// writes and fdatasyncs allocate nothing, and makes its name durable.
func (in *intake) create() (*segment, error) {
	in.n++
	p := in.d.ownPath(in.token, in.n, intakeExt)
	f, err := createLocked(p, in.d.own)
	if err != nil {
		return nil, err
	}
	seg := &segment{path: p, f: f}
	zero := make([]byte, 256<<10)
	for off := int64(0); off < segCap && err == nil; off += int64(len(zero)) {
		_, err = f.WriteAt(zero, off)
	}
	if err == nil {
		err = in.d.syncFile(f)
	}
	if err == nil {
		err = in.d.syncDir()
	}
	if err != nil {
		in.drop(seg)
		return nil, fmt.Errorf("queue: %w", err)
	}
	return seg, nil
}

// newSuffix marks a log or scratch file being created: it takes its name
// only once its creator holds its lock, so that no other process's
// recovery can take it for a dead one's in between.
const newSuffix = ".new"

// ownPath names the n-th file with ext of the Dir whose token is token.
func (d *Dir) ownPath(token string, n int, ext string) string {
	return filepath.Join(d.path, fmt.Sprintf("%s%s-%04d%s", intakePrefix, token, n, ext))
}

// createLocked creates p, given to o and flocked exclusively by the
// returned file.
func createLocked(p string, o owner) (*os.File, error) {
	f, err := os.OpenFile(p+newSuffix, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	err = o.file(f)
	if err == nil {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	}
	if err == nil {
		err = renameNoReplace(p+newSuffix, p)
	}
	if err != nil {
		f.Close()
		os.Remove(p + newSuffix)
		return nil, fmt.Errorf("queue: create %s: %w", p, err)
	}
	return f, nil
}

// release keeps a segment with nothing live for reuse, or removes it when
// enough are kept (in.mu held).
func (in *intake) release(seg *segment) {
	if len(in.free) < maxFreeSegs {
		in.free = append(in.free, seg)
		return
	}
	in.drop(seg)
}

// drop removes a segment whose messages are all done (in.mu held); while
// an fdatasync runs on it, once that returns.
func (in *intake) drop(seg *segment) {
	if seg == in.syncing {
		seg.doomed = true
		return
	}
	os.Remove(seg.path)
	seg.f.Close()
	seg.f = nil
}

// close closes every segment. Segments with live messages stay on disk for
// the next Open to recover; empty ones are removed.
func (in *intake) close(live map[*segment]bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	segs := append([]*segment{}, in.free...)
	if in.cur != nil {
		segs = append(segs, in.cur)
	}
	for seg := range live {
		segs = append(segs, seg)
	}
	seen := map[*segment]bool{}
	for _, seg := range segs {
		if seen[seg] || seg.f == nil {
			continue
		}
		seen[seg] = true
		if seg.live == 0 {
			in.drop(seg)
		} else {
			seg.f.Close()
			seg.f = nil
		}
	}
	in.cur, in.free = nil, nil
}

// buildMsgRecord lays out a message record in buf: header, ID, then the
// .msg image. The header's generation and checksum are filled in by write.
func buildMsgRecord(buf []byte, id string, body, prepend []byte, env *Envelope) ([]byte, error) {
	js, err := marshalEnv(env)
	if err != nil {
		return nil, err
	}
	n := recHeaderLen + IDLen + len(body) + len(prepend) + len(js) + trailerLen
	rec := slices.Grow(buf[:0], n)[:recHeaderLen]
	rec = append(rec, id...)
	rec = append(rec, body...)
	rec = append(rec, prepend...)
	rec = append(rec, js...)
	rec = appendTrailerBytes(rec, int64(len(body)), int64(len(prepend)), js)
	fillRecHeader(rec, recMsg, rec[recHeaderLen:])
	return rec, nil
}

// fillRecHeader writes a record header for payload; the generation and
// the header checksum are filled in by write, under the log's lock.
func fillRecHeader(rec []byte, typ byte, payload []byte) {
	binary.BigEndian.PutUint32(rec[0:], recMagic)
	rec[4], rec[5], rec[6], rec[7] = typ, 0, 0, 0
	binary.BigEndian.PutUint32(rec[16:], uint32(len(payload)))
	binary.BigEndian.PutUint32(rec[20:], crc32.Checksum(payload, castagnoli))
}
