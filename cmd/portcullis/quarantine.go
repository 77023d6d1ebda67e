package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/queue"
	"github.com/portcullis-mta/portcullis/core/smtpd"
	sdkmime "github.com/portcullis-mta/portcullis/sdk/mime"
)

// learnHamHook readies the Bayesian stage of cfg for `quarantine release
// --learn-ham` and returns learn, which trains it on the message file at
// path as ham, and done. An error means nothing can be learned (no bayes
// stage in the rule files, or its config refused): the release is refused
// before anything moves. The bayes engineer wires it in.
var learnHamHook func(cfg *config.Config) (learn func(path string) error, done func(), err error)

func init() {
	register(&command{
		name:    "quarantine",
		summary: "list|show ID|release ID [--learn-ham]|delete ID: quarantined messages",
		run:     runQuarantine,
	})
}

const quarantineUsage = `usage: portcullis quarantine list [--json]|show ID [--full]|release ID [--learn-ham]|delete ID [-c FILE]

  list         every held message with its reason and tags (--json: for scripts)
  show ID      the envelope, reason, stage results and message header
               (--full: the whole message)
  release ID   move it into the delivery queue, due now
               (--learn-ham: also train the Bayesian stage on it as ham)
  delete ID    remove it`

func runQuarantine(args []string, stdout, stderr io.Writer) int {
	sc, st := openSpool("quarantine", quarantineUsage, args, stderr, "learn-ham", "json", "full")
	if sc == nil {
		return st
	}
	defer sc.close()
	switch sc.verb {
	case "list":
		if sc.flags["json"] {
			return sc.done(sc.listJSON(stdout))
		}
		return sc.done(sc.listHeld(stdout))
	case "show":
		return sc.done(sc.show(stdout, true))
	case "release":
		return sc.done(sc.release(stdout))
	case "delete":
		return sc.done(sc.delete(stdout))
	}
	return exitUsage
}

// listHeld prints each held message with why it is held.
func (sc *spoolCmd) listHeld(w io.Writer) error {
	es, err := sc.store.Entries()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%-17s%10s  %-19s  %s\n", "ID", "SIZE", "RECEIVED (UTC)", "SENDER")
	var bytes int64
	for _, e := range es {
		fmt.Fprintf(w, "%-17s%10d  %-19s  %s\n", markLeased(e), e.Size, fmtTime(e.Received), sender(e.From))
		if hdr, err := sc.header(e.ID); err == nil {
			fmt.Fprintf(w, "    subject: %s\n", orDash(termSafe(decodedField(hdr, "Subject"))))
		}
		fmt.Fprintf(w, "    reason: %s\n", orDash(termSafe(e.Reason)))
		fmt.Fprintf(w, "    tags: %s\n", orDash(termSafe(strings.Join(e.Tags, ", "))))
		for _, r := range e.Rcpts {
			fmt.Fprintf(w, "    to: %s\n", r.Addr)
		}
		bytes += e.Size
	}
	fmt.Fprintf(w, "-- %d message%s held, %d bytes\n", len(es), plural(len(es)), bytes)
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// showHeld adds what the quarantine keeps: reason, tags, stage results.
func showHeld(w io.Writer, env *queue.Envelope) {
	fmt.Fprintf(w, "Reason:       %s\n", orDash(termSafe(env.Reason)))
	fmt.Fprintf(w, "Tags:         %s\n", orDash(termSafe(strings.Join(env.Tags, ", "))))
	names := make([]string, 0, len(env.Results))
	for n := range env.Results {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "Results:")
	for _, n := range names {
		fmt.Fprintf(w, "  %s: %s\n", termSafe(n), termSafe(env.Results[n]))
	}
}

// release moves the message into the delivery queue, due now; a running
// daemon notices within a second. With --learn-ham the Bayesian stage is
// readied first (a config where it cannot learn releases nothing) and the
// message copied to a plain file, which the stage learns from after the
// release succeeded.
func (sc *spoolCmd) release(stdout io.Writer) error {
	learn := sc.flags["learn-ham"]
	if learn && learnHamHook == nil {
		return errors.New("--learn-ham: bayes not built into this binary; nothing released")
	}
	if _, err := sc.store.Get(sc.id); err != nil {
		return err // before opening the queue, which would create it
	}
	var tmp string
	var learnFile func(string) error
	keep := false // the copy outlives a failed learning, for the admin to retry
	if learn {
		var done func()
		var err error
		if learnFile, done, err = learnHamHook(sc.cfg); err != nil {
			return fmt.Errorf("--learn-ham: %w; nothing released", err)
		}
		defer done()
		if tmp, err = sc.export(); err != nil {
			return err
		}
		defer func() {
			if !keep {
				os.Remove(tmp)
			}
		}()
	}
	dst, err := openDir(sc.cfg.Queue.Dir, sc.stderr)
	if err != nil {
		return err
	}
	defer dst.Close()
	if err := sc.store.Move(sc.id, dst, nil); err != nil {
		return err
	}
	sc.note(dst, sc.id, "queue: released from the quarantine", "by", "portcullis quarantine release")
	fmt.Fprintf(stdout, "%s: released to the delivery queue\n", sc.id)
	if learn {
		if err := learnFile(tmp); err != nil {
			// Released is released: a second release finds nothing, so
			// the copy is the only way left to learn it.
			keep = true
			return fmt.Errorf("released, but learning it as ham failed: %w\n"+
				"the message is kept in %s; learn it with: portcullis bayes learn --ham %s%s", err, tmp, tmp, configArg(sc.cfg))
		}
		fmt.Fprintf(stdout, "%s: learned as ham\n", sc.id)
	}
	return nil
}

// configArg is " -c PATH" for the config sc was loaded from, "" for the
// built-in one.
func configArg(cfg *config.Config) string {
	if cfg.Path == "" {
		return ""
	}
	return " -c " + cfg.Path
}

// export writes the message as a plain RFC 5322 file and returns its path.
func (sc *spoolCmd) export() (string, error) {
	rc, err := sc.store.Open(sc.id)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	return writeTemp("portcullis-"+sc.id+"-*.eml", rc)
}

// decodedField is the first field name of the header text hdr (lines as
// sc.header returns them), decoded for a person to read: RFC 2047 words,
// raw ISO-2022-JP and 8-bit Japanese as the stages decode them.
func decodedField(hdr, name string) string {
	for _, f := range smtpd.HeaderFields([]byte(strings.ReplaceAll(hdr, "\n", "\r\n") + "\r\n")) {
		if strings.EqualFold(f.Name, name) {
			return sdkmime.DecodeHeader(f.Value)
		}
	}
	return ""
}
