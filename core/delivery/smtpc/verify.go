package smtpc

// Verify asks whether the server takes rcpt, without sending mail: MAIL
// FROM:<> (the null sender, so that nothing could ever bounce back to
// anyone), RCPT TO:<rcpt>, and RSET to end the transaction; never DATA.
// This is Postfix's address verification probe and Exim's callout. The
// reply returned is the one that decides: the refusal of MAIL (mailRefused
// set) when MAIL was refused, else the reply to RCPT. An error says the
// conversation broke (I/O, timeout, garbled reply); the connection must
// then be closed.
func (c *Client) Verify(rcpt string) (r *Reply, mailRefused bool, err error) {
	r, err = c.cmd("MAIL FROM:<>")
	if err != nil {
		return nil, false, err
	}
	if r.Code != 250 {
		return r, true, nil
	}
	r, err = c.cmd("RCPT TO:<" + rcpt + ">")
	if err != nil {
		return nil, false, err
	}
	// RSET's reply does not change the verdict; a server that cannot
	// answer it is closed by the caller's QUIT anyway.
	_, _ = c.cmd("RSET")
	return r, false, nil
}
