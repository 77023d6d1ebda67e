// Package smtpc is the SMTP client delivery speaks to next hops with
// (RFC 5321). It exists beside go-smtp's client because delivery needs what
// that one lacks: EHLO with our own name followed by STARTTLS on the same
// connection, PIPELINING (RFC 2920) of MAIL, RCPT and DATA, every reply of a
// transaction (one per recipient) returned rather than the first error, and
// deadlines on every read and write so a stalled peer cannot hold a worker.
// Bodies are streamed with bare CR and bare LF turned into CRLF
// (RFC 5321 2.3.8) and dot-stuffed (4.5.2); FoldLines breaks lines over
// 998 octets (4.5.3.1.6) for a caller that may have them.
package smtpc

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// Client is one SMTP connection. Not safe for concurrent use.
type Client struct {
	conn    *deadlineConn
	tconn   net.Conn // conn, or the TLS connection over it
	text    *textproto.Reader
	budget  *replyBudget // under text: bounds what one reply may read
	bw      *bufio.Writer
	ext     map[string]string
	tls     *tls.ConnectionState
	name    string // our EHLO name
	server  string // the name in the server's EHLO/HELO reply
	greeted string // the name in its 220 greeting

	// DataTimeout bounds the wait for the reply to the final dot
	// (RFC 5321 4.5.3.2.6 suggests 10 minutes).
	DataTimeout time.Duration
}

// New wraps conn. Timeout bounds every read and write (RFC 5321 4.5.3.2:
// 5 minutes per command); 0 means 5 minutes.
func New(conn net.Conn, timeout time.Duration) *Client {
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	dc := &deadlineConn{Conn: conn}
	dc.timeout.Store(int64(timeout))
	c := &Client{conn: dc, DataTimeout: 10 * time.Minute}
	c.setConn(dc)
	return c
}

func (c *Client) setConn(nc net.Conn) {
	c.tconn = nc
	c.budget = &replyBudget{r: nc}
	c.text = textproto.NewReader(bufio.NewReaderSize(c.budget, 4096))
	c.bw = bufio.NewWriterSize(nc, 32*1024)
}

// Greet reads the server's greeting; a reply other than 220 is returned as
// the error (a *Reply).
func (c *Client) Greet() error {
	r, err := c.read()
	if err != nil {
		return err
	}
	if r.Code != 220 {
		return r
	}
	c.greeted = firstWord(r.Lines)
	return nil
}

// Hello sends EHLO name (HELO if the server refuses EHLO) and records the
// extensions offered.
func (c *Client) Hello(name string) error {
	c.name = name
	r, err := c.cmd("EHLO " + name)
	if err != nil {
		return err
	}
	if r.Code == 250 {
		c.ext = parseEHLO(r.Lines)
		c.server = firstWord(r.Lines)
		return nil
	}
	if r.Code != 500 && r.Code != 502 && r.Code != 554 {
		return r
	}
	c.ext = map[string]string{}
	if r, err = c.cmd("HELO " + name); err != nil {
		return err
	}
	if r.Code != 250 {
		return r
	}
	c.server = firstWord(r.Lines)
	return nil
}

// ServerNames are the names the server gave in its greeting and in its
// EHLO (or HELO) reply, where RFC 5321 (4.2, 4.1.1.1) puts them first; ""
// for one not yet read.
func (c *Client) ServerNames() (greeting, hello string) { return c.greeted, c.server }

func firstWord(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	w, _, _ := strings.Cut(strings.TrimSpace(lines[0]), " ")
	return w
}

// parseEHLO reads the extension lines of an EHLO reply (the first line is
// the server's name): keyword, then its parameters (RFC 5321 4.1.1.1).
func parseEHLO(lines []string) map[string]string {
	ext := make(map[string]string, len(lines))
	for _, l := range lines[min(1, len(lines)):] {
		k, v, _ := strings.Cut(strings.TrimSpace(l), " ")
		if k != "" {
			ext[strings.ToUpper(k)] = strings.TrimSpace(v)
		}
	}
	// Some old servers still say "AUTH=LOGIN PLAIN".
	if v, ok := ext["AUTH=LOGIN"]; ok && ext["AUTH"] == "" {
		ext["AUTH"] = strings.TrimSpace("LOGIN " + v)
	}
	return ext
}

// Ext reports whether the server offered extension name, and its parameters.
func (c *Client) Ext(name string) (bool, string) {
	v, ok := c.ext[strings.ToUpper(name)]
	return ok, v
}

// Size reports whether the server offers SIZE (RFC 1870 4) and the largest
// message it announces it will take: 0 when it names no limit.
func (c *Client) Size() (bool, int64) {
	ok, v := c.Ext("SIZE")
	if !ok {
		return false, 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return true, 0
	}
	return true, n
}

// StartTLS upgrades the connection (RFC 3207) and says EHLO again, as the
// extensions offered before TLS no longer hold.
func (c *Client) StartTLS(ctx context.Context, cfg *tls.Config) error {
	r, err := c.cmd("STARTTLS")
	if err != nil {
		return err
	}
	if r.Code != 220 {
		return r
	}
	if err := c.handshake(ctx, tls.Client(c.conn, cfg)); err != nil {
		return err
	}
	return c.Hello(c.name)
}

