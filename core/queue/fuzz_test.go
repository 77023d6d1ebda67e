package queue

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
	"testing"
)

// FuzzReadTrailer feeds arbitrary file contents to the parser that decides,
// at recovery, whether a spool file is a whole message. It must never
// panic or allocate beyond the file, and what it accepts must read back
// exactly as many bytes as it claims.
func FuzzReadTrailer(f *testing.F) {
	var good bytes.Buffer
	good.WriteString("Subject: x\r\n\r\nbody\r\n")
	appendTrailer(&good, int64(good.Len()), []byte("Received: by mx\r\n"), testEnv("a@x.test"))
	f.Add(good.Bytes())
	f.Add(good.Bytes()[:good.Len()-1])
	f.Add(good.Bytes()[1:])
	f.Add([]byte(trailerMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		size := int64(len(data))
		l, env, err := readTrailer(bytes.NewReader(data), size)
		if err != nil {
			return
		}
		if env == nil || l.bodyLen < 0 || l.prependLen < 0 || l.size() > size-trailerLen {
			t.Fatalf("accepted an impossible layout %+v for %d bytes", l, size)
		}
		n, err := io.Copy(io.Discard, l.reader(bytes.NewReader(data)))
		if err != nil || n != l.size() {
			t.Fatalf("reader gave %d bytes (%v), layout says %d", n, err, l.size())
		}
	})
}

// segmentImage builds a segment as the intake log writes it: a header of
// generation gen, then the given message and done records.
func segmentImage(gen uint64, recs ...[]byte) []byte {
	seg := &segment{gen: gen}
	var h [segHeaderLen]byte
	copy(h[:8], segMagic)
	binary.BigEndian.PutUint64(h[8:], gen)
	binary.BigEndian.PutUint32(h[16:], crc32.Checksum(h[:16], castagnoli))
	out := h[:]
	for _, r := range recs {
		binary.BigEndian.PutUint64(r[8:], seg.gen)
		binary.BigEndian.PutUint32(r[24:], crc32.Checksum(r[:24], castagnoli))
		out = append(out, r...)
	}
	return out
}

func doneRecord(id string) []byte {
	rec := make([]byte, recHeaderLen+IDLen)
	copy(rec[recHeaderLen:], id)
	fillRecHeader(rec, recDone, rec[recHeaderLen:])
	return rec
}

// FuzzParseSegment feeds arbitrary bytes to the intake log's recovery
// parser: it must never panic, and every message it returns must be a
// whole .msg image that recovery can write out.
func FuzzParseSegment(f *testing.F) {
	const a, b = "DN5UHO9K979HE8BV", "DN5UHO9ONO15MDDB"
	ra, _ := buildMsgRecord(nil, a, []byte("Subject: a\r\n\r\na\r\n"), []byte("Received: x\r\n"), testEnv("a@x.test"))
	rb, _ := buildMsgRecord(nil, b, []byte("Subject: b\r\n\r\nb\r\n"), nil, testEnv("b@x.test"))
	good := segmentImage(7, ra, rb, doneRecord(a))
	f.Add(good)
	f.Add(good[:len(good)-5])
	f.Add(segmentImage(8, rb))
	f.Add(make([]byte, segHeaderLen+10))
	f.Add([]byte(segMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs, err := parseSegment(data)
		if err != nil {
			return
		}
		for _, m := range msgs {
			if !ValidID(m.id) {
				t.Fatalf("returned invalid ID %q", m.id)
			}
			// An image may still fail its trailer check (recovery then
			// refuses it); it must never claim more than it holds.
			if l, _, err := readTrailerRaw(bytes.NewReader(m.img), int64(len(m.img))); err == nil && l.size() > int64(len(m.img)) {
				t.Fatalf("layout %+v larger than image of %d", l, len(m.img))
			}
		}
	})
}

func TestParseSegmentSeeds(t *testing.T) {
	const a, b = "DN5UHO9K979HE8BV", "DN5UHO9ONO15MDDB"
	ra, _ := buildMsgRecord(nil, a, []byte("A"), nil, testEnv("a@x.test"))
	rb, _ := buildMsgRecord(nil, b, []byte("B"), nil, testEnv("b@x.test"))
	msgs, err := parseSegment(segmentImage(7, ra, rb, doneRecord(a)))
	if err != nil || len(msgs) != 1 || msgs[0].id != b {
		t.Fatalf("got %v %v, want only %s", msgs, err, b)
	}
	// A record of another generation ends the segment.
	stale := segmentImage(7, ra)
	stale = append(stale, segmentImage(6, rb)[segHeaderLen:]...)
	if msgs, err := parseSegment(stale); err != nil || len(msgs) != 1 || msgs[0].id != a {
		t.Fatalf("stale generation: %v %v", msgs, err)
	}
}
