// Package smtperr is the one SMTP-aware error type of the gateway. It wraps
// its cause and says whether it is temporary (4xx) or permanent (5xx). The
// client-facing text is generic; the cause goes to the log.
package smtperr

import (
	"errors"
	"fmt"
)

// Error is an SMTP reply with the internal cause behind it.
type Error struct {
	Code     int    // 4xx or 5xx
	Enhanced string // RFC 3463 code, "4.3.0"
	Text     string // what the client sees
	Cause    error  // what the log sees; never sent to the client
	// Client: Cause is the client's own mistake (an address that does
	// not parse), not a fault of the gateway. It is logged as the
	// reason of the refusal, at info, never as an internal error.
	Client bool
}

// New returns an error with no cause.
func New(code int, enhanced, text string) *Error {
	return &Error{Code: code, Enhanced: enhanced, Text: text}
}

// Wrap returns an error with cause behind a client-facing reply.
func Wrap(cause error, code int, enhanced, text string) *Error {
	return &Error{Code: code, Enhanced: enhanced, Text: text, Cause: cause}
}

// Refuse returns an error for a request the client got wrong, with why
// (cause) for the log line of the refusal.
func Refuse(cause error, code int, enhanced, text string) *Error {
	return &Error{Code: code, Enhanced: enhanced, Text: text, Cause: cause, Client: true}
}

// Temporary reports a 4xx reply.
func (e *Error) Temporary() bool { return e.Code >= 400 && e.Code < 500 }

// Error is the reply line followed by the cause, for logs.
func (e *Error) Error() string {
	s := fmt.Sprintf("%d %s %s", e.Code, e.Enhanced, e.Text)
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

// Reply is the line the client sees: "451 4.3.0 text".
func (e *Error) Reply() string { return fmt.Sprintf("%d %s %s", e.Code, e.Enhanced, e.Text) }

// As finds an *Error in err's chain. An error without one becomes the
// generic temporary failure, so that no plain Go error text reaches a client.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Wrap(err, 451, "4.3.0", "Temporary local problem, try again later")
}

// Common replies.
var (
	ErrTempLocal = New(451, "4.3.0", "Temporary local problem, try again later")
	ErrPolicy    = New(550, "5.7.1", "Rejected by policy")
)
