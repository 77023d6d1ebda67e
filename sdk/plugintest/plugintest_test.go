package plugintest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/japanese"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/hostrpc"
	"github.com/portcullis-mta/portcullis/sdk/plugintest"
)

// echoStage reports back what it received, so a test can see the wire kept it.
type echoStage struct {
	cfg map[string]any
	env sdk.Env
}

func (s *echoStage) Info() sdk.Info {
	return sdk.Info{Name: "echo", Version: "1.2.3", Phases: []sdk.Phase{sdk.PhaseConnect, sdk.PhaseData}}
}

func (s *echoStage) Configure(_ context.Context, env sdk.Env, cfg map[string]any) error {
	if v, ok := cfg["fail"]; ok {
		return fmt.Errorf("bad config: %v", v)
	}
	if _, ok := cfg["panic"]; ok {
		panic("configure panicked on purpose")
	}
	s.env, s.cfg = env, cfg
	return nil
}

func (s *echoStage) Check(_ context.Context, req *sdk.Request) (*sdk.Result, error) {
	switch req.Conn.HELO {
	case "error":
		return nil, errors.New("stage failed on purpose")
	case "panic":
		panic("stage panicked on purpose")
	case "nil":
		return nil, nil
	case "huge": // over sdk.MaxResultBytes: the gateway refuses it, and so must the harness
		return &sdk.Result{Verdict: sdk.VerdictPass, Attrs: map[string]string{"a": strings.Repeat("x", 2<<20)}}, nil
	}
	res := &sdk.Result{Verdict: sdk.VerdictPass, Score: 1.5, Tags: []string{"a", "b"},
		Attrs: map[string]string{
			"phase": string(req.Phase), "ip": req.Conn.IP, "port": fmt.Sprint(req.Conn.Port),
			"from": req.Envelope.From, "rcpts": strings.Join(req.Envelope.Rcpts, ","),
			"cfg": fmt.Sprintf("%#v", s.cfg), "stage": s.env.StageName,
		}}
	if m := req.Message; m != nil {
		r, err := m.Open()
		if err != nil {
			return nil, err
		}
		defer r.Close()
		h := sha256.New()
		n, err := io.Copy(h, r)
		if err != nil {
			return nil, err
		}
		res.Attrs["sha256"] = fmt.Sprintf("%x", h.Sum(nil))
		res.Attrs["read"] = fmt.Sprint(n)
		res.Attrs["subject"] = m.Get("subject")
		res.Headers = []sdk.HeaderEdit{{Op: sdk.HeaderAdd, Name: "X-Echo", Value: "yes"}}
	}
	return res, nil
}

func TestInfoAndConfigure(t *testing.T) {
	c := plugintest.Start(t, &echoStage{})
	info, err := c.Info()
	if err != nil {
		t.Fatal(err)
	}
	want := sdk.Info{Name: "echo", Version: "1.2.3", Phases: []sdk.Phase{sdk.PhaseConnect, sdk.PhaseData}}
	if !reflect.DeepEqual(info, want) {
		t.Errorf("Info = %+v, want %+v", info, want)
	}
	err = c.Configure(sdk.Env{StageName: "e"}, map[string]any{"fail": "yes"})
	if err == nil || !strings.Contains(err.Error(), "bad config: yes") {
		t.Errorf("Configure error = %v, want the stage's message", err)
	}
	cfg := map[string]any{"n": 5, "f": 0.5, "s": "x", "l": []any{1, "y"}, "m": map[string]any{"k": true}}
	if err := c.Configure(sdk.Env{StageName: "e"}, cfg); err != nil {
		t.Fatal(err)
	}
	res, err := c.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseConnect})
	if err != nil {
		t.Fatal(err)
	}
	// Numbers keep the types YAML gave them: whole numbers int, others float64.
	if got, want := res.Attrs["cfg"], fmt.Sprintf("%#v", cfg); got != want {
		t.Errorf("config seen by the stage = %s, want %s", got, want)
	}
	if res.Attrs["stage"] != "e" {
		t.Errorf("env stage name = %q", res.Attrs["stage"])
	}
}

