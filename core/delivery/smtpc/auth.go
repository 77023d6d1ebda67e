package smtpc

import (
	"encoding/base64"
	"errors"
	"strings"

	"github.com/emersion/go-sasl"
)

// AuthMechs returns the SASL mechanisms the server offers (RFC 4954 3).
func (c *Client) AuthMechs() []string {
	_, v := c.Ext("AUTH")
	return strings.Fields(strings.ToUpper(v))
}

// Auth runs SMTP AUTH (RFC 4954 4) with a. A refusal is returned as a
// *Reply; a mechanism that cannot answer a challenge cancels with "*".
func (c *Client) Auth(a sasl.Client) error {
	mech, ir, err := a.Start()
	if err != nil {
		return err
	}
	line := "AUTH " + mech
	if ir != nil {
		line += " " + encode(ir)
	}
	r, err := c.cmd(line)
	for err == nil {
		switch r.Code {
		case 235:
			return nil
		case 334:
		default:
			return r
		}
		challenge, derr := base64.StdEncoding.DecodeString(strings.Join(r.Lines, ""))
		var resp []byte
		if derr == nil {
			resp, derr = a.Next(challenge)
		}
		if derr != nil {
			c.cmd("*") // RFC 4954 4: the client cancels; the server answers 501
			return errors.Join(errors.New("smtpc: AUTH "+mech+" cancelled"), derr)
		}
		r, err = c.cmd(encode(resp))
	}
	return err
}

// encode is base64, with "=" for an empty response (RFC 4954 4).
func encode(b []byte) string {
	if len(b) == 0 {
		return "="
	}
	return base64.StdEncoding.EncodeToString(b)
}
