package smtpd

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode"

	"github.com/portcullis-mta/portcullis/core/pipeline"
	"github.com/portcullis-mta/portcullis/sdk"
)

// referenceCheck is the rule of RFC 5321 2.3.8 written the obvious way.
func referenceCheck(b []byte) bool {
	for i, c := range b {
		switch {
		case c == 0:
			return false
		case c == '\r' && (i+1 == len(b) || b[i+1] != '\n'):
			return false
		case c == '\n' && (i == 0 || b[i-1] != '\r'):
			return false
		}
	}
	return true
}

func TestLineChecker(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"clean", "a\r\nb\r\n", true},
		{"empty", "", true},
		{"bare LF", "a\nb\r\n", false},
		{"bare CR", "a\rb\r\n", false},
		{"CR at end", "a\r", false},
		{"NUL", "a\x00\r\n", false},
		{"CR CR LF", "a\r\r\n", false},
		{"LF first", "\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := checkLines([]byte(tt.in)) == nil; got != tt.ok {
				t.Fatalf("checkLines(%q) ok=%v, want %v", tt.in, got, tt.ok)
			}
		})
	}
}

// TestLineCheckerAcrossWrites: the body reaches the checker in reads of
// any size, so a CR may end one write and its line go on in the next.
// A CR whose next byte, in the next write, is not LF is bare ("a\r" then
// "b\r\n"): a next hop that ends lines at CR would see a line we did
// not, the smuggling 2.3.8 forbids. Every split of every case must agree
// with the reference.
func TestLineCheckerAcrossWrites(t *testing.T) {
	for _, in := range []string{"a\rb\r\n", "a\rb", "a\r\r\n", "a\r\nb\r\n", "\r\n.\r\n", "a\r\n\nb\r\n", "a\r\x00\n"} {
		for at := 0; at <= len(in); at++ {
			c := &lineChecker{w: io.Discard}
			_, err := c.Write([]byte(in[:at]))
			if err == nil {
				_, err = c.Write([]byte(in[at:]))
			}
			if err == nil {
				err = c.Close()
			}
			if ok := err == nil; ok != referenceCheck([]byte(in)) {
				t.Errorf("%q split at %d: checker ok=%v (%v), reference %v", in, at, ok, err, !ok)
			}
		}
	}
}

