package delivery

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net/textproto"
	"strings"
	"time"

	"github.com/portcullis-mta/portcullis/core/policy"
	"github.com/portcullis-mta/portcullis/core/queue"
)

// dsnKind is what a notification reports.
type dsnKind int

const (
	dsnFailed  dsnKind = iota // RFC 3464 Action: failed
	dsnDelayed                // Action: delayed, the "still trying" notice
	dsnRelayed                // Action: relayed, NOTIFY=SUCCESS to a next hop without DSN (RFC 3461 5.2.3)
)

var dsnActions = map[dsnKind]string{dsnFailed: "failed", dsnDelayed: "delayed", dsnRelayed: "relayed"}

// dsn is one delivery status notification to compose.
type dsn struct {
	kind     dsnKind
	hostname string
	env      *queue.Envelope // the original
	rcpts    []*queue.Recipient
	now      time.Time
	retryEnd time.Time // delayed: Will-Retry-Until
	id       string    // the DSN's own queue ID, for its Message-ID
}

// bounced says whether every recipient reported was failed by
// `queue bounce` (Bounce), not by a delivery attempt: a failure notice.
func (d *dsn) bounced() bool {
	for _, r := range d.rcpts {
		if r.LastReply != bouncedReply {
			return false
		}
	}
	return len(d.rcpts) > 0
}

// full says whether the original goes back whole (RFC 3461 4.3 RET): FULL
// asks for it; HDRS for headers; with neither a failure returns the whole
// message (as Postfix does) and a delay notice only the headers.
func (d *dsn) full() bool {
	switch strings.ToUpper(d.env.DSNRet) {
	case "FULL":
		return true
	case "HDRS":
		return false
	}
	return d.kind == dsnFailed && d.env.BodyType != "BINARYMIME"
}

// dsnFullLimit is the largest original a DSN returns whole (full); a
// larger one comes back as its header only, whatever RET asked (RFC 3461
// 4.3 lets an MTA truncate). Postfix's bounce_size_limit has the same default: a DSN
// carrying a 20 MB message back can itself be refused for its size (and
// a DSN never gets a DSN), and the sender would learn nothing.
const dsnFullLimit = 50000

