package smtpc

import (
	"fmt"
	"strconv"
	"strings"
)

// Reply is an SMTP reply. As an error it stands for a reply that was not
// the one hoped for.
type Reply struct {
	Code     int
	Enhanced string   // RFC 3463 "5.1.1", "" if the server gave none
	Lines    []string // the text of each line, the enhanced code removed
	Local    bool     // made here (NewReply), not said by a server
}

// Error is the reply on one line: "550 5.1.1 text; more text".
func (r *Reply) Error() string { return r.String() }

// String is the reply on one line.
func (r *Reply) String() string {
	s := strconv.Itoa(r.Code)
	if r.Enhanced != "" {
		s += " " + r.Enhanced
	}
	if t := r.Text(); t != "" {
		s += " " + t
	}
	return s
}

// Text joins the lines of text with "; ", control bytes removed so the text
// is safe in a log line or a DSN field.
func (r *Reply) Text() string {
	return strings.Map(func(c rune) rune {
		if c < 0x20 || c == 0x7f {
			return -1
		}
		return c
	}, strings.Join(r.Lines, "; "))
}

// Temporary reports a 4xx reply (or anything but 5xx: a server that
// answers 3xx where it should not has not refused for good).
func (r *Reply) Temporary() bool { return r.Code/100 != 5 }

// Permanent reports a 5xx reply.
func (r *Reply) Permanent() bool { return r.Code/100 == 5 }

// parseReply splits the reply's text into lines and takes the enhanced
// status code (RFC 2034 3) off each; it is kept only when its class matches
// the reply code's. RFC 2034 puts it on every line, but some servers give
// it only further down ("550-Mailbox unavailable", "550 5.1.1 no such
// user"): the first line that has one gives it, rather than it being taken
// off that line and lost (a DSN Status of 5.0.0).
func parseReply(code int, msg string) *Reply {
	r := &Reply{Code: code}
	for _, l := range strings.Split(msg, "\n") {
		enh, rest := splitEnhanced(l)
		if enh != "" && enh[0] == byte('0'+code/100) {
			if r.Enhanced == "" {
				r.Enhanced = enh
			}
			l = rest
		}
		r.Lines = append(r.Lines, l)
	}
	return r
}

// splitEnhanced takes "x.y.z " off the front of l, if it is there.
func splitEnhanced(l string) (string, string) {
	word, rest, _ := strings.Cut(l, " ")
	parts := strings.Split(word, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || (parts[0] != "2" && parts[0] != "4" && parts[0] != "5") {
		return "", l
	}
	for _, p := range parts[1:] {
		if len(p) == 0 || len(p) > 3 {
			return "", l
		}
		if _, err := strconv.Atoi(p); err != nil {
			return "", l
		}
	}
	return word, rest
}

// NewReply makes a reply of our own (a local failure reported like a
// remote one, for logs and DSNs).
func NewReply(code int, enhanced, format string, args ...any) *Reply {
	return &Reply{Code: code, Enhanced: enhanced, Lines: []string{fmt.Sprintf(format, args...)}, Local: true}
}
