package smtpd

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// goSMTPRest is what go-smtp v0.25.1 (handleMail, handleRcpt) takes for
// the parameters of a MAIL or RCPT argument, ok false where it answers a
// syntax error. The path grammar is copied from its parse.go (MIT
// licence), the reference cmdParams must agree with: the guard's
// duplicate check is worth only as much as its split matches go-smtp's.
func goSMTPRest(verb, arg string) (rest string, ok bool) {
	prefix := "FROM:"
	if verb == "RCPT" {
		prefix = "TO:"
	}
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return "", false
	}
	p := refParser{s: strings.TrimSpace(arg[len(prefix):])}
	var err error
	if verb == "MAIL" && strings.HasPrefix(p.s, "<>") {
		p.s = p.s[2:]
	} else {
		err = p.parsePath()
	}
	return p.s, err == nil
}

type refParser struct{ s string }

func (p *refParser) accept(ch byte) bool {
	if len(p.s) == 0 || p.s[0] != ch {
		return false
	}
	p.s = p.s[1:]
	return true
}

func (p *refParser) parsePath() error {
	hasBracket := p.accept('<')
	if p.accept('@') {
		i := strings.IndexByte(p.s, ':')
		if i < 0 {
			return fmt.Errorf("malformed a-d-l")
		}
		p.s = p.s[i+1:]
	}
	if err := p.parseMailbox(); err != nil {
		return err
	}
	if hasBracket && !p.accept('>') {
		return fmt.Errorf("expected '>'")
	}
	return nil
}

func (p *refParser) parseMailbox() error {
	local, err := p.parseLocalPart()
	if err != nil {
		return err
	} else if local == "" {
		return fmt.Errorf("local-part is empty")
	}
	if !p.accept('@') {
		return fmt.Errorf("expected '@'")
	}
	n := 0
	for len(p.s) > 0 && p.s[0] != ' ' && p.s[0] != '\t' && p.s[0] != '>' {
		p.s = p.s[1:]
		n++
	}
	if n == 0 {
		return fmt.Errorf("domain is empty")
	}
	return nil
}

func (p *refParser) parseLocalPart() (string, error) {
	var sb strings.Builder
	if p.accept('"') {
		for {
			if len(p.s) == 0 {
				return "", fmt.Errorf("malformed quoted-string")
			}
			ch := p.s[0]
			p.s = p.s[1:]
			switch ch {
			case '\\':
				if len(p.s) == 0 {
					return "", fmt.Errorf("malformed quoted-string")
				}
				ch = p.s[0]
				p.s = p.s[1:]
			case '"':
				return sb.String(), nil
			}
			sb.WriteByte(ch)
		}
	}
	for len(p.s) > 0 && p.s[0] != '@' {
		if strings.IndexByte("()<>[]:;\\,\" \t", p.s[0]) >= 0 {
			return "", fmt.Errorf("malformed dot-string")
		}
		sb.WriteByte(p.s[0])
		p.s = p.s[1:]
	}
	return sb.String(), nil
}

// FuzzCmdParams: wherever go-smtp takes a MAIL or RCPT path, the
// parameters the guard checks (cmdParams) are the words go-smtp reads
// into its map, so a parameter given twice never slips past the guard
// for go-smtp to keep the last of.
func FuzzCmdParams(f *testing.F) {
	for _, s := range []string{
		"FROM:<a@example.org> SIZE=1 SIZE=2",
		"FROM:a@example.org\tRET=HDRS\tRET=FULL",
		"FROM:\"a b\"@example.org RET=HDRS",
		"FROM:<\"a>b\"@example.org> BODY=7BIT",
		"FROM:<@x,@y:a@example.org> ENVID=e",
		"FROM:<> SIZE=1",
		"FROM: \v<a@example.org>\tSIZE=1",
		"FROM:a@example.org>x SIZE=1",
		"TO:<bob@example.test> NOTIFY=NEVER",
		"TO:bob@example.test\tNOTIFY=NEVER\tNOTIFY=SUCCESS",
	} {
		f.Add("MAIL", s)
		f.Add("RCPT", s)
	}
	f.Fuzz(func(t *testing.T, verb, arg string) {
		if verb != "MAIL" {
			verb = "RCPT"
		}
		rest, ok := goSMTPRest(verb, arg)
		if !ok {
			return
		}
		if got, want := strings.Fields(cmdParams(arg)), strings.Fields(rest); !slices.Equal(got, want) {
			t.Fatalf("%s %q: guard checks parameters %q, go-smtp reads %q", verb, arg, got, want)
		}
	})
}

// TestParamsSplitAsGoSMTP: parameters after a path without brackets may
// be set apart by tabs, and its local part may be quoted with a blank in
// it; go-smtp reads them so, and the guard's checks must read the same
// words (FuzzCmdParams): a repeated RET or NOTIFY after a tab was taken,
// go-smtp keeping the last, and a quoted local part's blank made the rest
// of the path an unknown argument.
func TestParamsSplitAsGoSMTP(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	r.cmd("MAIL FROM:a@example.org\tRET=HDRS\tRET=FULL", "501 5.5.4 Duplicate parameter")
	r.cmd("MAIL FROM:\"a b\"@example.org RET=HDRS", "250 2.1.0")
	r.cmd("RCPT TO:bob@example.test\tNOTIFY=NEVER\tNOTIFY=SUCCESS", "501 5.5.4 Duplicate parameter")
	r.cmd("RCPT TO:bob@example.test\tNOTIFY=NEVER", "250 2.1.5")
}