// write composes the DSN (RFC 3464 2, RFC 6522 multipart/report) with the
// original read from orig.
func (d *dsn) write(w io.Writer, orig io.Reader) error {
	bw := bufio.NewWriter(w)
	mw := multipart.NewWriter(bw)
	subject := map[dsnKind]string{
		dsnFailed:  "Undelivered Mail Returned to Sender",
		dsnDelayed: "Delayed Mail (still being retried)",
		dsnRelayed: "Successful Mail Delivery Report (relayed)",
	}[d.kind]
	fmt.Fprintf(bw, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", d.hostname)
	// Quoted as on the wire: "x>, Bcc: <v@evil.test>, <y"@a.test unquoted
	// was three addresses (RFC 5322 3.4.1: a dot-atom or a quoted string).
	fmt.Fprintf(bw, "To: <%s>\r\n", oneLine(policy.WirePath(d.env.From)))
	fmt.Fprintf(bw, "Subject: %s\r\n", subject)
	fmt.Fprintf(bw, "Date: %s\r\n", d.now.Format(time.RFC1123Z))
	fmt.Fprintf(bw, "Message-ID: <%s.dsn@%s>\r\n", d.id, d.hostname)
	fmt.Fprintf(bw, "Auto-Submitted: auto-replied\r\n") // RFC 3834 5: no auto-replies to this
	fmt.Fprintf(bw, "MIME-Version: 1.0\r\n")
	report := "delivery-status"
	if d.global() {
		report = "global-delivery-status" // the second part's subtype (RFC 6522 3)
	}
	fmt.Fprintf(bw, "Content-Type: multipart/report; report-type=%s;\r\n\tboundary=\"%s\"\r\n\r\n", report, mw.Boundary())
	fmt.Fprintf(bw, "This is a MIME-encapsulated delivery status notification.\r\n")

	if err := d.human(mw); err != nil {
		return err
	}
	if err := d.status(mw); err != nil {
		return err
	}
	if err := d.original(mw, orig); err != nil {
		return err
	}
	if err := mw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

func (d *dsn) human(mw *multipart.Writer) error {
	p, err := mw.CreatePart(textproto.MIMEHeader{
		"Content-Type":              {"text/plain; charset=utf-8"},
		"Content-Transfer-Encoding": {"8bit"},
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(p, "This is the mail system at host %s.\r\n\r\n", d.hostname)
	switch {
	case d.kind == dsnDelayed:
		fmt.Fprintf(p, "Your message (queue ID %s) could not be delivered yet to the recipients\r\n", d.env.ID)
		fmt.Fprintf(p, "below. It will be retried until %s. You do not need to resend it.\r\n\r\n",
			d.retryEnd.Format(time.RFC1123Z))
	case d.kind == dsnRelayed:
		fmt.Fprintf(p, "Your message (queue ID %s) was relayed to the recipients below, to a\r\n", d.env.ID)
		fmt.Fprintf(p, "system that does not report delivery status; no further notice will come.\r\n\r\n")
	case d.bounced():
		fmt.Fprintf(p, "Your message (queue ID %s) was bounced by the administrator of this\r\n", d.env.ID)
		fmt.Fprintf(p, "mail system before it was delivered to the recipients below. It will\r\n")
		fmt.Fprintf(p, "not be retried.\r\n\r\n")
	default:
		fmt.Fprintf(p, "Your message (queue ID %s) could not be delivered to the recipients\r\n", d.env.ID)
		fmt.Fprintf(p, "below. This is a permanent error; it will not be retried.\r\n\r\n")
	}
	for _, r := range d.rcpts {
		why := r.LastReply
		if why == bouncedReply {
			why = bouncedText // no SMTP server said it
		}
		fmt.Fprintf(p, "<%s>: %s\r\n", oneLine(r.Addr), oneLine(why))
	}
	return nil
}

// global reports a DSN about internationalized mail (RFC 6533): the
// original was sent with SMTPUTF8, or an address the DSN names is not
// ASCII. Its parts are then message/global-delivery-status and
// message/global (or message/global-headers), whose fields may hold UTF-8,
// and a UTF-8 address is of type utf-8, not rfc822.
func (d *dsn) global() bool {
	if d.env.SMTPUTF8 || !isASCII(d.env.From) {
		return true
	}
	for _, r := range d.rcpts {
		if !isASCII(r.Addr) || !isASCII(r.ORCPT) {
			return true
		}
	}
	return false
}

// status is the message/delivery-status part (RFC 3464 2.2, 2.3), or
// message/global-delivery-status (RFC 6533 6.2) for a global DSN.
func (d *dsn) status(mw *multipart.Writer) error {
	typ := "message/delivery-status"
	if d.global() {
		typ = "message/global-delivery-status"
	}
	h := textproto.MIMEHeader{"Content-Type": {typ}}
	if typ != "message/delivery-status" {
		h.Set("Content-Transfer-Encoding", "8bit")
	}
	part, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	var p io.Writer = part
	if typ == "message/delivery-status" {
		// RFC 3464 6.2: 7bit is sufficient and MUST be used. A hop's
		// reply may hold UTF-8 ("550 Absender ungültig"): as Postfix
		// does, such characters become '?'.
		p = asciiWriter{part}
	}
	fmt.Fprintf(p, "Reporting-MTA: dns; %s\r\n", d.hostname)
	fmt.Fprintf(p, "X-Portcullis-Queue-ID: %s\r\n", d.env.ID)
	if d.env.DSNEnvID != "" {
		fmt.Fprintf(p, "Original-Envelope-Id: %s\r\n", oneLine(d.env.DSNEnvID))
	}
	fmt.Fprintf(p, "Arrival-Date: %s\r\n", d.env.Received.Format(time.RFC1123Z))
	for _, r := range d.rcpts {
		if addr := policy.WirePath(r.Addr); isASCII(addr) {
			fmt.Fprintf(p, "\r\nFinal-Recipient: rfc822; %s\r\n", oneLine(addr))
		} else {
			fmt.Fprintf(p, "\r\nFinal-Recipient: utf-8; %s\r\n", oneLine(addr)) // RFC 6533 3
		}
		if r.ORCPT != "" {
			typ, addr, _ := strings.Cut(r.ORCPT, ";")
			fmt.Fprintf(p, "Original-Recipient: %s; %s\r\n", oneLine(typ), oneLine(addr))
		}
		action, code := dsnActions[d.kind], map[dsnKind]string{dsnFailed: "5.0.0", dsnDelayed: "4.0.0", dsnRelayed: "2.0.0"}[d.kind]
		if c := statusCode(r.LastReply); c != "" {
			code = c
		}
		fmt.Fprintf(p, "Action: %s\r\nStatus: %s\r\n", action, code)
		// An administrator's bounce came from no remote MTA, whatever
		// host an earlier attempt reached.
		if host, _, ok := strings.Cut(r.LastHop, "["); ok && host != "" && r.LastReply != bouncedReply {
			fmt.Fprintf(p, "Remote-MTA: dns; %s\r\n", oneLine(host))
		}
		if r.LastReply != "" {
			fmt.Fprintf(p, "Diagnostic-Code: %s\r\n", dsnDiagnostic(r.LastReply, r.LastLocal))
		}
		fmt.Fprintf(p, "Last-Attempt-Date: %s\r\n", d.now.Format(time.RFC1123Z))
		if d.kind == dsnDelayed {
			fmt.Fprintf(p, "Will-Retry-Until: %s\r\n", d.retryEnd.Format(time.RFC1123Z))
		}
	}
	return nil
}

// original returns the message (message/rfc822) or its header
// (text/rfc822-headers, RFC 6522 4), read from the spool. Either is at
// most dsnFullLimit bytes: a header is cut there, at a line's end, and it
// ends at its blank line or at the first line that is no header field
// (a message without a blank line, or with a huge header, is not sent
// back whole as "headers"). The part is labelled 8bit when its bytes are.
func (d *dsn) original(mw *multipart.Writer, orig io.Reader) error {
	head, err := io.ReadAll(io.LimitReader(orig, dsnFullLimit+1))
	if err != nil {
		return err
	}
	full := d.full() && len(head) <= dsnFullLimit
	content := head
	if !full {
		content = headerOf(head)
	}
	h := textproto.MIMEHeader{"Content-Type": {"text/rfc822-headers"}}
	switch {
	case full && d.global():
		h.Set("Content-Type", "message/global") // RFC 6532 3.7
	case full:
		h.Set("Content-Type", "message/rfc822")
	case d.global():
		h.Set("Content-Type", "message/global-headers") // RFC 6533 6.3
	}
	if !isASCII(string(content)) {
		h.Set("Content-Transfer-Encoding", "8bit")
	}
	p, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	_, err = p.Write(content)
	return err
}

// headerOf returns the header fields at the start of msg: up to its blank
// line or the first line that is neither a field ("Name:") nor a
// continuation, whole lines only (a field cut at dsnFullLimit is
// dropped).
func headerOf(msg []byte) []byte {
	end := 0
	for end < len(msg) {
		i := bytes.IndexByte(msg[end:], '\n')
		if i < 0 {
			break // a line cut short by the limit
		}
		line := msg[end : end+i+1]
		if !isFieldLine(line) {
			break
		}
		end += i + 1
	}
	return msg[:end]
}

// isFieldLine: a header field's first line (RFC 5322 2.2: a name of
// printable characters but colon, then a colon; 4.5.3's obsolete syntax
// allows white space before the colon) or a continuation (one of white
// space only too, 4.2's obs-FWS).
func isFieldLine(line []byte) bool {
	if line[0] == ' ' || line[0] == '\t' {
		return true
	}
	name, _, ok := bytes.Cut(line, []byte(":"))
	name = bytes.TrimRight(name, " \t")
	if !ok || len(name) == 0 {
		return false
	}
	for _, c := range name {
		if c < '!' || c > '~' {
			return false
		}
	}
	return true
}

// asciiWriter writes what is written to it with every non-ASCII character
// (or byte of an invalid sequence) replaced by '?'. Each Write is whole
// lines here (Fprintf), so no character is split across two.
type asciiWriter struct{ w io.Writer }

func (a asciiWriter) Write(p []byte) (int, error) {
	if isASCII(string(p)) {
		return a.w.Write(p)
	}
	out := make([]byte, 0, len(p))
	for _, r := range string(p) {
		if r >= 0x80 {
			r = '?'
		}
		out = append(out, byte(r))
	}
	if _, err := a.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// statusCode finds the RFC 3463 code in a reply line "550 5.1.1 text".
// One whose class is not the reply's ("550 4.2.2") is not taken: RFC 3463
// 2 says they match, and the reply code is what the client acts on.
func statusCode(reply string) string {
	if c := replyStatus(reply); c != "" && c[0] != '2' {
		return c
	}
	return ""
}

// oneLine keeps a field value on one line: a reply or address with CR or
// LF in it must not start a header field of its own.
func oneLine(s string) string {
	return strings.Map(func(c rune) rune {
		if c == '\r' || c == '\n' {
			return ' '
		}
		return c
	}, s)
}

// dsnDiagnostic is a recipient's Diagnostic-Code (RFC 3464 2.3.6): "smtp;"
// and the reply a hop gave, or "X-Portcullis;" and our own words for what
// no SMTP server said (local: a connection refused or lost, a loop, a DNS
// failure; an expiry, an administrator's bounce), as Postfix says
// "X-Postfix;".
func dsnDiagnostic(reply string, local bool) string {
	if rest, ok := strings.CutPrefix(reply, "554 5.4.7 "+expiredText); ok {
		return "X-Portcullis; " + oneLine(expiredText+rest)
	}
	if reply == bouncedReply {
		return "X-Portcullis; " + bouncedText
	}
	if local || reply == errNoUTF8.String() {
		return "X-Portcullis; " + oneLine(reply)
	}
	return "smtp; " + oneLine(reply)
}
