package msgauth

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/plugintest"
)

// readAll is the no-stage baseline: a data-phase stage that only reads the
// message, as every content stage at least does.
type readAll struct{}

func (readAll) Info() sdk.Info { return sdk.Info{Name: "read", Phases: []sdk.Phase{sdk.PhaseData}} }
func (readAll) Configure(context.Context, sdk.Env, map[string]any) error {
	return nil
}
func (readAll) Check(_ context.Context, req *sdk.Request) (*sdk.Result, error) {
	r, err := req.Message.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	_, err = io.Copy(io.Discard, r)
	return &sdk.Result{Verdict: sdk.VerdictNone}, err
}

// BenchmarkMsgauth is the stage's cost per message over the plugin
// protocol, with DNS answered by the in-process server (SPF for MAIL FROM
// and HELO, one RSA 2048 DKIM signature, DMARC), beside a stage that only
// reads the message, in the same run.
func BenchmarkMsgauth(b *testing.B) {
	srv := dmarcZone(b)
	rk, ek := keys(b)
	msgs := map[string]string{
		"rsa":     sign(b, message("a@example.test"), "example.test", "rsa", rk, time.Time{}),
		"ed25519": sign(b, message("a@mail.strict.test"), "mail.strict.test", "ed", ek, time.Time{}),
	}
	env := sdk.Env{StageName: "s", Hostname: authservID, DNSServers: []string{srv.Addr}}
	run := func(b *testing.B, stage sdk.Stage, raw string) {
		c := plugintest.Start(b, stage)
		if err := c.Configure(env, nil); err != nil {
			b.Fatal(err)
		}
		req := dataReq(b, raw, "h.example.test", "b@example.test")
		req.Message = plugintest.FileMessage(b, []byte(raw))
		for b.Loop() {
			if _, err := c.Check(context.Background(), req); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("baseline-read-only", func(b *testing.B) { run(b, readAll{}, msgs["rsa"]) })
	b.Run("msgauth-rsa", func(b *testing.B) { run(b, New(), msgs["rsa"]) })
	b.Run("msgauth-ed25519", func(b *testing.B) { run(b, New(), msgs["ed25519"]) })
}
