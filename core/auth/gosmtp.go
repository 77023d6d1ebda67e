package auth

import (
	"errors"
	"fmt"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/portcullis-mta/portcullis/core/smtperr"
)

// ForGoSMTP wraps a SASL server so that its errors reach go-smtp as
// *smtp.SMTPError: go-smtp sends any other error's text to the client
// after a 454. Use it in AuthSession.Auth:
//
//	s, err := users.NewServer(mech, hostname, done)
//	if err != nil { return nil, auth.SMTPError(err) }
//	return auth.ForGoSMTP(s), nil
func ForGoSMTP(s sasl.Server) sasl.Server { return goSMTPServer{s} }

type goSMTPServer struct{ s sasl.Server }

func (g goSMTPServer) Next(resp []byte) ([]byte, bool, error) {
	c, done, err := g.s.Next(resp)
	return c, done, SMTPError(err)
}

// SMTPError converts err for go-smtp: an *smtperr.Error becomes the same
// reply; go-sasl's protocol errors become 501 5.5.2; anything else the
// generic temporary failure (its text is not shown).
func SMTPError(err error) error {
	if err == nil {
		return nil
	}
	var se *smtperr.Error
	switch {
	case errors.As(err, &se):
	case errors.Is(err, sasl.ErrUnexpectedClientResponse):
		se = ErrMalformed
	default:
		if err.Error() == "sasl: invalid response" { // go-sasl PLAIN, not exported
			se = ErrMalformed
		} else {
			se = smtperr.As(err)
		}
	}
	var ec smtp.EnhancedCode
	if _, err := fmt.Sscanf(se.Enhanced, "%d.%d.%d", &ec[0], &ec[1], &ec[2]); err != nil {
		ec = smtp.NoEnhancedCode
	}
	return &smtp.SMTPError{Code: se.Code, EnhancedCode: ec, Message: se.Text}
}
