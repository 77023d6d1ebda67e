// Package faultstage is a stage that misbehaves on request, for the host's
// fault tests and benchmarks: the HELO of a request says what to do.
package faultstage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
)

// Stage is the fault-injecting stage.
type Stage struct {
	tag string
}

var _ sdk.Stage = (*Stage)(nil)

// Info asks for the connect and data phases.
func (s *Stage) Info() sdk.Info {
	return sdk.Info{Name: "fault", Version: "1", Phases: []sdk.Phase{sdk.PhaseConnect, sdk.PhaseData}}
}

// Configure accepts {tag: string} and refuses {refuse: reason}. With
// {pidfile: path} it first writes its process ID there; with
// {configure_sleep: duration} it then sleeps that long, ignoring ctx, as a
// Configure that overruns the host's deadline would, and applies the
// config afterwards.
func (s *Stage) Configure(_ context.Context, _ sdk.Env, cfg map[string]any) error {
	if r, ok := cfg["refuse"]; ok {
		return fmt.Errorf("refused: %v", r)
	}
	if f, ok := cfg["pidfile"].(string); ok {
		if err := os.WriteFile(f, []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
			return err
		}
	}
	if v, ok := cfg["configure_sleep"].(string); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("configure_sleep: %w", err)
		}
		time.Sleep(d)
	}
	s.tag, _ = cfg["tag"].(string)
	return nil
}

// Check: HELO "hang" blocks forever, ignoring ctx, as a wedged plugin
// would; "slow" answers after a second; "exit" ends the process, and
// "escape" and "helper" end it leaving a helper behind; "error"
// returns an error; "log" logs through slog and writes a raw line to
// stderr; "badlog" writes lines go-plugin's parser used to choke on; "huge" passes with an 8 MiB attribute. Anything else passes, with the process ID and config tag as attributes and, at the
// data phase, the number of message bytes read.
func (s *Stage) Check(ctx context.Context, req *sdk.Request) (*sdk.Result, error) {
	switch req.Conn.HELO {
	case "hang":
		select {}
	case "slow":
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	case "exit":
		os.Exit(3)
	case "escape", "helper":
		// Leave a helper behind, then exit. "escape": holding the
		// process's real stdout and stderr (fds 1 and 2, go-plugin's
		// pipes to the host) in a session of its own, out of the process
		// group, as a daemonizing helper does; "helper": in the group,
		// its output elsewhere, so the plugin is reaped at once. It
		// writes its PID to the path Envelope.From names and sleeps 30 s.
		cmd := exec.Command("sleep", "30")
		if req.Conn.HELO == "escape" {
			cmd.Stdout, cmd.Stderr = os.NewFile(1, "stdout"), os.NewFile(2, "stderr")
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		}
		if err := cmd.Start(); err == nil {
			_ = os.WriteFile(req.Envelope.From, []byte(strconv.Itoa(cmd.Process.Pid)), 0o600)
		}
		os.Exit(3)
	case "error":
		return nil, errors.New("failed on request")
	case "log":
		slog.Warn("structured line", "k", "v")
		fmt.Fprintln(os.Stderr, "raw stderr line")
	case "badlog":
		badLog(ctx)
	}
	res := &sdk.Result{Verdict: sdk.VerdictPass,
		Attrs: map[string]string{"pid": strconv.Itoa(os.Getpid()), "tag": s.tag}}
	if req.Conn.HELO == "huge" {
		res.Attrs["huge"] = strings.Repeat("x", 8<<20)
	}
	if req.Message != nil {
		r, err := req.Message.Open()
		if err != nil {
			return nil, err
		}
		defer r.Close()
		n, err := io.Copy(io.Discard, r)
		if err != nil {
			return nil, err
		}
		res.Attrs["read"] = strconv.FormatInt(n, 10)
	}
	return res, nil
}

// badLog writes, to the process's own stderr (fd 2, the pipe go-plugin
// parses hclog JSON from) and through slog, lines that crashed the host
// (go-plugin asserted @message, @level and @timestamp were strings), were
// dropped (a @timestamp it cannot parse, a level it does not know), lost
// (over its 64 KiB line buffer) or mangled (a "timestamp" attribute).
func badLog(ctx context.Context) {
	fd2 := os.NewFile(2, "stderr")
	ts := time.Now().Format("2006-01-02T15:04:05.000000Z07:00")
	for _, l := range []string{
		`{"@level":"info","@message":5,"x":1}`,
		`{"@level":1,"@message":"numeric level"}`,
		`{"@level":"error","@message":"bad timestamp","@timestamp":"yesterday"}`,
		`{"@level":"error","@message":"numeric timestamp","@timestamp":7}`,
		`{"@level":"warn","@message":"own timestamp","@timestamp":"` + ts + `","timestamp":"t1"}`,
		`{"@level":"warn","@message":"big line","@timestamp":"` + ts + `","body":"` + strings.Repeat("b", 100<<10) + `"}`,
		` {"@level":"info","@message":6}`,
		`  {"@level":"info","@message":"spaced"}`,
		"\t{\"@level\":\"info\",\"@message\":7}",
		`{"@level":"WARNING","@message":"disk almost full"}`,
		`{"@level":"err","@message":"cannot open db"}`,
		`{"@level":"INFO","@message":"upper case info"}`,
	} {
		fmt.Fprintln(fd2, l)
	}
	slog.WarnContext(ctx, "at keys", "@level", 1, "@message", "m", "@timestamp", "yesterday", "timestamp", "t2")
	slog.WarnContext(ctx, "big slog line", "body", strings.Repeat("s", 100<<10))
	fmt.Fprintln(fd2, "after the bad lines")
}