// FuzzLineChecker feeds the checker in two writes split anywhere and
// compares with the reference.
func FuzzLineChecker(f *testing.F) {
	for _, s := range []string{"a\r\nb\r\n", "x\n.\ny", "\r\n.\r", "\r\n\x00.\r\n", "\r", ""} {
		f.Add([]byte(s), uint8(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, cut uint8) {
		at := 0
		if len(data) > 0 {
			at = int(cut) % (len(data) + 1)
		}
		var out bytes.Buffer
		c := &lineChecker{w: &out}
		_, err := c.Write(data[:at])
		if err == nil {
			_, err = c.Write(data[at:])
		}
		if err == nil {
			err = c.Close()
		}
		if ok := err == nil; ok != referenceCheck(data) {
			t.Fatalf("%q split at %d: checker ok=%v, reference %v", data, at, ok, !ok)
		}
		if err == nil && !bytes.Equal(out.Bytes(), data) {
			t.Fatal("clean input changed in passing")
		}
		if err != nil && !errors.Is(err, errBareBytes) {
			t.Fatalf("unexpected error %v", err)
		}
	})
}

// FuzzRewriteHeader: whatever the client sent, the rewrite keeps the body
// and never lets a removed field through.
func FuzzRewriteHeader(f *testing.F) {
	f.Add([]byte("Subject: hi\r\nX-Remove-Me: 1\r\n folded\r\n\r\nbody\r\n"))
	f.Add([]byte("no header at all"))
	f.Add([]byte("\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dec := &pipeline.Decision{SubjectPrefix: "[S]", Headers: []sdk.HeaderEdit{{Op: sdk.HeaderRemove, Name: "X-Remove-Me"}}}
		var out bytes.Buffer
		if err := rewriteHeader(&out, bufio.NewReader(bytes.NewReader(data)), planHeader(dec)); err != nil {
			t.Fatal(err)
		}
		if i := bytes.Index(data, []byte("\r\n\r\n")); i >= 0 && !bytes.HasSuffix(out.Bytes(), data[i+4:]) {
			t.Fatalf("body changed: %q -> %q", data, out.Bytes())
		}
		hdr, _, _ := bytes.Cut(out.Bytes(), []byte("\r\n\r\n"))
		for _, line := range bytes.Split(hdr, []byte("\r\n")) {
			if bytes.HasPrefix(bytes.ToLower(line), []byte("x-remove-me:")) {
				t.Fatalf("removed field kept: %q", out.Bytes())
			}
		}
		_ = parseHeader(data)
	})
}

// FuzzDataEnd checks the vectorised end-of-data search against the state
// machine fed byte by byte, from any starting state.
func FuzzDataEnd(f *testing.F) {
	for _, s := range []string{"abc\r\n.\r\n", ".\r\n", "x\r\n..\r\n.\r", "\r\r\n.\r\nrest", "no end", ""} {
		f.Add([]byte(s), uint8(dsBeginLine))
		f.Add([]byte(s), uint8(dsData))
	}
	f.Fuzz(func(t *testing.T, data []byte, st uint8) {
		s0 := int(st) % dsEOF
		want, wantEnd := s0, -1
		for i, b := range data {
			if want = nextDataState(want, b); want == dsEOF {
				wantEnd = i + 1
				break
			}
		}
		got, end := scanDataEnd(s0, data)
		if got != want || end != wantEnd {
			t.Fatalf("%q from state %d: got state %d end %d, want %d %d", data, s0, got, end, want, wantEnd)
		}
	})
}

// fakeBody serves raw DATA bytes as the guard does: in chunks of the given
// sizes, ending exactly after the end-of-data line.
type fakeBody struct {
	raw   []byte
	sizes []byte
	state int
	done  bool
}

func (f *fakeBody) bodyDone() bool { return f.done }

func (f *fakeBody) readBody(p []byte) (int, error) {
	if f.done || len(f.raw) == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n := len(p)
	if len(f.sizes) > 0 {
		n = min(n, 1+int(f.sizes[0])%64)
		f.sizes = f.sizes[1:]
	}
	n = min(n, len(f.raw))
	var end int
	f.state, end = scanDataEnd(f.state, f.raw[:n])
	if end >= 0 {
		n, f.done = end, true
	}
	copy(p, f.raw[:n])
	f.raw = f.raw[n:]
	return n, nil
}

// referenceDecode is go-smtp's data reader (v0.25.1, data.go) applied to a
// whole stream: the decoded message and whether the end of data was found.
func referenceDecode(raw []byte) ([]byte, bool) {
	const (
		beginLine = iota
		dot
		dotCR
		cr
		data
	)
	var out []byte
	st := beginLine
	for _, c := range raw {
		switch st {
		case beginLine:
			if c == '.' {
				st = dot
				continue
			}
			if c == '\r' {
				st = cr
				break
			}
			st = data
		case dot:
			if c == '\r' {
				st = dotCR
				continue
			}
			st = data
		case dotCR:
			if c == '\n' {
				return out, true
			}
			st = data
		case cr:
			if c == '\n' {
				st = beginLine
				break
			}
			st = data
		case data:
			if c == '\r' {
				st = cr
			}
		}
		out = append(out, c)
	}
	return out, false
}

// FuzzBodyReader: for every DATA stream the raw checks let through, the
// fast body reader yields exactly what go-smtp's reader would, however the
// bytes are chunked and whatever size the caller reads with. (Unlike
// go-smtp's, it applies no line-length limit; lim is unused, kept so that
// the committed seed corpus still fits.)
func FuzzBodyReader(f *testing.F) {
	for _, s := range []string{"a\r\nb\r\n.\r\n", ".\r\n", "..x\r\n.y\r\n.\r\n", "x\r\n..\r\n.\r\nMAIL", "line\r\n.", ""} {
		f.Add([]byte(s), []byte{0, 1, 2, 63}, uint8(7), uint8(0))
		f.Add([]byte(s), []byte{5}, uint8(3), uint8(4))
	}
	f.Fuzz(func(t *testing.T, raw, sizes []byte, readSize, _ uint8) {
		want, found := referenceDecode(raw)
		if !found {
			return
		}
		_, end := scanDataEnd(dsBeginLine, raw)
		if checkLines(raw[:end]) != nil {
			return // refused with 550 5.6.0 before anything is stored
		}
		b := newBodyReader(&fakeBody{raw: raw, sizes: sizes})
		var got []byte
		buf := make([]byte, 1+int(readSize)%100)
		for {
			n, err := b.Read(buf)
			got = append(got, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%q: %v", raw, err)
			}
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%q chunked %v: got %q, go-smtp gives %q", raw, sizes, got, want)
		}
	})
}

// referencePathEnd is the reference for where a MAIL or RCPT argument's
// bracketed path ends ("FROM:<path> params"): the index of its '>', or -1
// when go-smtp refuses the path or it has no brackets. It reads the
// argument with goSMTPRest, go-smtp's own parser step by step, so that
// pathEnd is checked against the parser that decides what the address
// is, not against a second copy of itself.
func referencePathEnd(arg string) int {
	verb, _, _ := strings.Cut(arg, ":")
	cmd := "MAIL"
	if strings.EqualFold(verb, "TO") {
		cmd = "RCPT"
	}
	rest, ok := goSMTPRest(cmd, arg)
	if !ok {
		return -1
	}
	end := len(strings.TrimRightFunc(arg, unicode.IsSpace)) - len(rest) - 1
	if end < 0 || arg[end] != '>' {
		return -1 // a path without brackets: no '>' to find
	}
	return end
}

// FuzzRewriteParam: the guard's rewrites of a MAIL or RCPT argument
// (clampSize, utf8Orcpt) change only the parameter they are for, never
// the path however it is quoted, keep every other word as it was, and
// leave nothing to rewrite a second time.
func FuzzRewriteParam(f *testing.F) {
	f.Fuzz(func(t *testing.T, arg string) {
		for _, rw := range []struct {
			key string
			fn  func(string) (string, bool)
		}{{"SIZE=", clampSize}, {"ORCPT=", utf8Orcpt}} {
			out, ok := rw.fn(arg)
			if !ok {
				continue
			}
			verb, _, _ := strings.Cut(arg, ":")
			if v := strings.ToUpper(verb); v != "FROM" && v != "TO" {
				continue // go-smtp refuses it, rewritten or not
			}
			end := referencePathEnd(arg)
			if end < 0 {
				continue // go-smtp refuses the path, rewritten or not
			}
			if len(out) <= end || out[:end+1] != arg[:end+1] {
				t.Fatalf("%s rewrite of %q = %q: the path changed", rw.key, arg, out)
			}
			was, now := strings.Split(arg[end+1:], " "), strings.Split(out[end+1:], " ")
			if len(was) != len(now) {
				t.Fatalf("%s rewrite of %q = %q: words lost or added", rw.key, arg, out)
			}
			for i := range was {
				if was[i] != now[i] && !(len(was[i]) > len(rw.key) && strings.EqualFold(was[i][:len(rw.key)], rw.key)) {
					t.Fatalf("%s rewrite of %q = %q: word %q changed", rw.key, arg, out, was[i])
				}
			}
			if again, ok := rw.fn(out); ok {
				t.Fatalf("%s rewrite of %q = %q, and again %q", rw.key, arg, out, again)
			}
		}
	})
}
