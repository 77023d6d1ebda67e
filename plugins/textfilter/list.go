package textfilter

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/portcullis-mta/portcullis/sdk/mime"
)

// maxListBytes bounds a list file (10,000 patterns take about 300 KB).
const maxListBytes = 64 << 20

// pattern is one line of a list.
type pattern struct {
	list   string
	text   string // as written, for tags
	weight float64
	re     *regexp.Regexp // nil for a literal
}

// parseList reads the list format documented in the package comment.
func parseList(name string, r io.Reader, defWeight float64) ([]pattern, error) {
	raw, err := io.ReadAll(io.LimitReader(r, maxListBytes+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > maxListBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, maxListBytes)
	}
	if !utf8.Valid(raw) {
		// Lists exported from the old Windows server are often Shift_JIS.
		text, _ := mime.ToUTF8(raw, "")
		raw = []byte(text)
	}
	var out []pattern
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		p, ok, err := parseLine(sc.Text(), defWeight)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		if ok {
			p.list = name
			out = append(out, p)
		}
	}
	return out, sc.Err()
}

// parseLine parses one list line; ok is false for blanks and comments.
func parseLine(line string, defWeight float64) (p pattern, ok bool, err error) {
	line = strings.TrimSuffix(strings.TrimPrefix(line, "\ufeff"), "\r")
	if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
		return p, false, nil
	}
	p.weight = defWeight
	if i := strings.LastIndexByte(line, '\t'); i >= 0 {
		if w, perr := strconv.ParseFloat(strings.TrimSpace(line[i+1:]), 64); perr == nil {
			p.weight, line = w, line[:i]
		}
	}
	line = strings.TrimSpace(line)
	var expr string
	switch {
	case strings.HasPrefix(line, "re:"):
		expr = line[3:]
	case len(line) >= 2 && line[0] == '/' && strings.LastIndexByte(line, '/') > 0:
		end := strings.LastIndexByte(line, '/')
		if flags := line[end+1:]; strings.Trim(flags, "i") == "" {
			expr = line[1:end]
		}
	}
	p.text = line
	if expr == "" {
		if normalize(line) == "" {
			return p, false, nil
		}
		return p, true, nil
	}
	// Text is normalised before matching, so the expression goes through
	// NFKC too; folding it would turn \S into \s, so (?i) stands in for it.
	p.re, err = regexp.Compile("(?i)" + normRegexp(expr))
	if err != nil {
		return p, false, fmt.Errorf("bad regular expression %q: %w", expr, err)
	}
	return p, true, nil
}
