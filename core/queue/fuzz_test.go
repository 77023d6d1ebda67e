package queue

import (
	"bytes"
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
