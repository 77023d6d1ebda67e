package execfilter

import (
	"encoding/binary"
	"hash/crc32"
	"runtime"
	"slices"
	"testing"
)

// RAR archives are built here byte by byte (RAR 5.0 archive format, as
// rarlab.com documents it): there is no RAR writer to build them with.

// vint5 is a RAR5 variable-length integer: seven bits a byte, low first.
func vint5(v uint64) []byte {
	var b []byte
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// block5 is a RAR5 header block: CRC32, size, then the fields (type
// first), and the data area after it.
func block5(fields []byte, data []byte) []byte {
	h := slices.Concat(vint5(uint64(len(fields))), fields)
	return slices.Concat(binary.LittleEndian.AppendUint32(nil, crc32.ChecksumIEEE(h)), h, data)
}

type file5 struct {
	name     string
	data     []byte
	unpacked uint64 // declared unpacked size
	comp     uint64 // compression information: 0 stores
}

// makeRar5 is a RAR5 archive of files; stored ones carry their CRC.
func makeRar5(files ...file5) []byte {
	out := []byte("Rar!\x1a\x07\x01\x00")
	out = append(out, block5(slices.Concat(vint5(1), vint5(0), vint5(0)), nil)...) // main header
	for _, f := range files {
		fields := slices.Concat(vint5(2), vint5(0x02), vint5(uint64(len(f.data))), // file, data area
			vint5(0x04), vint5(f.unpacked), vint5(0x20), // CRC present, size, attributes
			binary.LittleEndian.AppendUint32(nil, crc32.ChecksumIEEE(f.data)),
			vint5(f.comp), vint5(0), vint5(uint64(len(f.name))), []byte(f.name))
		out = append(out, block5(fields, f.data)...)
	}
	return append(out, block5(slices.Concat(vint5(5), vint5(0), vint5(0)), nil)...) // end of archive
}

// TestRarHostileHeaders: a RAR whose file header declares a 4 GiB window
// is archive.limit before rardecode allocates it (it did, for a 300-byte
// archive); RARs, also compressed whole, are still walked.
func TestRarHostileHeaders(t *testing.T) {
	exe := file5{"a.exe", peBytes()[:256], 256, 0}
	window := file5{"a.exe", peBytes()[:256], 4 << 30, 0x80 | 15<<10} // method 1, 128 KiB << 15
	// The header's size field may take three bytes: 2 MiB at most.
	cut := append(makeRar5()[:8], block5(vint5(1<<40), nil)...)
	tests := []struct {
		name  string
		data  []byte
		tags  []string
		limit string
	}{
		{"stored", makeRar5(exe), []string{TagInArchive}, ""},
		{"compressed whole", gz(makeRar5(exe)), []string{TagInArchive}, ""},
		{"4 GiB window", makeRar5(window, file5{"b.txt", []byte("hi"), 2, 0}), []string{TagLimit}, "dictionary"},
		{"4 GiB window compressed whole", gz(makeRar5(window)), []string{TagLimit}, "dictionary"},
		{"2^40 header size", cut, []string{TagCorrupt}, ""},
	}
	st := newStage(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			res := run(t, st, mimeMessage(attach{"a.rar", "application/vnd.rar", tc.data}))
			runtime.ReadMemStats(&after)
			if !slices.Equal(res.Tags, tc.tags) || res.Attrs["limit"] != tc.limit {
				t.Errorf("tags %q limit %q, want %q %q", res.Tags, res.Attrs["limit"], tc.tags, tc.limit)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 256<<20 {
				t.Errorf("allocated %d MiB", n>>20)
			}
		})
	}
}
