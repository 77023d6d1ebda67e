package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/pipeline"
	"github.com/portcullis-mta/portcullis/core/pluginhost"
	"github.com/portcullis-mta/portcullis/core/policy"
	"github.com/portcullis-mta/portcullis/rules"
	"github.com/portcullis-mta/portcullis/sdk"
)

func init() {
	register(&command{
		name:    "scan",
		summary: "run every stage and rule on one message offline; print the results and the action",
		run:     runScan,
	})
}

// listFlag is a repeatable string flag (--rcpt a --rcpt b).
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// scanOptions is the envelope and connection a scan pretends.
type scanOptions struct {
	ip         netip.Addr
	helo, from string
	rcpts      []string
	anyRcpt    bool // no --rcpt: the default recipient, which the relay policy does not judge
	json       bool
	msgPath    string
}

func runScan(args []string, stdout, stderr io.Writer) int {
	flags := newFlagSet("scan", stderr)
	path := addConfigFlag(flags)
	var o scanOptions
	var rcpts listFlag
	var ip string
	flags.StringVar(&ip, "ip", "192.0.2.1", "client `IP` address")
	flags.StringVar(&o.helo, "helo", "client.example", "HELO `NAME`")
	flags.StringVar(&o.from, "from", "", "envelope sender `ADDR` (default: the null sender <>)")
	flags.Var(&rcpts, "rcpt", "envelope recipient `ADDR` (repeat for several; default: postmaster@ the first non-wildcard relay.domains entry, else @hostname)")
	flags.BoolVar(&o.json, "json", false, "print JSON for machines")
	flags.Usage = func() {
		fmt.Fprintln(stderr, "usage: portcullis scan -c FILE [--ip IP] [--helo NAME] [--from ADDR] [--rcpt ADDR]... [--json] MSG.eml")
		fmt.Fprintln(stderr, "Scan judges the message as a session on the first listener would judge it (conn.listener is that")
		fmt.Fprintln(stderr, "listener's name), for a client that did not authenticate: relay.networks, relay.domains and")
		fmt.Fprintln(stderr, "relay.recipients refuse a --rcpt as they do at RCPT (the default recipient, where")
		fmt.Fprintln(stderr, "RCPT TO:<Postmaster> goes, is not judged). Options may also follow MSG.eml.")
		flags.PrintDefaults()
	}
	// Options may also follow the message, as admins type them and as the
	// other commands take them ("scan m.eml -c FILE").
	pos, st := parseInterleaved(flags, args)
	if st >= 0 {
		return st
	}
	switch {
	case len(pos) == 0:
		return scanUsage(stderr, flags, "missing MSG.eml")
	case len(pos) > 1:
		return scanUsage(stderr, flags, fmt.Sprintf("one MSG.eml at a time, got %d: %s", len(pos), strings.Join(pos, " ")))
	}
	o.msgPath, o.rcpts = pos[0], rcpts
	if err := o.envelope(ip); err != nil {
		fmt.Fprintf(stderr, "portcullis scan: %v\n", err)
		return exitUsage
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		printConfigError(stderr, err)
		return exitFailed
	}
	if len(o.rcpts) == 0 {
		o.rcpts, o.anyRcpt = []string{policy.Postmaster(cfg)}, true
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	report, err := scan(ctx, cfg, o, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	var probs rules.Problems
	switch {
	case errors.As(err, &probs):
		for _, p := range probs {
			fmt.Fprintln(stderr, p) // file:line:col: message, as check prints them
		}
		return exitFailed
	case err != nil:
		fmt.Fprintf(stderr, "portcullis scan: %v\n", err)
		return exitFailed
	}
	if o.json {
		err = report.writeJSON(stdout)
	} else {
		err = report.writeText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "portcullis scan: %v\n", err)
		return exitFailed
	}
	return exitOK
}

// scanUsage reports bad usage: what is wrong on one line, then the usage.
func scanUsage(stderr io.Writer, flags *flag.FlagSet, why string) int {
	fmt.Fprintf(stderr, "portcullis scan: %s\n", why)
	flags.Usage()
	return exitUsage
}

// envelope checks and normalises the pretended client and envelope as the
// session would have them: the address as the listener reports it (IPv4
// for a v4-mapped one, IPv6 in canonical form), addresses without their
// angle brackets ("" for the null sender <>).
func (o *scanOptions) envelope(ip string) error {
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]"))
	if err != nil {
		return fmt.Errorf("--ip %q: not an IP address", ip)
	}
	o.ip = a.Unmap().WithZone("")
	if strings.ContainsFunc(o.helo, func(r rune) bool { return r <= ' ' || r == 127 }) {
		return fmt.Errorf("--helo %q: want one word", o.helo)
	}
	if o.from, err = scanAddr("--from", o.from, true); err != nil {
		return err
	}
	for i, r := range o.rcpts {
		if o.rcpts[i], err = scanAddr("--rcpt", r, false); err != nil {
			return err
		}
	}
	return nil
}

