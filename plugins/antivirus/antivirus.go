// Package antivirus is an addon content stage that has the whole message
// scanned by a virus scanner: clamd over a unix or TCP socket (the INSTREAM
// command of clamd(8)), or an external command given a temporary file.
//
// The message is sent as received (header and MIME body): clamd decodes
// MIME, base64 and archives itself.
//
// # Config
//
// Exactly one of clamd and command:
//
//	clamd: /run/clamav/clamd.ctl      # unix socket path, "unix:PATH" or "tcp:HOST:PORT" / "HOST:PORT"
//	command: [/usr/bin/scanner, --no-summary, "{file}"]   # {file} is replaced by the temporary file
//	                                  # the program: a bare name from PATH, a relative path from the config's directory
//	temp_dir: /var/tmp                # for command: where the temporary file goes (default: the system's)
//	timeout: 30s                      # per scan, within the stage's own timeout
//	chunk_size: 65536                 # INSTREAM chunk size
//
// A command exits 0 for clean and 1 for infected (clamscan's and most
// scanners' convention); its output names the virus ("NAME FOUND" is
// recognised, else the first line). Any other exit status is an error.
//
// # Result
//
// Clean: verdict pass. Infected: verdict fail, tag "virus", attrs.virus the
// name the scanner gave, reason "infected: NAME". A scan that fails or times
// out (clamd down, "INSTREAM size limit exceeded", the command crashing)
// returns an error, which the host records as verdict error and handles by
// the stage's on_error: tempfail in the examples, so nothing unscanned is
// accepted.
package antivirus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
)

// scanner scans one message; virus is "" when it is clean.
type scanner interface {
	scan(ctx context.Context, r io.Reader) (virus string, err error)
}

// Stage is the antivirus stage.
type Stage struct {
	dial func(ctx context.Context, network, addr string) (net.Conn, error) // injected for tests
	// cur is the configured scanner, swapped whole by Configure: the host
	// reconfigures a running plugin on reload while scans are in flight.
	cur atomic.Pointer[setup]
}

// setup is one configuration's scanner and its timeout.
type setup struct {
	scanner scanner
	timeout time.Duration
}

var (
	_ sdk.Stage         = (*Stage)(nil)
	_ sdk.ConfigChecker = (*Stage)(nil)
)

// New returns an antivirus stage.
func New() sdk.Stage {
	d := &net.Dialer{}
	return &Stage{dial: d.DialContext}
}

// Info implements sdk.Stage.
func (s *Stage) Info() sdk.Info {
	return sdk.Info{Name: "antivirus", Version: "1.0.0", Phases: []sdk.Phase{sdk.PhaseData}}
}

// Configure implements sdk.Stage.
func (s *Stage) Configure(_ context.Context, env sdk.Env, raw map[string]any) error {
	cfg, err := parseConfig(raw, env.ConfigDir)
	if err != nil {
		return err
	}
	st := &setup{timeout: cfg.Timeout}
	if cfg.Clamd != "" {
		network, addr := clamdAddress(cfg.Clamd, env.ConfigDir)
		st.scanner = &clamd{network: network, addr: addr, chunk: cfg.ChunkSize, dial: s.dial}
	} else {
		st.scanner = &command{argv: cfg.Command, tempDir: cfg.TempDir}
		sweepTemp(cfg.TempDir)
	}
	s.cur.Store(st)
	return nil
}

// CheckConfig implements sdk.ConfigChecker: the config only; clamd is
// not asked and the command not run (a scanner that is down at check
// time may be up at run, and the other way round).
func (s *Stage) CheckConfig(_ context.Context, env sdk.Env, raw map[string]any) error {
	_, err := parseConfig(raw, env.ConfigDir)
	return err
}

// ErrScan marks a failed scan (as opposed to a found virus).
var ErrScan = errors.New("antivirus: scan failed")

// Check implements sdk.Stage.
func (s *Stage) Check(ctx context.Context, req *sdk.Request) (*sdk.Result, error) {
	st := s.cur.Load()
	if st == nil {
		return nil, fmt.Errorf("antivirus: not configured")
	}
	if req.Message == nil {
		return &sdk.Result{Verdict: sdk.VerdictNone}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, st.timeout)
	defer cancel()
	rc, err := req.Message.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: open message: %v", ErrScan, err)
	}
	defer rc.Close()
	virus, err := st.scanner.scan(ctx, rc)
	if err != nil {
		return nil, err
	}
	if virus == "" {
		return &sdk.Result{Verdict: sdk.VerdictPass}, nil
	}
	return &sdk.Result{Verdict: sdk.VerdictFail, Score: 1, Tags: []string{"virus"},
		Attrs: map[string]string{"virus": virus}, Reason: "infected: " + virus}, nil
}
