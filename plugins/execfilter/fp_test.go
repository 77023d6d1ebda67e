package execfilter

import (
	"context"
	"math/rand/v2"
	"testing"
)

// TestNoFalsePositives: ordinary binary attachments (random bytes, image
// and document headers) are neither executables nor archives.
func TestNoFalsePositives(t *testing.T) {
	cfg, err := parseConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(9, 10))
	heads := [][]byte{{0xff, 0xd8, 0xff, 0xe0}, []byte("\x89PNG\r\n\x1a\n"), []byte("%PDF-1.7\n"), []byte("GIF89a"), nil, []byte("x\x9c"), []byte("BM")}
	for i := 0; i < 300; i++ {
		data := make([]byte, 200+r.IntN(5000))
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		h := heads[i%len(heads)]
		copy(data, h)
		in := newInspector(cfg)
		in.attachment(context.Background(), "file.jpg", "image/jpeg", data)
		if len(in.tags) > 0 && !(data[0] == 'M' && data[1] == 'Z') {
			t.Errorf("random file %d with head %q tagged %v", i, h, in.tags)
		}
	}
}

// TestNoNestedFalsePositives: entries of text and random bytes inside a ZIP
// are not taken for archives.
func TestNoNestedFalsePositives(t *testing.T) {
	cfg, _ := parseConfig(nil)
	r := rand.New(rand.NewPCG(13, 14))
	var files []zfile
	for i := 0; i < 200; i++ {
		data := make([]byte, 1+r.IntN(3000))
		for j := range data {
			if i%2 == 0 {
				data[j] = byte(r.Uint32())
			} else {
				data[j] = "abcdefghij klmnop\n"[r.IntN(18)]
			}
		}
		files = append(files, zfile{name: "f" + string(rune('a'+i%26)) + ".dat", data: data})
	}
	in := newInspector(cfg)
	in.attachment(context.Background(), "a.zip", "application/zip", makeZip(t, files...))
	for tag := range in.tags {
		if tag == TagNested || tag == TagCorrupt {
			t.Errorf("tagged %s", tag)
		}
	}
}
