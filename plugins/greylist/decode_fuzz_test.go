package greylist

import (
	"bytes"
	"testing"
	"time"
)

// FuzzDecode: a stored value is bytes from the network when the store is a
// shared Redis (another gateway, another version, or anyone with access
// wrote it). decode must refuse what is not a record without panicking, and
// a record it accepts must encode back to the same bytes.
func FuzzDecode(f *testing.F) {
	base := time.Unix(1_800_000_000, 0)
	f.Add(encode(Record{First: base}, base.Add(time.Hour)))
	f.Add(encode(Record{First: base, Passed: base.Add(time.Minute), Count: 7}, base.Add(35*24*time.Hour)))
	f.Add([]byte{})
	f.Add([]byte("not a greylist record at all!!!!"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, exp, err := decode(b)
		if err != nil {
			if len(b) == recordLen {
				t.Fatalf("refused a %d-byte value: %v", recordLen, err)
			}
			return
		}
		if again := encode(r, exp); !bytes.Equal(again, b) {
			t.Fatalf("decode(%x) = %+v %v, encodes as %x", b, r, exp, again)
		}
	})
}
