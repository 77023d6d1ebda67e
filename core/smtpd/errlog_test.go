package smtpd

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/core/internal/logbuf"
)

// A panic go-smtp recovered in a session is an error in the log, not a
// debug line an admin at info never sees; other go-smtp chatter stays at
// debug.
func TestErrLogLevels(t *testing.T) {
	var b logbuf.Buffer
	l := errLog{slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	l.Printf("error handling %v: %s", "127.0.0.1:1", "EOF")
	l.Printf("panic serving %v: %v\n%s", "127.0.0.1:1", "boom", "stack")
	out := b.String()
	if !strings.Contains(out, "level=ERROR msg=\"smtp session panicked\"") || !strings.Contains(out, "boom") {
		t.Errorf("panic not logged as an error:\n%s", out)
	}
	if strings.Contains(out, "error handling") {
		t.Errorf("client chatter logged at info:\n%s", out)
	}
}