// WrapTLS starts TLS at once, for implicit TLS (RFC 8314 3.3, port 465),
// before Greet.
func (c *Client) WrapTLS(ctx context.Context, cfg *tls.Config) error {
	return c.handshake(ctx, tls.Client(c.conn, cfg))
}

func (c *Client) handshake(ctx context.Context, tc *tls.Conn) error {
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	st := tc.ConnectionState()
	c.tls = &st
	c.setConn(tc)
	return nil
}

// TLS returns the TLS state, if TLS is on.
func (c *Client) TLS() (tls.ConnectionState, bool) {
	if c.tls == nil {
		return tls.ConnectionState{}, false
	}
	return *c.tls, true
}

// Reset sends RSET, ending a transaction that went wrong.
func (c *Client) Reset() error {
	r, err := c.cmd("RSET")
	if err != nil {
		return err
	}
	if r.Code != 250 {
		return r
	}
	return nil
}

// Quit says QUIT (not waiting long for the answer) and closes.
func (c *Client) Quit() error {
	c.conn.timeout.Store(int64(5 * time.Second))
	c.cmd("QUIT")
	return c.Close()
}

// Close closes the connection.
func (c *Client) Close() error { return c.tconn.Close() }

// cmd sends one command line and reads its reply.
func (c *Client) cmd(line string) (*Reply, error) {
	if err := c.writeLine(line); err != nil {
		return nil, err
	}
	if err := c.bw.Flush(); err != nil {
		return nil, err
	}
	return c.read()
}

func (c *Client) writeLine(line string) error {
	if strings.ContainsAny(line, "\r\n") {
		return errors.New("smtpc: CR or LF in command")
	}
	c.bw.WriteString(line)
	_, err := c.bw.WriteString("\r\n")
	return err
}

// maxReplyBytes bounds what is read from the connection for one reply
// (beyond what the buffer already held). RFC 5321 4.5.3.1.5 allows 512
// octets a line, and an EHLO reply has a few dozen lines; a next hop, any
// recipient domain's MX, that sends a reply without end would otherwise
// grow the daemon without bound (1 GiB without a line end was read whole).
const maxReplyBytes = 64 << 10

// errReplyTooLong ends a session whose server sends a reply over
// maxReplyBytes.
var errReplyTooLong = errors.New("smtpc: reply longer than 64 KiB")

// replyBudget reads from r at most left bytes, then fails.
type replyBudget struct {
	r    io.Reader
	left int
}

func (b *replyBudget) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errReplyTooLong
	}
	if len(p) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= n
	return n, err
}

// read reads one reply, multi-line or not. A malformed reply is an error:
// the connection is no longer in a known state.
func (c *Client) read() (*Reply, error) {
	c.budget.left = maxReplyBytes
	code, msg, err := readResponse(c.text)
	if err != nil {
		var perr textproto.ProtocolError
		if errors.As(err, &perr) {
			return nil, fmt.Errorf("smtpc: bad reply: %w", err)
		}
		return nil, err
	}
	if code < 200 || code > 599 {
		return nil, fmt.Errorf("smtpc: bad reply code %d", code)
	}
	return parseReply(code, msg), nil
}

// readResponse reads one reply as RFC 5321 4.2 writes it: lines of a
// three-digit code, with "-" after the code of every line but the last,
// whose code is followed by a space and text or by nothing ("250" alone is
// a whole reply: the text is optional). textproto's ReadResponse refuses
// that last form as a "short response", which made a delivered message
// read as a lost connection, sent again at every retry. As there, a line
// inside a multi-line reply that is not one of its lines is kept as text.
// msg is the lines' text, joined by "\n".
func readResponse(r *textproto.Reader) (code int, msg string, err error) {
	line, err := r.ReadLine()
	if err != nil {
		return 0, "", err
	}
	code, more, msg, err := codeLine(line)
	if err != nil {
		return 0, "", err
	}
	for more {
		if line, err = r.ReadLine(); err != nil {
			return 0, "", err
		}
		c, m, text, err := codeLine(line)
		if err != nil || c != code {
			msg += "\n" + line
			continue
		}
		more = m
		msg += "\n" + text
	}
	return code, msg, nil
}

// codeLine splits one reply line into its code, whether more lines follow,
// and its text.
func codeLine(line string) (code int, more bool, text string, err error) {
	if len(line) < 3 || (len(line) > 3 && line[3] != ' ' && line[3] != '-') {
		return 0, false, "", textproto.ProtocolError("short response: " + line)
	}
	for _, d := range line[:3] {
		if d < '0' || d > '9' {
			return 0, false, "", textproto.ProtocolError("invalid response code: " + line)
		}
	}
	code, _ = strconv.Atoi(line[:3])
	if len(line) > 3 {
		more, text = line[3] == '-', line[4:]
	}
	return code, more, text, nil
}
