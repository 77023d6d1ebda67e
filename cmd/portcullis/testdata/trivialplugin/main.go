// Command trivialplugin is the smallest data-phase stage, for the end-to-end
// tests and benchmarks of cmd/portcullis: it answers "pass" at once, without
// reading the message, so that what is measured is the cost of a stage call
// through the host, not the stage's own work.
//
// For fault tests it can hang: config {hang_subject: MARK, hang: 1h} makes
// a message whose Subject contains MARK sleep for hang, ignoring the call's
// context, as a plugin stuck in a loop or a blocked read would.
package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
)

func main() { sdk.Serve(&trivial{}) }

type trivial struct {
	hangSubject string
	hang        time.Duration
}

var _ sdk.Stage = (*trivial)(nil)

func (*trivial) Info() sdk.Info {
	return sdk.Info{Name: "trivial", Version: "1.0.0", Phases: []sdk.Phase{sdk.PhaseData}}
}

func (s *trivial) Configure(_ context.Context, _ sdk.Env, cfg map[string]any) error {
	s.hangSubject, s.hang = "", time.Hour
	for k, v := range cfg {
		str, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s must be a string", k)
		}
		switch k {
		case "hang_subject":
			s.hangSubject = str
		case "hang":
			d, err := time.ParseDuration(str)
			if err != nil {
				return fmt.Errorf("hang: %v", err)
			}
			s.hang = d
		default:
			return fmt.Errorf("unknown config key %q (known: hang_subject, hang)", k)
		}
	}
	return nil
}

func (s *trivial) Check(_ context.Context, req *sdk.Request) (*sdk.Result, error) {
	if s.hangSubject != "" && req.Message != nil && strings.Contains(req.Message.Get("Subject"), s.hangSubject) {
		time.Sleep(s.hang) // deliberately deaf to the context: a hung plugin
	}
	return &sdk.Result{Verdict: sdk.VerdictPass}, nil
}