func TestCheckRoundTrip(t *testing.T) {
	c := plugintest.Start(t, &echoStage{})
	req := &sdk.Request{Phase: sdk.PhaseConnect, SessionID: "s1",
		Conn:     sdk.Conn{IP: "192.0.2.1", Port: 41000, HELO: "mx.example"},
		Envelope: sdk.Envelope{From: "a@example.test", Rcpts: []string{"b@example.test", "c@example.test"}}}
	res, err := c.Check(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"phase": "connect", "ip": "192.0.2.1", "port": "41000",
		"from": "a@example.test", "rcpts": "b@example.test,c@example.test"}
	for k, v := range want {
		if res.Attrs[k] != v {
			t.Errorf("attr %s = %q, want %q", k, res.Attrs[k], v)
		}
	}
	if res.Verdict != sdk.VerdictPass || res.Score != 1.5 || !reflect.DeepEqual(res.Tags, []string{"a", "b"}) {
		t.Errorf("result = %+v", res)
	}
}

func TestCheckErrors(t *testing.T) {
	c := plugintest.Start(t, &echoStage{})
	tests := []struct {
		helo    string
		wantErr string
		verdict sdk.Verdict
	}{
		{helo: "error", wantErr: "stage failed on purpose"},
		{helo: "panic", wantErr: "stage panicked on purpose"},
		{helo: "nil", verdict: sdk.VerdictNone},
		{helo: "huge", wantErr: "over 1048576"},
	}
	for _, tt := range tests {
		t.Run(tt.helo, func(t *testing.T) {
			res, err := c.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseConnect, Conn: sdk.Conn{HELO: tt.helo}})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || res.Verdict != tt.verdict {
				t.Fatalf("got %+v, %v; want verdict %s", res, err, tt.verdict)
			}
		})
	}
	// The panic did not kill the server: calls still work.
	if _, err := c.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseConnect}); err != nil {
		t.Fatalf("after panic: %v", err)
	}
}

// A panic in Configure is that call's error (a reload refused, the old
// config kept), not the end of the plugin process.
func TestConfigurePanic(t *testing.T) {
	c := plugintest.Start(t, &echoStage{})
	err := c.Configure(sdk.Env{StageName: "e"}, map[string]any{"panic": true})
	if err == nil || !strings.Contains(err.Error(), "stage panicked in Configure: configure panicked on purpose") {
		t.Fatalf("Configure = %v", err)
	}
	if err := c.Configure(sdk.Env{StageName: "e"}, map[string]any{}); err != nil {
		t.Fatalf("after panic: %v", err)
	}
	if _, err := c.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseConnect}); err != nil {
		t.Fatalf("after panic: %v", err)
	}
}

// bigMessage is over gRPC's 4 MiB default message size.
func bigMessage() []byte {
	var b bytes.Buffer
	b.WriteString("From: a@example.test\r\nSubject: big\r\n one\r\n\r\n")
	line := strings.Repeat("0123456789", 7) + "\r\n"
	for b.Len() < 5<<20 {
		b.WriteString(line)
	}
	return b.Bytes()
}

func TestDataMessages(t *testing.T) {
	c := plugintest.Start(t, &echoStage{})
	small := []byte("Subject: hi\r\n\r\nbody\r\n")
	big := bigMessage()
	tests := []struct {
		name string
		raw  []byte
		msg  func([]byte) *sdk.Message
	}{
		{"small in memory", small, plugintest.Message},
		{"small in file", small, func(b []byte) *sdk.Message { return plugintest.FileMessage(t, b) }},
		{"big in memory", big, plugintest.Message},
		{"big in file", big, func(b []byte) *sdk.Message { return plugintest.FileMessage(t, b) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseData, Message: tt.msg(tt.raw)})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := res.Attrs["sha256"], fmt.Sprintf("%x", sha256.Sum256(tt.raw)); got != want {
				t.Errorf("stage read %s bytes hashing %s, want %d bytes hashing %s", res.Attrs["read"], got, len(tt.raw), want)
			}
			wantEdits := []sdk.HeaderEdit{{Op: sdk.HeaderAdd, Name: "X-Echo", Value: "yes"}}
			if !reflect.DeepEqual(res.Headers, wantEdits) {
				t.Errorf("header edits = %+v", res.Headers)
			}
		})
	}
}

