package smtpc

import (
	"bufio"
	"bytes"
	"io"
	"net/textproto"
	"strings"
	"testing"
)

func dataEncode(t testing.TB, in string, chunk int) string {
	var b bytes.Buffer
	bw := bufio.NewWriter(&b)
	d := newDataWriter(bw)
	for i := 0; i < len(in); i += chunk {
		d.Write([]byte(in[i:min(i+chunk, len(in))]))
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestDataWriter(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"clean", "a\r\nb\r\n", "a\r\nb\r\n.\r\n"},
		{"no final line end", "a\r\nb", "a\r\nb\r\n.\r\n"},
		{"empty", "", ".\r\n"},
		{"bare LF", "a\nb", "a\r\nb\r\n.\r\n"},
		{"bare CR", "a\rb", "a\r\nb\r\n.\r\n"},
		{"trailing CR", "a\r", "a\r\n.\r\n"},
		{"CR CR LF", "a\r\r\n", "a\r\n\r\n.\r\n"},
		{"LF CR", "\n\r", "\r\n\r\n.\r\n"},
		{"dots", ".a\r\n..b\r\nc.\r\n.", "..a\r\n...b\r\nc.\r\n..\r\n.\r\n"},
		{"dot after bare CR", "x\r.y", "x\r\n..y\r\n.\r\n"},
		{"dot after bare LF", "x\n.y", "x\r\n..y\r\n.\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, chunk := range []int{len(tt.in) + 1, 1, 2} {
				if got := dataEncode(t, tt.in, chunk); got != tt.want {
					t.Errorf("chunk %d: got %q, want %q", chunk, got, tt.want)
				}
			}
		})
	}
}

// FuzzDataWriter: the DATA encoding of any bytes has no bare CR or LF, ends
// in CRLF.CRLF, and decodes (textproto's DotReader) to the input with its
// line ends made CRLF.
func FuzzDataWriter(f *testing.F) {
	for _, s := range []string{"a\r\nb", "\r", "\n", ".\r\n.", "x\ry\nz", "..\n.\r."} {
		f.Add([]byte(s), 3)
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk int) {
		if chunk <= 0 {
			chunk = 1
		}
		out := dataEncode(t, string(data), chunk)
		for i := 0; i < len(out); i++ {
			if out[i] == '\r' && (i+1 >= len(out) || out[i+1] != '\n') {
				t.Fatalf("bare CR at %d in %q", i, out)
			}
			if out[i] == '\n' && (i == 0 || out[i-1] != '\r') {
				t.Fatalf("bare LF at %d in %q", i, out)
			}
		}
		if !strings.HasSuffix(out, "\r\n.\r\n") && out != ".\r\n" {
			t.Fatalf("no terminator: %q", out)
		}
		dec, err := io.ReadAll(textproto.NewReader(bufio.NewReader(strings.NewReader(out))).DotReader())
		if err != nil {
			t.Fatal(err)
		}
		// DotReader gives LF line ends: compare with the input so normalised.
		norm := strings.ReplaceAll(strings.ReplaceAll(string(data), "\r\n", "\n"), "\r", "\n")
		if norm != "" && !strings.HasSuffix(norm, "\n") {
			norm += "\n"
		}
		if string(dec) != norm {
			t.Fatalf("round trip: %q -> %q -> %q, want %q", data, out, dec, norm)
		}
	})
}

var benchData = strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n", 1000) + ".dot\r\n"

// BenchmarkDataWriter against BenchmarkDataWriterBaseline (what it
// replaced: crlfWriter into textproto's DotWriter), same data, same run.
func BenchmarkDataWriter(b *testing.B) {
	bw := bufio.NewWriter(io.Discard)
	b.SetBytes(int64(len(benchData)))
	for b.Loop() {
		d := newDataWriter(bw)
		io.Copy(d, strings.NewReader(benchData))
		d.Close()
	}
}

func BenchmarkDataWriterBaseline(b *testing.B) {
	bw := bufio.NewWriter(io.Discard)
	b.SetBytes(int64(len(benchData)))
	for b.Loop() {
		dw := textproto.NewWriter(bw).DotWriter()
		nw := &crlfWriter{w: dw}
		io.Copy(nw, strings.NewReader(benchData))
		nw.Close()
		dw.Close()
	}
}

// crlfWriter is what dataWriter replaced (in front of textproto's
// DotWriter), kept as the benchmark baseline.
type crlfWriter struct {
	w      io.Writer
	cr     bool // the last byte written was a CR not yet known to be bare
	buf    []byte
	failed error
}

func (c *crlfWriter) Write(p []byte) (int, error) {
	if c.failed != nil {
		return 0, c.failed
	}
	out := c.buf[:0]
	for _, b := range p {
		if c.cr {
			c.cr = false
			out = append(out, '\r', '\n')
			if b == '\n' {
				continue
			}
		}
		switch b {
		case '\r':
			c.cr = true
		case '\n':
			out = append(out, '\r', '\n')
		default:
			out = append(out, b)
		}
	}
	c.buf = out
	if _, err := c.w.Write(out); err != nil {
		c.failed = err
		return 0, err
	}
	return len(p), nil
}

// Close ends a trailing bare CR. It does not close the underlying writer.
func (c *crlfWriter) Close() error {
	if c.cr {
		c.cr = false
		_, err := c.w.Write([]byte("\r\n"))
		return err
	}
	return nil
}
