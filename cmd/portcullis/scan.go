package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"

	"github.com/emersion/go-message/textproto"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/pipeline"
	"github.com/portcullis-mta/portcullis/core/pluginhost"
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
	ip, helo, from string
	rcpts          []string
	json           bool
	msgPath        string
}

func runScan(args []string, stdout, stderr io.Writer) int {
	flags := newFlagSet("scan", stderr)
	path := addConfigFlag(flags)
	var o scanOptions
	var rcpts listFlag
	flags.StringVar(&o.ip, "ip", "192.0.2.1", "client `IP` address")
	flags.StringVar(&o.helo, "helo", "client.example", "HELO `NAME`")
	flags.StringVar(&o.from, "from", "", "envelope sender `ADDR` (default: the null sender <>)")
	flags.Var(&rcpts, "rcpt", "envelope recipient `ADDR` (repeat for several; default postmaster@<hostname>)")
	flags.BoolVar(&o.json, "json", false, "print JSON for machines")
	flags.Usage = func() {
		fmt.Fprintln(stderr, "usage: portcullis scan -c FILE [--ip IP] [--helo NAME] [--from ADDR] [--rcpt ADDR]... [--json] MSG.eml")
		flags.PrintDefaults()
	}
	if st := parseFlags(flags, args); st >= 0 {
		return st
	}
	if flags.NArg() != 1 {
		flags.Usage()
		return exitUsage
	}
	o.msgPath, o.rcpts = flags.Arg(0), rcpts
	cfg, err := loadConfig(*path)
	if err != nil {
		printConfigError(stderr, err)
		return exitFailed
	}
	if len(o.rcpts) == 0 {
		o.rcpts = []string{"postmaster@" + cfg.Hostname}
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
	if err := host.Load(ctx, stageSpecs(cfg, set)); err != nil {
		return nil, err
	}
	clients := map[string]pipeline.StageClient{}
	for _, st := range set.Stages {
		if s, ok := host.Stage(st.Name); ok {
			clients[st.Name] = s
		}
	}
	return pipeline.New(set, clients, logger)
}

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

// readMessage reads an .eml file as the spool would hold it: lines end in
// CRLF (RFC 5322 2.1), the top-level header parsed.
func readMessage(path string) ([]byte, []sdk.HeaderField, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	data := bytes.ReplaceAll(bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
	hdr, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(data)))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: header: %v", path, err)
	}
	var fields []sdk.HeaderField
	for f := hdr.Fields(); f.Next(); {
		v := strings.ReplaceAll(strings.ReplaceAll(f.Value(), "\r\n", ""), "\n", "")
		fields = append(fields, sdk.HeaderField{Name: f.Key(), Value: strings.TrimSpace(v)})
	}
	return data, fields, nil
}
