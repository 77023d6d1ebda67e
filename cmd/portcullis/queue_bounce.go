package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/delivery"
	"github.com/portcullis-mta/portcullis/core/queue"
)

// `queue bounce ID` fails the message's pending recipients now and queues
// the DSN the bounce policy calls for (core/delivery.Bounce).
func init() {
	bounceHook = func(cfg *config.Config, store queue.Store, id string) error {
		return delivery.Bounce(cfg, store, id, time.Now())
	}
}

func (sc *spoolCmd) bounce(stdout io.Writer) error {
	if bounceHook == nil {
		return errors.New("delivery not built into this binary")
	}
	env, err := sc.store.Get(sc.id)
	if err != nil {
		return err
	}
	before, err := sc.dsnsTo(env.From, nil)
	if err != nil {
		return err
	}
	if err := bounceHook(sc.cfg, sc.store, sc.id); err != nil {
		return err
	}
	// Say whether the sender hears of it: "bounced" alone would let the
	// admin believe a DSN went out when the policy, or a null sender
	// (RFC 5321 4.5.5: a DSN never gets a DSN), allowed none.
	dsns, err := sc.dsnsTo(env.From, before)
	if len(dsns) == 0 {
		sc.note(sc.store, sc.id, "queue: bounced", "by", "portcullis queue bounce")
	}
	for _, d := range dsns {
		sc.note(sc.store, sc.id, "queue: bounced", "by", "portcullis queue bounce", "dsn_id", d)
		// The DSN's first line, as the daemon's own DSNs have it.
		sc.note(sc.store, d, "queued", "dsn_of", sc.id, "by", "portcullis queue bounce")
	}
	switch {
	case err != nil:
		fmt.Fprintf(stdout, "%s: bounced\n", sc.id)
		return err
	case len(dsns) > 0:
		fmt.Fprintf(stdout, "%s: bounced; DSN %s queued to %s\n", sc.id, strings.Join(dsns, ", "), sender(env.From))
	default:
		fmt.Fprintf(stdout, "%s: bounced; no DSN sent: %s\n", sc.id, noDSNReason(sc.cfg, env))
	}
	return nil
}

// dsnsTo lists the queued DSNs addressed to from that are not in old.
func (sc *spoolCmd) dsnsTo(from string, old []string) ([]string, error) {
	if from == "" {
		return nil, nil
	}
	es, err := sc.store.Entries()
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range es {
		if e.IsDSN && len(e.Rcpts) == 1 && e.Rcpts[0].Addr == from && !slices.Contains(old, e.ID) {
			ids = append(ids, e.ID)
		}
	}
	return ids, nil
}

// noDSNReason says why a bounce made no DSN, after core/delivery's
// mayBounce and NOTIFY handling.
func noDSNReason(cfg *config.Config, env *queue.Envelope) string {
	if why := delivery.NoDSNReason(cfg.Queue.Bounce, env); why != "" {
		return why
	}
	return "no recipient asked for one (NOTIFY), or none was pending"
}
