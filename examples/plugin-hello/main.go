// Command plugin-hello is an example third-party Portcullis plugin. It
// imports only packages under sdk/ of Portcullis, builds with
// `go build ./examples/plugin-hello`, and is named by path in a rule file
// (see rules.yaml here).
//
// At the data phase it reads the whole message through sdk.Message.Open
// and reports facts a rule can act on: a Subject (decoded with sdk/mime,
// so ISO-2022-JP and Shift_JIS subjects work too) containing "[reject-me]"
// gives verdict fail and tag hello:reject, "[tag-me]" tag hello:tag,
// "[quarantine-me]" tag hello:quarantine; attrs carry the greeting and the
// body size; every message gets an X-Hello header with the greeting.
package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/mail"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/cfgval"
	sdkmime "github.com/portcullis-mta/portcullis/sdk/mime"
)

func main() { sdk.Serve(&hello{}) }

// hello is shared by every session: the gateway calls Check concurrently,
// and Configure again at a reload while calls are in flight, so the config
// is swapped whole, atomically.
type hello struct {
	greeting atomic.Pointer[string]
}

var (
	_ sdk.Stage         = (*hello)(nil)
	_ sdk.ConfigChecker = (*hello)(nil)
)

func (h *hello) Info() sdk.Info {
	return sdk.Info{Name: "hello", Version: "1.0.0", Phases: []sdk.Phase{sdk.PhaseData}}
}

// Configure accepts one key, greeting: a non-empty single-line string
// (default "hello"). Anything else is refused, so a typo fails at load; a refused
// config leaves the one in force untouched.
// Errors start with the key (sdk/cfgval), as the gateway's own stages' do.
func (h *hello) Configure(_ context.Context, _ sdk.Env, cfg map[string]any) error {
	g, err := parseConfig(cfg)
	if err != nil {
		return err
	}
	h.greeting.Store(&g)
	return nil
}

// CheckConfig validates a config as Configure does, applying nothing
// (sdk.ConfigChecker): `portcullis check` calls it, so a typo is reported
// before `run` or a reload meets it.
func (h *hello) CheckConfig(_ context.Context, _ sdk.Env, cfg map[string]any) error {
	_, err := parseConfig(cfg)
	return err
}

// parseConfig returns the greeting a config asks for.
func parseConfig(cfg map[string]any) (string, error) {
	g := "hello"
	err := cfgval.Each(cfg, func(k string, v any) error {
		if k != "greeting" {
			return cfgval.UnknownKey(k, []string{"greeting"})
		}
		s, err := cfgval.Key(k).String(v)
		if err != nil {
			return err
		}
		if strings.TrimSpace(s) == "" || strings.ContainsAny(s, "\r\n") {
			return errors.New("greeting: want a non-empty single-line string")
		}
		g = s
		return nil
	})
	return g, err
}

var markers = []struct{ mark, tag string }{
	{"[reject-me]", "hello:reject"},
	{"[tag-me]", "hello:tag"},
	{"[quarantine-me]", "hello:quarantine"},
}

func (h *hello) Check(ctx context.Context, req *sdk.Request) (*sdk.Result, error) {
	greeting := "hello"
	if g := h.greeting.Load(); g != nil {
		greeting = *g
	}
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
	// The standard library's mime.WordDecoder knows only UTF-8 and
	// ISO-8859-1 and fails on ISO-2022-JP; sdk/mime decodes what mail
	// really carries, lying charset labels included.
	subject := sdkmime.DecodeHeader(msg.Header.Get("Subject"))
	res := &sdk.Result{
		Verdict: sdk.VerdictPass,
		Attrs:   map[string]string{"greeting": greeting, "body_bytes": strconv.FormatInt(body, 10)},
		// The gateway folds a long value and RFC 2047-encodes one that is
		// not ASCII, so plain UTF-8 would do; an already encoded value
		// (QEncoding leaves ASCII as it is) goes in as it is.
		Headers: []sdk.HeaderEdit{{Op: sdk.HeaderAdd, Name: "X-Hello", Value: mime.QEncoding.Encode("utf-8", greeting)}},
	}
	for _, m := range markers {
		if strings.Contains(subject, m.mark) {
			res.Tags = append(res.Tags, m.tag)
		}
	}
	if strings.Contains(subject, "[reject-me]") {
		res.Verdict, res.Reason = sdk.VerdictFail, "the subject asks to be rejected"
	}
	// With Check's context, the line carries the call's session and
	// queue_id in the gateway's log; the gateway adds stage=<name>.
	slog.DebugContext(ctx, "hello: checked", "subject", subject, "tags", res.Tags)
	return res, nil
}
