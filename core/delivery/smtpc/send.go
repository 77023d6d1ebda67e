package smtpc

import (
	"io"
)

// Rcpt is one RCPT TO with its parameters (NOTIFY=..., ORCPT=...).
type Rcpt struct {
	Addr   string
	Params []string
}

// Result holds the replies of one transaction. Rcpts[i] answers rcpts[i]
// (nil if it was never sent). Data is the reply to the final dot, or the
// refusal of the DATA command itself, nil if neither came: only a 2xx to
// the final dot delivers the accepted recipients.
type Result struct {
	Mail  *Reply
	Rcpts []*Reply
	Data  *Reply
	// DotSent is true once the final dot has gone out. With Data nil it
	// means the outcome is unknown: the server may have taken the message
	// and lost the connection (or its time) before saying so (RFC 1047).
	DotSent bool
}

// Delivered reports whether recipient i was accepted and the message with
// it, in a transaction whose MAIL was accepted. Any 2xx to the final dot
// delivers, as Postfix's smtp client takes it: RFC 5321 4.3.2 lists only
// 250, but a hop that answers "251 queued" has the message, and counting
// it undelivered would send it again.
func (r *Result) Delivered(i int) bool {
	return r.Mail != nil && r.Mail.Code == 250 && r.Data != nil && r.Data.Code/100 == 2 &&
		r.Rcpts[i] != nil && r.Rcpts[i].Code/100 == 2
}

// Send runs one mail transaction: MAIL, every RCPT, DATA and the body. With
// PIPELINING (RFC 2920 3.1) MAIL, the RCPTs and DATA go in one write and the
// replies are read after. Send returns an error only when the connection can
// no longer be trusted (I/O error, timeout, garbled reply); Result then
// holds the replies read so far, and the connection must be closed.
func (c *Client) Send(from string, mailParams []string, rcpts []Rcpt, body io.Reader) (*Result, error) {
	res := &Result{Rcpts: make([]*Reply, len(rcpts))}
	lines := make([]string, 0, len(rcpts)+2)
	lines = append(lines, joinParams("MAIL FROM:<"+from+">", mailParams))
	for _, r := range rcpts {
		lines = append(lines, joinParams("RCPT TO:<"+r.Addr+">", r.Params))
	}
	lines = append(lines, "DATA")
	replies, err := c.exchange(lines)
	if len(replies) > 0 {
		res.Mail = replies[0]
	}
	for i := range rcpts {
		if i+1 < len(replies) {
			res.Rcpts[i] = replies[i+1]
		}
	}
	if err != nil {
		return res, err
	}
	dataReply := replies[len(replies)-1]
	if dataReply.Code != 354 {
		if res.Mail != nil && res.Mail.Code == 250 {
			// The DATA command refused: that reply is the verdict for the
			// recipients that were accepted, 5xx for good, 4xx for now
			// (Postfix's "... in reply to DATA command").
			// (Anything else but 354 leaves Data nil: not delivered.)
			if dataReply.Permanent() || dataReply.Code/100 == 4 {
				res.Data = dataReply
			}
			return res, c.Reset()
		}
		if dataReply.Code/100 == 2 {
			res.Data = dataReply // a server that took DATA but did not say 354 is broken
			return res, io.ErrUnexpectedEOF
		}
		return res, nil
	}
	// A recipient counts only in a transaction whose MAIL was accepted: a
	// server that refused MAIL and then took RCPT and DATA (354) anyway
	// gets no message either (RFC 2920 3.1: the client checks every reply).
	accepted := false
	for _, r := range res.Rcpts {
		accepted = accepted || (r != nil && r.Code/100 == 2)
	}
	accepted = accepted && res.Mail != nil && res.Mail.Code == 250
	if !accepted {
		body = eofReader{} // RFC 2920 3.1: DATA got 354 anyway; send an empty message and let it fail
	}
	res.Data, res.DotSent, err = c.data(body)
	if err == nil && !accepted && res.Data.Code/100 == 2 {
		res.Data = NewReply(554, "5.5.1", "no valid recipients")
		if res.Mail != nil && res.Mail.Code != 250 {
			res.Data = res.Mail // the sender's refusal is the verdict
		}
	}
	return res, err
}

// exchange sends lines and reads one reply for each: all at once with
// PIPELINING, else one after the other, stopping early when the MAIL or
// every RCPT failed (there is no point in DATA then).
func (c *Client) exchange(lines []string) ([]*Reply, error) {
	replies := make([]*Reply, 0, len(lines))
	if ok, _ := c.Ext("PIPELINING"); ok {
		for _, l := range lines {
			if err := c.writeLine(l); err != nil {
				return nil, err
			}
		}
		if err := c.bw.Flush(); err != nil {
			return nil, err
		}
		for range lines {
			r, err := c.read()
			if err != nil {
				return replies, err
			}
			replies = append(replies, r)
		}
		return replies, nil
	}
	accepted := false
	for i, l := range lines {
		last := i == len(lines)-1
		if last && !accepted {
			replies = append(replies, NewReply(554, "5.5.1", "no valid recipients"))
			break
		}
		r, err := c.cmd(l)
		if err != nil {
			return replies, err
		}
		replies = append(replies, r)
		if i == 0 && r.Code != 250 {
			for range lines[1:] {
				replies = append(replies, nil)
			}
			replies[len(replies)-1] = r // DATA never sent: the MAIL reply stands for it
			return replies, nil
		}
		accepted = accepted || (i > 0 && !last && r.Code/100 == 2)
	}
	return replies, nil
}

// data streams body after a 354 and reads the final reply; sent reports
// that the final dot went out.
func (c *Client) data(body io.Reader) (r *Reply, sent bool, err error) {
	dw := newDataWriter(c.bw)
	if _, err := io.Copy(dw, body); err != nil {
		return nil, false, err
	}
	if err := dw.Close(); err != nil { // ends the line, writes the dot, flushes
		return nil, false, err
	}
	old := c.conn.timeout.Swap(int64(c.DataTimeout))
	defer c.conn.timeout.Store(old)
	r, err = c.read()
	return r, true, err
}

func joinParams(cmd string, params []string) string {
	for _, p := range params {
		cmd += " " + p
	}
	return cmd
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
