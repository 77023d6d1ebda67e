package msgauth

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/portcullis-mta/portcullis/sdk"
	sdkmime "github.com/portcullis-mta/portcullis/sdk/mime"
)

// referenceHeader is readOwnHeader written the obvious way, on lines of
// any length: readOwnHeader reads lines longer than its buffer in slices.
func referenceHeader(raw []byte) ownHeader {
	var h ownHeader
	keep := -1
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i+1], raw[i+1:]
		} else {
			raw = nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			if keep >= 0 {
				h.kept[keep].Value += string(line)
			}
			continue
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			break
		}
		h.fields++
		name, value, _ := strings.Cut(string(line), ":")
		name = strings.TrimSpace(name)
		h.dkim = h.dkim || strings.EqualFold(name, "DKIM-Signature")
		keep = -1
		if strings.EqualFold(name, "From") || strings.EqualFold(name, arField) {
			keep = len(h.kept)
			h.kept = append(h.kept, sdk.HeaderField{Name: name, Value: value})
		}
	}
	for i := range h.kept {
		h.kept[i].Value = sdkmime.HeaderUTF8(unfold(h.kept[i].Value))
	}
	return h
}

// FuzzOwnHeader: the stage's own reading of the header (From and
// Authentication-Results, read whole) agrees with the reference whatever
// the lines' lengths: pad bytes of 'x' are put in at a point, so that
// lines pass the reader's 64 KiB buffer. Its values are UTF-8.
func FuzzOwnHeader(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte, pad uint32, at uint16) {
		if n := int(pad % (160 << 10)); n > 0 {
			at := int(at) % (len(raw) + 1)
			raw = bytes.Join([][]byte{raw[:at], bytes.Repeat([]byte("x"), n), raw[at:]}, nil)
		}
		got, err := readOwnHeader(sdk.NewBytesMessage(nil, raw))
		if err != nil {
			t.Fatal(err)
		}
		want := referenceHeader(raw)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("readOwnHeader = %d fields, dkim %v, kept %.200q; want %d, %v, %.200q", got.fields, got.dkim, got.kept, want.fields, want.dkim, want.kept)
		}
		for _, f := range got.kept {
			if !utf8.ValidString(f.Value) {
				t.Fatalf("%s value %q: not UTF-8", f.Name, f.Value)
			}
		}
	})
}
