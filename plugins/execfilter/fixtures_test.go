package execfilter

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
)

// Fixtures are built here, not committed: executables and bombs in a
// repository upset scanners on developers' machines.

func peBytes() []byte {
	b := make([]byte, 1024)
	copy(b, "MZ")
	binary.LittleEndian.PutUint32(b[0x3c:], 0x80)
	copy(b[0x80:], "PE\x00\x00")
	return b
}

func elfBytes() []byte   { return append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 100)...) }
func machoBytes() []byte { return append([]byte{0xcf, 0xfa, 0xed, 0xfe}, make([]byte, 100)...) }
func lnkBytes() []byte   { return append(append([]byte{}, lnkHeader...), make([]byte, 60)...) }

// oleBytes is an OLE compound file whose root storage has class id first
// byte c (0x84 MSI; 0x06 with 0x09 0x02 a Word document).
func oleBytes(clsid []byte) []byte {
	b := make([]byte, 2048)
	copy(b, oleMagic)
	binary.LittleEndian.PutUint16(b[0x1e:], 9) // 512-byte sectors
	binary.LittleEndian.PutUint32(b[0x30:], 0) // directory in sector 0
	copy(b[512+0x50:], clsid)
	return b
}

var (
	msiCLSID  = []byte{0x84, 0x10, 0x0c, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0x46}
	wordCLSID = []byte{0x06, 0x09, 0x02, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0x46}
)

type zfile struct {
	name      string
	data      []byte
	store     bool
	nonUTF8   bool
	encrypted bool
	sized     bool // sizes in the local header, no data descriptor (as Info-ZIP writes a file)
}

func makeZip(t testing.TB, files ...zfile) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		h := &zip.FileHeader{Name: f.name, Method: zip.Deflate, NonUTF8: f.nonUTF8}
		if f.store {
			h.Method = zip.Store
		}
		if f.encrypted {
			h.Flags |= 0x1
			h.Method = zip.Store
			h.CRC32 = crc32.ChecksumIEEE(f.data)
			h.CompressedSize64, h.UncompressedSize64 = uint64(len(f.data)), uint64(len(f.data))
			w, err := zw.CreateRaw(h)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(f.data) // stands in for ciphertext
			continue
		}
		if f.sized {
			raw := f.data
			if !f.store {
				raw = deflate(f.data)
			}
			h.CRC32 = crc32.ChecksumIEEE(f.data)
			h.CompressedSize64, h.UncompressedSize64 = uint64(len(raw)), uint64(len(f.data))
			w, err := zw.CreateRaw(h)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(raw)
			continue
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(f.data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func deflate(data []byte) []byte {
	var b bytes.Buffer
	fw, _ := flate.NewWriter(&b, flate.DefaultCompression)
	fw.Write(data)
	fw.Close()
	return b.Bytes()
}

// zeroDeflate is a raw DEFLATE stream of n zero bytes (n a multiple of
// 1 MiB), made by repeating one flushed block: building a bomb costs
// memcpy, not compression time.
func zeroDeflate(n int64) []byte {
	var blk bytes.Buffer
	fw, _ := flate.NewWriter(&blk, flate.BestCompression)
	fw.Write(make([]byte, 1<<20))
	fw.Flush()
	out := bytes.Repeat(blk.Bytes(), int(n>>20))
	return append(out, 0x03, 0x00) // final empty fixed-Huffman block
}

func zeroCRC(n int64) uint32 {
	crc, zero := uint32(0), make([]byte, 1<<20)
	for i := int64(0); i < n>>20; i++ {
		crc = crc32.Update(crc, crc32.IEEETable, zero)
	}
	return crc
}

// bombZip is the bottom layer of 42.zip: entries of size zeros each.
func bombZip(t testing.TB, entries int, size int64) []byte {
	t.Helper()
	raw, crc := zeroDeflate(size), zeroCRC(size)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := 0; i < entries; i++ {
		w, err := zw.CreateRaw(&zip.FileHeader{Name: fmt.Sprintf("%d.dll", i), Method: zip.Deflate,
			CRC32: crc, CompressedSize64: uint64(len(raw)), UncompressedSize64: uint64(size)})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(raw)
	}
	zw.Close()
	return buf.Bytes()
}

// overlapZip has one local file and n central-directory records that all
// point at it: each "file" inflates the same kernel.
func overlapZip(t testing.TB, n int, size int64) []byte {
	t.Helper()
	one := bombZip(t, 1, size)
	eocd := bytes.LastIndex(one, []byte("PK\x05\x06"))
	cdSize := binary.LittleEndian.Uint32(one[eocd+12:])
	cdOff := binary.LittleEndian.Uint32(one[eocd+16:])
	rec := one[cdOff : cdOff+cdSize]
	out := append([]byte{}, one[:cdOff]...)
	for i := 0; i < n; i++ {
		out = append(out, rec...)
	}
	end := append([]byte{}, one[eocd:eocd+22]...)
	binary.LittleEndian.PutUint16(end[8:], uint16(n))
	binary.LittleEndian.PutUint16(end[10:], uint16(n))
	binary.LittleEndian.PutUint32(end[12:], cdSize*uint32(n))
	return append(out, end...)
}

func tarGz(t testing.TB, name string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	gw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gw)
	tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg})
	tw.Write(data)
	tw.Close()
	gw.Close()
	return buf.Bytes()
}

func gz(data []byte) []byte {
	var buf bytes.Buffer
	gw := gzip.NewWriter(&buf)
	gw.Write(data)
	gw.Close()
	return buf.Bytes()
}

type attach struct {
	name, ctype string
	data        []byte
}

// mimeMessage builds a multipart message with base64 attachments.
func mimeMessage(parts ...attach) *sdk.Message {
	var b strings.Builder
	b.WriteString("From: a@example.test\r\nSubject: files\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n")
	b.WriteString("--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nsee attached\r\n")
	for _, p := range parts {
		fmt.Fprintf(&b, "--B\r\nContent-Type: %s\r\nContent-Disposition: attachment; filename=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n\r\n", p.ctype, p.name)
		enc := base64.StdEncoding.EncodeToString(p.data)
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\r\n")
	}
	b.WriteString("--B--\r\n")
	return sdk.NewBytesMessage([]sdk.HeaderField{{Name: "Subject", Value: "files"}}, []byte(b.String()))
}

// message100KB is about 100 KB: a text body and a ZIP of a PDF-like file
// and a text file.
func message100KB(t testing.TB) *sdk.Message {
	body := strings.Repeat("Please find the quarterly report attached. 四半期報告書を添付します。\n", 400)
	r := make([]byte, 40<<10)
	for i := range r {
		r[i] = byte(i * 7919 >> 3)
	}
	z := makeZip(t, zfile{name: "report.pdf", data: append([]byte("%PDF-1.7\n"), r...)}, zfile{name: "notes.txt", data: []byte(body)})
	m := mimeMessage(attach{"report.zip", "application/zip", z})
	raw := strings.Replace(string(m.Bytes()), "see attached", body, 1)
	return sdk.NewBytesMessage(m.Header, []byte(raw))
}
