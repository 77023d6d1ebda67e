package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/pipeline"
	"github.com/portcullis-mta/portcullis/sdk"
)

// scan runs one message through every phase as a session would: connect,
// helo, mail, rcpt once per recipient (a refused one is dropped), data. A
// phase that rejects or tempfails ends the scan with that action.
func scan(ctx context.Context, cfg *config.Config, o scanOptions, logger *slog.Logger) (*scanReport, error) {
	data, header, err := readMessage(o.msgPath)
	if err != nil {
		return nil, err
	}
	spool, err := os.CreateTemp("", "portcullis-scan-*.eml")
	if err != nil {
		return nil, err
	}
	defer os.Remove(spool.Name())
	if _, err := spool.Write(data); err != nil {
		spool.Close()
		return nil, err
	}
	if err := spool.Close(); err != nil {
		return nil, err
	}
	eng, closeFn, err := startPipeline(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	rep := &scanReport{Message: o.msgPath, Stages: map[string]*stageReport{}}
	results := map[string]*sdk.Result{}
	req := &sdk.Request{SessionID: "scan", Conn: sdk.Conn{IP: o.ip, HELO: o.helo, Listener: "scan"}}
	req.Conn.Trusted = trusted(cfg, o.ip)
	req.Envelope.From = o.from
	run := func(phase sdk.Phase) (*pipeline.Decision, error) {
		req.Phase = phase
		d, err := eng.Run(ctx, req, results)
		if err != nil {
			return nil, fmt.Errorf("%s phase: %w", phase, err)
		}
		rep.addPhase(eng, req, d)
		return d, nil
	}
	for _, ph := range []sdk.Phase{sdk.PhaseConnect, sdk.PhaseHelo, sdk.PhaseMail} {
		d, err := run(ph)
		if err != nil || refused(d) {
			return rep.final(d), err
		}
	}
	var last *pipeline.Decision
	for _, rcpt := range o.rcpts {
		req.Envelope.Rcpt = rcpt
		d, err := run(sdk.PhaseRcpt)
		if err != nil {
			return nil, err
		}
		if refused(d) {
			last = d
			continue
		}
		req.Envelope.Rcpts = append(req.Envelope.Rcpts, rcpt)
	}
	if len(req.Envelope.Rcpts) == 0 {
		return rep.final(last), nil // every recipient refused: no DATA
	}
	req.Envelope.Rcpt, req.QueueID = "", "SCAN"
	req.Message = sdk.NewFileMessage(header, spool.Name(), 0, int64(len(data)))
	d, err := run(sdk.PhaseData)
	if err != nil {
		return nil, err
	}
	return rep.final(d), nil
}

func refused(d *pipeline.Decision) bool {
	return d != nil && (d.Action == pipeline.Reject || d.Action == pipeline.Tempfail)
}

// trusted is relay.networks membership, as the session computes conn.trusted.
func trusted(cfg *config.Config, ip string) bool {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	for _, n := range cfg.Relay.Networks {
		if n.Prefix.Contains(addr.Unmap()) {
			return true
		}
	}
	return false
}
