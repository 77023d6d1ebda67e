// Command plugin-hello is an example third-party Portcullis plugin. It
// imports only package sdk of Portcullis, builds with
// `go build ./examples/plugin-hello`, and is named by path in a rule file
// (see rules.yaml here).
//
// At the data phase it reads the whole message through sdk.Message.Open
// and reports facts a rule can act on: a Subject containing "[reject-me]"
// gives verdict fail and tag hello:reject, "[tag-me]" tag hello:tag,
// "[quarantine-me]" tag hello:quarantine; attrs carry the greeting and the
// body size; every message gets an X-Hello header with the greeting.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"strconv"
	"strings"

	"github.com/portcullis-mta/portcullis/sdk"
)

func main() { sdk.Serve(&hello{}) }

type hello struct {
	greeting string
}

var _ sdk.Stage = (*hello)(nil)

func (h *hello) Info() sdk.Info {
	return sdk.Info{Name: "hello", Version: "1.0.0", Phases: []sdk.Phase{sdk.PhaseData}}
}

// Configure accepts one key, greeting: a non-empty single-line string
// (default "hello"). Anything else is refused, so a typo fails at load.
func (h *hello) Configure(_ context.Context, _ sdk.Env, cfg map[string]any) error {
	g := "hello"
	for k, v := range cfg {
		if k != "greeting" {
			return fmt.Errorf("unknown config key %q (known: greeting)", k)
		}
		s, ok := v.(string)
		if !ok || strings.TrimSpace(s) == "" || strings.ContainsAny(s, "\r\n") {
			return errors.New("greeting must be a non-empty single-line string")
		}
		g = s
	}
	h.greeting = g
	return nil
}

var markers = []struct{ mark, tag string }{
	{"[reject-me]", "hello:reject"},
	{"[tag-me]", "hello:tag"},
	{"[quarantine-me]", "hello:quarantine"},
}

func (h *hello) Check(_ context.Context, req *sdk.Request) (*sdk.Result, error) {
	r, err := req.Message.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	msg, err := mail.ReadMessage(r)
	if err != nil {
		return &sdk.Result{Verdict: sdk.VerdictNeutral, Reason: "unparsable message: " + err.Error()}, nil
	}
	body, err := io.Copy(io.Discard, msg.Body)
	if err != nil {
		return nil, err
	}
	subject := msg.Header.Get("Subject")
	if dec, err := new(mime.WordDecoder).DecodeHeader(subject); err == nil {
		subject = dec
	}
	res := &sdk.Result{
		Verdict: sdk.VerdictPass,
		Attrs:   map[string]string{"greeting": h.greeting, "body_bytes": strconv.FormatInt(body, 10)},
		Headers: []sdk.HeaderEdit{{Op: sdk.HeaderAdd, Name: "X-Hello", Value: h.greeting}},
	}
	for _, m := range markers {
		if strings.Contains(subject, m.mark) {
			res.Tags = append(res.Tags, m.tag)
		}
	}
	if strings.Contains(subject, "[reject-me]") {
		res.Verdict, res.Reason = sdk.VerdictFail, "the subject asks to be rejected"
	}
	return res, nil
}
