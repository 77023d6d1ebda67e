package queue

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestOnDurable: a draft calls its OnDurable function during Commit, once
// the message is stored and before a delivery worker can lease it (so a
// "queued" log line written there comes before any delivery line), with
// and without the intake log, small and spilled to a file.
func TestOnDurable(t *testing.T) {
	big := strings.Repeat("0123456789abcdef\r\n", 20000) // over the intake's in-memory limit
	for _, intake := range []bool{false, true} {
		for _, body := range []string{"small body\r\n", big} {
			name := map[bool]string{false: "file", true: "intake"}[intake] + map[bool]string{false: "/small", true: "/large"}[len(body) > 100]
			t.Run(name, func(t *testing.T) {
				q, err := Open(t.TempDir(), Options{Poll: -1, Intake: intake})
				if err != nil {
					t.Fatal(err)
				}
				defer q.Close()
				dr, err := q.NewDraft()
				if err != nil {
					t.Fatal(err)
				}
				called := false
				dr.(DurableNotifier).OnDurable(func() {
					called = true
					if _, err := q.Lease(time.Now().Add(time.Hour)); !errors.Is(err, ErrEmpty) {
						t.Errorf("leased before the durable call returned: %v", err)
					}
				})
				dr.Write([]byte("Subject: x\r\n\r\n" + body))
				if err := dr.Commit(&Envelope{From: "a@example.org", Rcpts: []*Recipient{{Addr: "b@example.test"}}}, nil); err != nil {
					t.Fatal(err)
				}
				if !called {
					t.Fatal("OnDurable's function not called")
				}
				l, err := q.Lease(time.Now().Add(time.Hour))
				if err != nil {
					t.Fatalf("not due after Commit: %v", err)
				}
				l.Release()
			})
		}
	}
}