// A raw Shift_JIS or EUC-JP subject (old Japanese mailers write them
// unencoded) reaches a stage decoded, in a test as from the gateway, not
// as U+FFFD.
func TestRawJapaneseSubject(t *testing.T) {
	c := plugintest.Start(t, &echoStage{})
	for _, enc := range []struct {
		name string
		enc  encoding.Encoding
	}{{"Shift_JIS", japanese.ShiftJIS}, {"EUC-JP", japanese.EUCJP}} {
		const subject = "請求書のお知らせ"
		raw, err := enc.enc.NewEncoder().String(subject)
		if err != nil {
			t.Fatal(err)
		}
		msg := []byte("From: a@example.org\r\nSubject: " + raw + "\r\n\r\nbody\r\n")
		for name, m := range map[string]*sdk.Message{"in memory": plugintest.Message(msg), "in file": plugintest.FileMessage(t, msg)} {
			res, err := c.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseData, Message: m})
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Attrs["subject"]; got != subject {
				t.Errorf("%s %s: stage got subject %q, want %q", enc.name, name, got, subject)
			}
		}
	}
}

// logStage logs through a logger built as the package documentation of
// sdk says a test should build one.
type logStage struct{ log *slog.Logger }

func (logStage) Info() sdk.Info {
	return sdk.Info{Name: "log", Version: "1", Phases: []sdk.Phase{sdk.PhaseData}}
}

func (logStage) Configure(context.Context, sdk.Env, map[string]any) error { return nil }

func (s logStage) Check(ctx context.Context, _ *sdk.Request) (*sdk.Result, error) {
	s.log.InfoContext(ctx, "checked")
	return &sdk.Result{}, nil
}

// The IDs of a call reach a stage's context over the protocol, so that a
// stage's log lines in a test carry them as they do in the gateway.
func TestLogLinesCarryTheCall(t *testing.T) {
	var buf bytes.Buffer
	c := plugintest.Start(t, logStage{log: slog.New(sdk.RequestLogHandler(
		slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}})))})
	req := &sdk.Request{Phase: sdk.PhaseData, SessionID: "s9", QueueID: "Q9", Message: plugintest.Message([]byte("A: b\r\n\r\n"))}
	if _, err := c.Check(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), "level=INFO msg=checked session=s9 queue_id=Q9\n"; got != want {
		t.Errorf("log = %q, want %q", got, want)
	}
}

// TestInvalidUTF8CrossesTheWire: protobuf strings must be UTF-8, and one
// raw byte in a client's HELO, an address, a header or a stage's own
// result used to fail the whole call (every stage erred). The wire now
// carries them with U+FFFD in place of each run of bad bytes.
func TestInvalidUTF8CrossesTheWire(t *testing.T) {
	c := plugintest.Start(t, &echoStage{})
	if err := c.Configure(sdk.Env{StageName: "echo"}, nil); err != nil {
		t.Fatal(err)
	}
	raw := []byte("Subject: \x90\xbf\x8b\x81\r\n\r\nbody\r\n")
	req := &sdk.Request{Phase: sdk.PhaseData, Conn: sdk.Conn{IP: "192.0.2.1", HELO: "h\xffst"},
		Envelope: sdk.Envelope{From: "a\xfe@example.org", Rcpts: []string{"b@example.test", "c\xff@example.test"}},
		Message:  sdk.NewBytesMessage([]sdk.HeaderField{{Name: "Subject", Value: "\x90\xbf\x8b\x81"}}, raw)}
	res, err := c.Check(context.Background(), req)
	if err != nil {
		t.Fatalf("Check with 8-bit fields: %v", err)
	}
	if res.Attrs["from"] != "a\uFFFD@example.org" || res.Attrs["rcpts"] != "b@example.test,c\uFFFD@example.test" ||
		res.Attrs["subject"] != "\uFFFD" {
		t.Errorf("attrs %q", res.Attrs)
	}
}

