package smtpc

import (
	"bufio"
	"bytes"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
)

// foldRef is FoldLines done the obvious way, byte by byte.
func foldRef(in []byte) []byte {
	var out []byte
	col := 0
	for _, b := range in {
		if b == '\r' || b == '\n' {
			col = 0
		} else {
			if col == MaxLine {
				out = append(out, "\r\n "...)
				col = 1
			}
			col++
		}
		out = append(out, b)
	}
	return out
}

func TestFoldLines(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	inputs := []string{
		"",
		"short\r\nlines\r\n",
		strings.Repeat("a", MaxLine) + "\r\n" + strings.Repeat("b", MaxLine) + "\n",
		strings.Repeat("a", MaxLine+1) + "\r\n",
		strings.Repeat("a", MaxLine) + "\r" + strings.Repeat("b", MaxLine+2),
		"Subject: " + strings.Repeat("x", 1500) + "\r\n\r\n" + strings.Repeat("0123456789", 2000) + "\r\nend\r\n",
	}
	for range 50 {
		var b strings.Builder
		for range rng.IntN(20) {
			b.WriteString(strings.Repeat("z", rng.IntN(3000)))
			b.WriteString([]string{"\r\n", "\n", "\r", ""}[rng.IntN(4)])
		}
		inputs = append(inputs, b.String())
	}
	for i, in := range inputs {
		want := foldRef([]byte(in))
		for name, r := range map[string]io.Reader{
			"whole":   strings.NewReader(in),
			"onebyte": iotest.OneByteReader(strings.NewReader(in)),
			"half":    iotest.HalfReader(strings.NewReader(in)),
		} {
			got, err := io.ReadAll(FoldLines(r))
			if err != nil {
				t.Fatalf("%d %s: %v", i, name, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%d %s: folded differently from the reference (%d vs %d bytes)", i, name, len(got), len(want))
			}
		}
		// Small reads of the folded stream too (the fold split).
		got, err := io.ReadAll(iotest.OneByteReader(FoldLines(strings.NewReader(in))))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%d: one-byte reads of the result differ: %v", i, err)
		}
		if un := strings.ReplaceAll(string(want), "\r\n ", ""); strings.Count(in, "\r\n ") == 0 && un != in {
			t.Fatalf("%d: removing the folds does not give the input back", i)
		}
		sc := bufio.NewScanner(bytes.NewReader(want))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			for _, l := range strings.Split(sc.Text(), "\r") {
				if len(l) > MaxLine {
					t.Fatalf("%d: a line of %d octets", i, len(l))
				}
			}
		}
	}
}

// Nothing to fold: the reader's bytes are handed on without a copy.
func TestFoldLinesNoCopy(t *testing.T) {
	in := "From: a@b.test\r\n\r\n" + strings.Repeat("line\r\n", 1000)
	f := FoldLines(strings.NewReader(in))
	p := make([]byte, 64<<10)
	n, _ := f.Read(p)
	if string(p[:n]) != in {
		t.Fatal("short message not read whole")
	}
	if allocs := testing.AllocsPerRun(100, func() {
		f := FoldLines(strings.NewReader(in)).(*foldSeeker)
		f.Read(p)
	}); allocs > 3 {
		t.Errorf("%v allocations per short message", allocs)
	}
}

// A seekable reader stays seekable, and a rewind starts over.
func TestFoldLinesSeek(t *testing.T) {
	in := strings.Repeat("y", 2500) + "\r\n"
	f := FoldLines(strings.NewReader(in))
	s, ok := f.(io.Seeker)
	if !ok {
		t.Fatal("not a Seeker over a strings.Reader")
	}
	start, _ := s.Seek(0, io.SeekCurrent)
	first, _ := io.ReadAll(f)
	if _, err := s.Seek(start, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	again, _ := io.ReadAll(f)
	if !bytes.Equal(first, again) || !bytes.Equal(first, foldRef([]byte(in))) {
		t.Fatal("the rewound read differs")
	}
	if _, ok := FoldLines(iotest.OneByteReader(strings.NewReader(in))).(io.Seeker); ok {
		t.Error("a Seeker over a reader that cannot seek")
	}
}

func BenchmarkFoldLinesShort(b *testing.B) {
	in := []byte("From: a@b.test\r\n\r\n" + strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n", 1000))
	b.SetBytes(int64(len(in)))
	p := make([]byte, 32<<10)
	for b.Loop() {
		f := FoldLines(bytes.NewReader(in))
		for {
			if _, err := f.Read(p); err != nil {
				break
			}
		}
	}
}
