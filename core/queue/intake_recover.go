package queue

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// intakeImage is a live message found in a segment: its ID and the bytes
// of its .msg file.
type intakeImage struct {
	id  string
	img []byte
}

// parseSegment returns the messages of a segment image that have no done
// record, in the order they were written. Reading stops at the first
// record that is not whole and of the segment's generation: the tail of
// an interrupted write, or an earlier generation's leftovers. A segment
// that was created but never used (no header yet) holds nothing.
func parseSegment(b []byte) ([]intakeImage, error) {
	if len(b) < segHeaderLen || bytes.Equal(b[:segHeaderLen], make([]byte, segHeaderLen)) {
		return nil, nil
	}
	if string(b[:8]) != segMagic || crc32.Checksum(b[:16], castagnoli) != binary.BigEndian.Uint32(b[16:]) {
		return nil, fmt.Errorf("%w: intake segment header", errCorrupt)
	}
	gen := binary.BigEndian.Uint64(b[8:])
	var order []string
	live := map[string][]byte{}
	for off := segHeaderLen; off+recHeaderLen <= len(b); {
		h := b[off : off+recHeaderLen]
		plen := int(binary.BigEndian.Uint32(h[16:]))
		if binary.BigEndian.Uint32(h) != recMagic ||
			crc32.Checksum(h[:24], castagnoli) != binary.BigEndian.Uint32(h[24:]) ||
			binary.BigEndian.Uint64(h[8:]) != gen || plen < IDLen || plen > len(b)-off-recHeaderLen {
			break
		}
		p := b[off+recHeaderLen : off+recHeaderLen+plen]
		if crc32.Checksum(p, castagnoli) != binary.BigEndian.Uint32(h[20:]) {
			break
		}
		id := string(p[:IDLen])
		switch {
		case !ValidID(id):
			return nil, fmt.Errorf("%w: intake record names %q", errCorrupt, id)
		case h[4] == recMsg:
			if _, seen := live[id]; !seen {
				order = append(order, id)
			}
			live[id] = p[IDLen:]
		case h[4] == recDone:
			delete(live, id)
		default:
			return nil, fmt.Errorf("%w: intake record type %q", errCorrupt, h[4])
		}
		off += recHeaderLen + plen
	}
	var out []intakeImage
	for _, id := range order {
		if img, ok := live[id]; ok {
			out = append(out, intakeImage{id, img})
		}
	}
	return out, nil
}

// recoverIntake writes out the live messages of every intake segment that
// no running process holds (its writer died or closed) as ID.msg files,
// fsyncs them and the directory, and only then removes the segment.
func (d *Dir) recoverIntake() error {
	names, err := d.names()
	if err != nil {
		return err
	}
	d.removeStaleScratch(names)
	for _, n := range names {
		if !strings.HasPrefix(n, intakePrefix) || !strings.HasSuffix(n, intakeExt) {
			continue
		}
		if err := d.recoverSegment(n); err != nil {
			return fmt.Errorf("queue: recovering %s: %w", n, err)
		}
	}
	return nil
}

func (d *Dir) recoverSegment(name string) error {
	p := filepath.Join(d.path, name)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		return nil // a live process writes it
	}
	b, err := io.ReadAll(io.LimitReader(f, 1<<30))
	if err != nil {
		return err
	}
	msgs, err := parseSegment(b)
	if errors.Is(err, errCorrupt) {
		d.moveCorrupt("", name, err)
		return nil
	}
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if err := d.writeMsgFile(m.id, m.img); err != nil {
			return err
		}
	}
	if len(msgs) > 0 {
		if err := d.syncDir(); err != nil {
			return err
		}
		d.log.Info("queue: recovered messages from the intake log", "dir", d.path, "file", name, "messages", len(msgs))
		// One line each, so that a grep for a queue ID shows where the
		// message was between its "queued" and its delivery. A queue
		// command that recovers them (its log is its terminal) leaves a
		// note for the daemon's log instead.
		for _, m := range msgs {
			if d.opts.Events {
				d.log.Info("queue: recovered from the intake log", "queue_id", m.id)
			} else {
				_ = d.Note(m.id, "queue: recovered from the intake log", "by", "another process")
			}
		}
		// A daemon starting at the same moment may have read the
		// directory before these files were there.
		if err := d.touch(); err != nil {
			return err
		}
	}
	return os.Remove(p)
}

// writeMsgFile durably writes a .msg image under id, unless id is already
// there (written out before a crash that came ahead of the segment's
// removal). The caller fsyncs the directory.
func (d *Dir) writeMsgFile(id string, img []byte) error {
	if _, _, err := readTrailerRaw(bytes.NewReader(img), int64(len(img))); err != nil {
		return err
	}
	if _, err := os.Stat(d.msgPath(id)); err == nil {
		return nil
	}
	tmp := filepath.Join(d.path, id+tmpExt)
	err := d.createFile(tmp, func(w io.Writer) error {
		_, err := w.Write(img)
		return err
	})
	if err != nil {
		return err
	}
	err = renameNoReplace(tmp, d.msgPath(id))
	if errors.Is(err, syscall.EEXIST) {
		err = nil
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
