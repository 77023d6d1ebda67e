package smtperr

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
)

// TestAsPlainError: a plain Go error that reaches the reply path (a spool
// write, a stage host that crashed) is a temporary local problem, 451
// 4.3.0, so the client retries; answering it 5xx would bounce mail that a
// retry would have delivered. Its text is for the log only: the reply must
// not show paths or internals to the client.
func TestAsPlainError(t *testing.T) {
	cause := fmt.Errorf("open /var/spool/portcullis/secret-path: %w", syscall.EIO)
	e := As(cause)
	if e.Code != 451 || e.Enhanced != "4.3.0" || !e.Temporary() {
		t.Fatalf("As(plain error) = %d %s (temporary %v), want 451 4.3.0 temporary", e.Code, e.Enhanced, e.Temporary())
	}
	if got, want := e.Reply(), "451 4.3.0 Temporary local problem, try again later"; got != want {
		t.Errorf("Reply() = %q, want %q", got, want)
	}
	if strings.Contains(e.Reply(), "secret-path") || strings.Contains(e.Text, "input/output") {
		t.Errorf("the cause leaks to the client: %q", e.Reply())
	}
	// The log keeps it.
	if !strings.Contains(e.Error(), "secret-path") || !errors.Is(e, syscall.EIO) {
		t.Errorf("the cause is lost for the log: Error() = %q, Is(EIO) = %v", e.Error(), errors.Is(e, syscall.EIO))
	}
}

// TestAsKeepsSMTPError: an *Error anywhere in the chain is the reply as
// its maker chose it, not the generic 451.
func TestAsKeepsSMTPError(t *testing.T) {
	inner := Refuse(errors.New("no such domain"), 550, "5.1.2", "Bad destination system address")
	e := As(fmt.Errorf("rcpt: %w", inner))
	if e != inner {
		t.Fatalf("As = %v, want the wrapped %v", e, inner)
	}
	if e.Temporary() {
		t.Error("a 550 reported temporary")
	}
	if got, want := e.Reply(), "550 5.1.2 Bad destination system address"; got != want {
		t.Errorf("Reply() = %q, want %q", got, want)
	}
}