// scanAddr is an address flag as go-smtp hands MAIL/RCPT arguments on.
func scanAddr(flag, a string, nullOK bool) (string, error) {
	a = strings.TrimSpace(a)
	if strings.HasPrefix(a, "<") && strings.HasSuffix(a, ">") {
		a = a[1 : len(a)-1]
	}
	switch {
	case a == "" && nullOK:
		return "", nil
	case strings.ContainsFunc(a, func(r rune) bool { return r <= ' ' || r == 127 || r == '<' || r == '>' }),
		strings.LastIndexByte(a, '@') <= 0 || strings.HasSuffix(a, "@"):
		return "", fmt.Errorf("%s %q: want local@domain", flag, a)
	case nullOK && policy.AtInDomain(a):
		// As the session refuses it at MAIL (553 5.1.7): an '@' in the
		// local part must be quoted.
		return "", fmt.Errorf("%s %q: want local@domain (an '@' in the local part must be quoted)", flag, a)
	}
	// As the session's stages and rules get it: go-smtp unquotes a quoted
	// local part ("Bob"@x is Bob@x).
	return policy.UnquoteLocal(a), nil
}

// startPipeline loads cfg's rule files, starts their plugins as `run` does
// and binds them into an Engine. closeFn stops the plugins.
func startPipeline(ctx context.Context, cfg *config.Config, logger *slog.Logger) (eng *pipeline.Engine, closeFn func(), err error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	host := pluginhost.New(pluginhost.Options{Self: self, IsBuiltin: isBuiltin, Logger: logger})
	eng, err = loadPipeline(ctx, host, cfg, logger)
	if err != nil {
		host.Close()
		return nil, nil, err
	}
	return eng, host.Close, nil
}

// loadPipeline loads cfg's rule files, (re)loads their stages into host
// (Host.Load keeps the processes of unchanged stages, so a daemon can call
// this at every reload with one host) and binds them into an Engine.
func loadPipeline(ctx context.Context, host *pluginhost.Host, cfg *config.Config, logger *slog.Logger) (*pipeline.Engine, error) {
	set, err := loadRules(cfg)
	if err != nil {
		return nil, err
	}
	for _, check := range setChecks {
		if errs := check(set); len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
	}
	if err := host.Load(ctx, stageSpecs(cfg, set)); err != nil {
		return nil, stageProblems(set, err)
	}
	clients := map[string]pipeline.StageClient{}
	for _, st := range set.Stages {
		if s, ok := host.Stage(st.Name); ok {
			clients[st.Name] = s
		}
	}
	return pipeline.New(set, clients, logger)
}

// setChecks are checks of a loaded rule set that `check` makes (through
// extraChecks) and that run, a reload and scan must make too: a rule set
// check refuses is refused everywhere.
var setChecks []func(set *rules.Set) []error

// stageSpecs is what the plugin host needs to start set's stages.
func stageSpecs(cfg *config.Config, set *rules.Set) []pluginhost.Spec {
	specs := make([]pluginhost.Spec, len(set.Stages))
	for i, st := range set.Stages {
		specs[i] = pluginhost.Spec{Name: st.Name, Plugin: st.Plugin, Config: st.Config, Env: sdk.Env{
			StageName: st.Name, Hostname: cfg.Hostname, StatePath: sdk.StageStatePath(cfg.State.Path, st.Name),
			RedisURL: cfg.State.Redis, DNSServers: cfg.DNS.Servers, ConfigDir: cfg.Dir,
		}}
	}
	return specs
}

// readMessage reads an .eml file as a client would send it: lines end in
// CRLF (RFC 5322 2.1).
func readMessage(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return bytes.ReplaceAll(bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n")), nil
}
