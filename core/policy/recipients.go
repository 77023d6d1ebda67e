package policy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/portcullis-mta/portcullis/core/watchfile"
)

// recipients is the relay.recipients file: valid addresses in relay.domains.
type recipients struct {
	file *watchfile.File[recipientSet]
}

// recipientSet is one loaded version of the file.
type recipientSet struct {
	addrs   map[string]bool // "local@domain", lower-cased
	domains map[string]bool // from "@domain" lines
}

func loadRecipients(path string, logger *slog.Logger) (*recipients, error) {
	f, err := watchfile.Load(path, "recipients file", readRecipients,
		func(s *recipientSet) []any { return []any{"addresses", len(s.addrs), "domains", len(s.domains)} })
	if err != nil {
		return nil, err
	}
	f.SetLogger(logger)
	return &recipients{file: f}, nil
}

// readRecipients parses the file: one address a line, "@domain" for a
// whole domain, case-insensitive. '#' starts a comment at the beginning of
// a line or after white space; elsewhere it is part of the address (it is
// atext, RFC 5322 3.2.3: "team#1@example.test"). A UTF-8 byte order mark,
// as some editors write, is skipped.
func readRecipients(path string) (*recipientSet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	set := &recipientSet{addrs: map[string]bool{}, domains: map[string]bool{}}
	sc := bufio.NewScanner(bytes.NewReader(bytes.TrimPrefix(data, []byte("\ufeff"))))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var bad []error // every bad line, each "file:line:1: message"
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(stripComment(sc.Text()))
		if line == "" {
			continue
		}
		if d, ok := strings.CutPrefix(line, "@"); ok {
			dom, err := parseDomain(d)
			if err != nil {
				bad = append(bad, fmt.Errorf("%s:%d:1: %v", path, n, err))
				continue
			}
			set.domains[dom] = true
			continue
		}
		a, err := ParsePath(UnquoteLocal(line))
		if err != nil || a.IsNull() {
			bad = append(bad, fmt.Errorf("%s:%d:1: invalid address %q", path, n, line))
			continue
		}
		set.addrs[key(a)] = true
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(bad) > 0 {
		return nil, errors.Join(bad...)
	}
	return set, nil
}

// UnquoteLocal turns a quoted local part, as an admin writes it in the
// recipients file or on scan's command line ("a b"@example.test,
// "c.d"@example.test), into the form go-smtp hands a MAIL or RCPT over (a
// b@example.test, c.d@example.test), which is what lookups and rules
// compare with. Anything else is returned as it is.
func UnquoteLocal(addr string) string {
	if !strings.HasPrefix(addr, `"`) {
		return addr
	}
	var b strings.Builder
	for i := 1; i < len(addr); i++ {
		switch c := addr[i]; c {
		case '\\':
			if i+1 == len(addr) {
				return addr
			}
			i++
			b.WriteByte(addr[i])
		case '"':
			if !strings.HasPrefix(addr[i+1:], "@") {
				return addr
			}
			return b.String() + addr[i+1:]
		default:
			b.WriteByte(c)
		}
	}
	return addr
}

func key(a Address) string { return strings.ToLower(a.Local) + "@" + a.Domain }

// Has reports whether a is listed, reloading the file first if it changed.
func (r *recipients) Has(a Address) bool {
	set := r.file.Get()
	return set.domains[a.Domain] || set.addrs[key(a)]
}

// stripComment cuts line at a '#' that starts it or follows white space.
func stripComment(line string) string {
	for i := 0; i < len(line); i++ {
		if line[i] == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
			return line[:i]
		}
	}
	return line
}

// AtInDomain reports a path, as a client writes it after "MAIL FROM:"
// (the brackets optional, a source route allowed), whose domain holds an
// '@' because its local part has one unquoted: <a@b@example.test>,
// <bad@@example.test>. That is no address (RFC 5321 4.1.2: an '@' in a
// local part must be quoted), but go-smtp takes the local part up to the
// first '@' and hands on "a@b@example.test", which reads the same as the
// valid <"a@b"@example.test> after it unquotes that, so the judgement
// needs the path as written. The session refuses such a sender, and scan
// its --from, with 553 5.1.7.
func AtInDomain(path string) bool {
	path = strings.TrimPrefix(path, "<")
	if strings.HasPrefix(path, "@") { // a source route, "@a,@b:"
		_, rest, ok := strings.Cut(path, ":")
		if !ok {
			return false
		}
		path = rest
	}
	if strings.HasPrefix(path, "\"") {
		i := 1
		for i < len(path) && path[i] != '"' {
			if path[i] == '\\' {
				i++
			}
			i++
		}
		if i >= len(path) {
			return false // an unterminated quote: go-smtp refuses it
		}
		path = path[i+1:]
	} else {
		i := strings.IndexAny(path, "@>")
		if i < 0 {
			return false
		}
		path = path[i:]
	}
	domain, ok := strings.CutPrefix(path, "@")
	if !ok {
		return false
	}
	if end := strings.IndexAny(domain, "> \t"); end >= 0 {
		domain = domain[:end]
	}
	return strings.Contains(domain, "@")
}
