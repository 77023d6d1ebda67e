package queue

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"time"
)

// File names inside a queue directory.
const (
	msgExt     = ".msg"     // committed message: bytes, prepend, envelope, trailer
	envExt     = ".env"     // newer envelope state written by Update/Flush
	tmpExt     = ".tmp"     // drafts and envelope updates not yet renamed into place
	relExt     = ".rel"     // a released message staged in the destination (release.go)
	movedExt   = ".moved"   // in the source: the release of this message is decided (release.go)
	lockName   = ".lock"    // shared flock while a Dir is open, exclusive during recovery
	ctlName    = ".changed" // holds a token rewritten by Delete, Flush and Move
	corruptDir = "corrupt"
)

// The trailer closes every .msg file; it is written last, so a file whose
// trailer is whole and consistent with the file size was written whole.
const (
	trailerMagic = "PCQMSG01"
	trailerLen   = 32 // magic, body length, prepend length, envelope length, envelope CRC-32C
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errCorrupt = errors.New("queue: corrupt message file")

// layout is where the parts of a committed message lie in its file.
type layout struct {
	bodyLen, prependLen int64
}

// size is the message as delivered: prepend then body.
func (l layout) size() int64 { return l.bodyLen + l.prependLen }

// open returns a reader of prepend then body.
func (l layout) reader(f io.ReaderAt) io.Reader {
	return io.MultiReader(
		io.NewSectionReader(f, l.bodyLen, l.prependLen),
		io.NewSectionReader(f, 0, l.bodyLen))
}

// appendTrailer appends prepend, env and the trailer to a draft file whose
// first bodyLen bytes hold the message.
func appendTrailer(w io.Writer, bodyLen int64, prepend []byte, env *Envelope) error {
	js, err := marshalEnv(env)
	if err != nil {
		return err
	}
	buf := make([]byte, 0, len(prepend)+len(js)+trailerLen)
	buf = append(append(buf, prepend...), js...)
	_, err = w.Write(appendTrailerBytes(buf, bodyLen, int64(len(prepend)), js))
	return err
}

func marshalEnv(env *Envelope) ([]byte, error) { return json.Marshal(env) }

// appendTrailerBytes appends the trailer of a message with these lengths
// and envelope JSON to b.
func appendTrailerBytes(b []byte, bodyLen, prependLen int64, js []byte) []byte {
	var t [trailerLen]byte
	copy(t[:8], trailerMagic)
	binary.BigEndian.PutUint64(t[8:], uint64(bodyLen))
	binary.BigEndian.PutUint64(t[16:], uint64(prependLen))
	binary.BigEndian.PutUint32(t[24:], uint32(len(js)))
	binary.BigEndian.PutUint32(t[28:], crc32.Checksum(js, castagnoli))
	return append(b, t[:]...)
}

// readTrailer checks the trailer of a .msg file of the given size and
// returns the layout and the envelope stored at commit.
func readTrailer(f io.ReaderAt, size int64) (layout, *Envelope, error) {
	l, js, err := readTrailerRaw(f, size)
	if err != nil {
		return layout{}, nil, err
	}
	env := new(Envelope)
	if err := json.Unmarshal(js, env); err != nil {
		return layout{}, nil, fmt.Errorf("%w: envelope: %v", errCorrupt, err)
	}
	return l, env, nil
}

// readTrailerRaw checks the trailer and returns the layout and the
// envelope's JSON, its checksum verified.
func readTrailerRaw(f io.ReaderAt, size int64) (layout, []byte, error) {
	if size < trailerLen {
		return layout{}, nil, fmt.Errorf("%w: %d bytes is shorter than a trailer", errCorrupt, size)
	}
	var t [trailerLen]byte
	if _, err := f.ReadAt(t[:], size-trailerLen); err != nil {
		return layout{}, nil, err
	}
	if string(t[:8]) != trailerMagic {
		return layout{}, nil, fmt.Errorf("%w: no trailer", errCorrupt)
	}
	l := layout{int64(binary.BigEndian.Uint64(t[8:])), int64(binary.BigEndian.Uint64(t[16:]))}
	envLen := int64(binary.BigEndian.Uint32(t[24:]))
	// Each length is checked against the size on its own first, so that no
	// sum of hostile values can wrap around.
	if l.bodyLen < 0 || l.prependLen < 0 || l.bodyLen > size || l.prependLen > size ||
		l.bodyLen+l.prependLen+envLen+trailerLen != size {
		return layout{}, nil, fmt.Errorf("%w: lengths do not add up to the file size", errCorrupt)
	}
	js := make([]byte, envLen)
	if _, err := f.ReadAt(js, l.size()); err != nil {
		return layout{}, nil, err
	}
	if crc32.Checksum(js, castagnoli) != binary.BigEndian.Uint32(t[28:]) {
		return layout{}, nil, fmt.Errorf("%w: envelope checksum mismatch", errCorrupt)
	}
	return l, js, nil
}

// schedule is the part of an envelope the index needs; decoding only it
// makes rebuilding the index of a large queue cheaper.
type schedule struct {
	ID          string    `json:"id"`
	NextAttempt time.Time `json:"next_attempt"`
}

// dueOf reads id's due time for the index. hasEnv says whether the
// directory listing showed a side file, which saves a failing open per
// message when it did not (a side file made since is caught by Lease,
// which always reads the disk).
func dueOf(dir, id string, hasEnv bool) (time.Time, error) {
	f, err := os.Open(filepath.Join(dir, id+msgExt))
	if errors.Is(err, os.ErrNotExist) {
		return time.Time{}, ErrNotFound
	}
	if err != nil {
		return time.Time{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return time.Time{}, err
	}
	_, js, err := readTrailerRaw(f, st.Size())
	if err != nil {
		return time.Time{}, err
	}
	if hasEnv {
		b, err := os.ReadFile(filepath.Join(dir, id+envExt))
		if err == nil {
			js = b
		} else if !errors.Is(err, os.ErrNotExist) {
			return time.Time{}, err
		}
	}
	var sc schedule
	if err := json.Unmarshal(js, &sc); err != nil {
		return time.Time{}, fmt.Errorf("%w: envelope: %v", errCorrupt, err)
	}
	if sc.ID != id {
		return time.Time{}, fmt.Errorf("%w: envelope names %q", errCorrupt, sc.ID)
	}
	return sc.NextAttempt, nil
}

// readEnvFile reads an .env side file; (nil, nil) when there is none.
func readEnvFile(path string) (*Envelope, error) {
	js, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	env := new(Envelope)
	if err := json.Unmarshal(bytes.TrimSpace(js), env); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errCorrupt, path, err)
	}
	return env, nil
}

// loadMeta reads what is known of the message in f: its layout and its
// current envelope (the .env side file if there is one, else the one
// stored at commit).
func loadMeta(f *os.File, envPath, id string) (layout, *Envelope, error) {
	st, err := f.Stat()
	if err != nil {
		return layout{}, nil, err
	}
	l, env, err := readTrailer(f, st.Size())
	if err != nil {
		return layout{}, nil, err
	}
	newer, err := readEnvFile(envPath)
	if err != nil {
		return layout{}, nil, err
	}
	if newer != nil {
		env = newer
	}
	if env.ID != id {
		return layout{}, nil, fmt.Errorf("%w: envelope names %q", errCorrupt, env.ID)
	}
	return l, env, nil
}
