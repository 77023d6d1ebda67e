package daemon

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/pipeline"
	"github.com/portcullis-mta/portcullis/sdk"
	dnstest "github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"
)

// spamTagger marks every message learn:spam, as a learn_spam rule would.
type spamTagger struct{}

func (spamTagger) Wants(p sdk.Phase) bool { return p == sdk.PhaseData }

func (spamTagger) Run(context.Context, *sdk.Request, map[string]*sdk.Result) (*pipeline.Decision, error) {
	return &pipeline.Decision{Action: pipeline.Continue, Tags: []string{"learn:spam"}}, nil
}

// TestLearnReachesSMTP checks that Daemon.Learn is what the SMTP server
// calls, before and after a reload, with the committed message.
func TestLearnReachesSMTP(t *testing.T) {
	dns := dnstest.New(t, "2.0.0.127.in-addr.arpa. 300 IN PTR client.example.org.",
		"client.example.org. 300 IN A 127.0.0.2")
	path := writeConfig(t, t.TempDir(), "mx.example.test", dns.Addr)
	type call struct {
		spam bool
		id   string
		body string
	}
	calls := make(chan call, 4)
	d, _ := startLoaded(t, path, config.Log{Format: "text", Level: "debug"}, func(d *Daemon) {
		d.Pipeline = func(*config.Config) (pipeline.Runner, func(), error) { return spamTagger{}, nil, nil }
		d.Learn = func(_ context.Context, spam bool, id string, open func() (io.ReadCloser, error)) {
			c := call{spam: spam, id: id}
			if rc, err := open(); err == nil {
				b, _ := io.ReadAll(rc)
				rc.Close()
				c.body = string(b)
			}
			calls <- c
		}
	})
	for _, step := range []string{"start", "reload"} {
		t.Run(step, func(t *testing.T) {
			if step == "reload" {
				if err := d.Reload(path); err != nil {
					t.Fatal(err)
				}
			}
			id, err := send(t, d, 2, nil, "u@example.test")
			if err != nil {
				t.Fatal(err)
			}
			c := <-calls
			if !c.spam || c.id != id || !strings.Contains(c.body, "\r\n\r\nhi\r\n") {
				t.Fatalf("learn call %+v; want spam for %s", c, id)
			}
		})
	}
}