// checkingStage is an echoStage that can check a config without applying
// it (sdk.ConfigChecker), and records what the check was given.
type checkingStage struct {
	echoStage
	checkedEnv sdk.Env
	checkedCfg map[string]any
}

func (s *checkingStage) CheckConfig(_ context.Context, env sdk.Env, cfg map[string]any) error {
	if _, ok := cfg["panic"]; ok {
		panic("check panicked on purpose")
	}
	s.checkedEnv, s.checkedCfg = env, cfg
	if v, ok := cfg["fail"]; ok {
		return fmt.Errorf("bad config: %v", v)
	}
	return nil
}

// CheckConfig crosses the wire with the env and the config as Configure
// gets them; the stage's refusal, and a panic, come back as errors; a
// stage that cannot check configs gives hostrpc.ErrNoConfigCheck, and
// nothing is applied in any case.
func TestCheckConfig(t *testing.T) {
	st := &checkingStage{}
	c := plugintest.Start(t, st)
	env := sdk.Env{StageName: "e", Hostname: "mx.test", ConfigDir: "/etc/p", DNSServers: []string{"127.0.0.1:53"}}
	cfg := map[string]any{"n": 5, "l": []any{"y"}}
	if err := c.CheckConfig(env, cfg); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(st.checkedEnv, env) || !reflect.DeepEqual(st.checkedCfg, cfg) {
		t.Errorf("CheckConfig got env %+v cfg %#v, want %+v %#v", st.checkedEnv, st.checkedCfg, env, cfg)
	}
	if err := c.CheckConfig(env, map[string]any{"fail": "yes"}); err == nil || err.Error() != "bad config: yes" {
		t.Errorf("CheckConfig refusal = %v, want the stage's words", err)
	}
	if err := c.CheckConfig(env, map[string]any{"panic": true}); err == nil ||
		!strings.Contains(err.Error(), "stage panicked in CheckConfig: check panicked on purpose") {
		t.Errorf("CheckConfig panic = %v", err)
	}
	if st.cfg != nil {
		t.Errorf("CheckConfig applied a config: %#v", st.cfg)
	}
	err := plugintest.Start(t, &echoStage{}).CheckConfig(env, cfg)
	if !errors.Is(err, hostrpc.ErrNoConfigCheck) {
		t.Errorf("CheckConfig on a stage without it = %v, want ErrNoConfigCheck", err)
	}
}

// laxStage's CheckConfig accepts every config, also the ones its
// Configure refuses: `portcullis check` would say ok, `run` fail.
type laxStage struct{ echoStage }

func (*laxStage) CheckConfig(context.Context, sdk.Env, map[string]any) error { return nil }

// CheckConfigs passes a stage whose CheckConfig and Configure agree, and
// fails one whose CheckConfig accepts what its Configure refuses (run in a
// child process: the failure is the point).
func TestCheckConfigsConfigures(t *testing.T) {
	if os.Getenv("PLUGINTEST_LAX_CHILD") == "1" {
		plugintest.CheckConfigs(t, func() sdk.Stage { return &laxStage{} }, t.TempDir(), []plugintest.ConfigCase{
			plugintest.Case("accepted by CheckConfig only", nil, map[string]any{"fail": "yes"}, "")})
		return
	}
	plugintest.CheckConfigs(t, func() sdk.Stage { return &checkingStage{} }, t.TempDir(), []plugintest.ConfigCase{
		plugintest.Case("accepted", nil, map[string]any{"n": 1}, ""),
		plugintest.Case("refused", nil, map[string]any{"fail": "yes"}, "bad config: yes"),
	})
	cmd := exec.Command(os.Args[0], "-test.run=^TestCheckConfigsConfigures$")
	cmd.Env = append(os.Environ(), "PLUGINTEST_LAX_CHILD=1")
	out, err := cmd.CombinedOutput()
	if want := "CheckConfig accepts the config, Configure refuses it: bad config: yes"; err == nil || !strings.Contains(string(out), want) {
		t.Errorf("CheckConfigs on a lax CheckConfig: %v, output lacks %q:\n%s", err, want, out)
	}
}
