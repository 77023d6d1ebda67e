package delivery

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/queue"
)

// TestExpiredLogged: a recipient given up at queue.max_age gets a
// delivery line saying so, with its last reply, its delay and its
// attempts, and the message's trace then ends with "removed".
func TestExpiredLogged(t *testing.T) {
	cfg := baseConfig(t)
	cfg.Routes = []config.Route{mkRoute([]string{"*"}, "127.0.0.1:1")} // nothing listens: deferred
	w := newWorld(t, cfg)
	old := func(e *queue.Envelope) { e.Received = time.Now().Add(-2 * time.Hour) } // max_age is 1h
	id := w.enqueue("u@example.test", []string{"a@d.test"}, localSender, plainBody, old)
	w.start()
	w.waitFor("removed", func() bool { return strings.Contains(w.logs.String(), "msg=removed queue_id="+id) })
	logs := w.logs.String()
	re := regexp.MustCompile(`msg=delivery queue_id=` + id + ` rcpt=a@d.test reply="554 5.4.7 message expired in queue; last reply: [^"]+" status=expired delay=2h0m0(\.\d+)?s attempts=1\n`)
	line := re.FindStringIndex(logs)
	if line == nil {
		t.Fatalf("no expired line:\n%s", logs)
	}
	if removed := strings.Index(logs, "msg=removed queue_id="+id); removed < line[1] {
		t.Errorf("removed before the expired line:\n%s", logs)
	}
}
