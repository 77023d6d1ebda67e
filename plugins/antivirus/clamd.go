package antivirus

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// clamd speaks the INSTREAM command of clamd(8): "zINSTREAM\0", then chunks
// of <uint32 big-endian length><bytes>, then a zero length; the reply is
// "stream: OK", "stream: NAME FOUND" or "... ERROR", NUL-terminated.
type clamd struct {
	network, addr string
	chunk         int
	dial          func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (c *clamd) scan(ctx context.Context, r io.Reader) (string, error) {
	conn, err := c.dial(ctx, c.network, c.addr)
	if err != nil {
		return "", fmt.Errorf("%w: clamd %s: %v", ErrScan, c.addr, err)
	}
	defer conn.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Minute)
	}
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	// When clamd refuses the stream ("INSTREAM size limit exceeded") it
	// replies and closes: a write then fails with EPIPE, but the reply
	// that explains it is still there to be read.
	werr := c.send(conn, r)
	reply, rerr := readReply(conn)
	if rerr != nil {
		if werr != nil {
			return "", fmt.Errorf("%w: clamd %s: %v", ErrScan, c.addr, werr)
		}
		return "", fmt.Errorf("%w: clamd %s: reading reply: %v", ErrScan, c.addr, rerr)
	}
	virus, err := parseReply(reply, c.addr)
	if err == nil && virus == "" && werr != nil {
		// "OK" for a stream that broke off is "nothing found in the part
		// it had": the rest of the message went unscanned (a server that
		// stops reading at a size limit of its own and answers for what
		// it read). A virus found in that part is still one.
		return "", fmt.Errorf("%w: clamd %s: answered %q before it had the whole message: %v", ErrScan, c.addr, reply, werr)
	}
	return virus, err
}

// send writes the command and the stream.
func (c *clamd) send(conn net.Conn, r io.Reader) error {
	w := bufio.NewWriterSize(conn, c.chunk+4)
	if _, err := w.WriteString("zINSTREAM\x00"); err != nil {
		return err
	}
	buf := make([]byte, c.chunk)
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			var hdr [4]byte
			binary.BigEndian.PutUint32(hdr[:], uint32(n))
			w.Write(hdr[:])
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading message: %v", err)
		}
	}
	w.Write([]byte{0, 0, 0, 0})
	return w.Flush()
}

// readReply reads the reply up to its NUL terminator (clamd(8): a
// command in its "z" form gets a NUL-terminated reply), at most 4 KiB, and
// returns there: a server that keeps the connection open after replying
// (a proxy, a clamd-compatible scanner) must not hold the scan, and the
// message, until the deadline. A reply cut off by EOF or a reset (clamd
// closing on a refused stream) is taken as it is.
func readReply(conn net.Conn) (string, error) {
	b, err := bufio.NewReader(io.LimitReader(conn, 4096)).ReadBytes(0)
	if err == nil {
		return string(b[:len(b)-1]), nil
	}
	if len(b) > 0 && (err == io.EOF || isReset(err)) {
		return string(b), nil
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return "", err
}

func isReset(err error) bool {
	return strings.Contains(err.Error(), "connection reset")
}

// parseReply maps clamd's answer to a virus name or an error.
func parseReply(reply, addr string) (string, error) {
	reply = strings.TrimSpace(reply)
	_, body, _ := strings.Cut(reply, ": ") // "stream: ..." (clamd may prefix a request id)
	if body == "" {
		body = reply
	}
	switch {
	case reply == "":
		return "", fmt.Errorf("%w: clamd %s: empty reply", ErrScan, addr)
	case body == "OK":
		return "", nil
	case strings.HasSuffix(body, " FOUND"):
		return strings.TrimSuffix(body, " FOUND"), nil
	default:
		return "", fmt.Errorf("%w: clamd %s: %s", ErrScan, addr, reply)
	}
}
