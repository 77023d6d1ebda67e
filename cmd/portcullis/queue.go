package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/policy"
	"github.com/portcullis-mta/portcullis/core/queue"
)

// bounceHook fails every pending recipient of a queued message and queues
// the DSN the bounce policy calls for. The delivery package wires it in;
// while it is nil, `queue bounce` says so and fails.
var bounceHook func(cfg *config.Config, store queue.Store, id string) error

func init() {
	register(&command{
		name:    "queue",
		summary: "list|show ID|flush [ID]|delete ID|bounce ID: the delivery queue, daemon running or not",
		run:     runQueue,
	})
}

const queueUsage = `usage: portcullis queue list [--json]|show ID [--full]|flush [ID]|delete ID|bounce ID [-c FILE]

  list         every queued message: ID (* while being delivered), size,
               arrival, next attempt, attempts, sender, and each recipient
               with its status (--json: one JSON array, for scripts)
  show ID      the envelope and the message header (--full: the whole message)
  flush [ID]   make one message (or all) due now
  delete ID    remove a message (refused while it is being delivered)
  bounce ID    fail its pending recipients now and send the DSN`

func runQueue(args []string, stdout, stderr io.Writer) int {
	sc, st := openSpool("queue", queueUsage, args, stderr, "json", "full")
	if sc == nil {
		return st
	}
	defer sc.close()
	switch sc.verb {
	case "list":
		if sc.flags["json"] {
			return sc.done(sc.listJSON(stdout))
		}
		return sc.done(sc.listQueue(stdout))
	case "show":
		return sc.done(sc.show(stdout, false))
	case "flush":
		return sc.done(sc.flush(stdout))
	case "delete":
		return sc.done(sc.delete(stdout))
	case "bounce":
		return sc.done(sc.bounce(stdout))
	}
	return exitUsage // openSpool checked the verb
}

// spoolCmd is one run of `queue` or `quarantine`: the verb, its ID, the
// config and the store it works on.
type spoolCmd struct {
	name   string // "queue" or "quarantine"
	verb   string
	id     string
	cfg    *config.Config
	store  spoolStore
	stderr io.Writer
	now    time.Time
	flags  map[string]bool // boolean options (--json, --learn-ham)
}

// verbs lists, per command, each verb and how many IDs it takes (-1: 0 or 1).
var verbs = map[string]map[string]int{
	"queue":      {"list": 0, "show": 1, "flush": -1, "delete": 1, "bounce": 1},
	"quarantine": {"list": 0, "show": 1, "release": 1, "delete": 1},
}

// openSpool parses the arguments, loads the config and opens the
// command's directory. On failure it returns nil and the exit status.
func openSpool(name, usage string, args []string, stderr io.Writer, boolFlags ...string) (*spoolCmd, int) {
	sc, path, st := parseSpool(name, usage, args, stderr, boolFlags)
	if sc == nil {
		return nil, st
	}
	cfg, err := loadConfig(path)
	if err != nil {
		printConfigError(stderr, err)
		return nil, exitFailed
	}
	dir := cfg.Queue.Dir
	if name == "quarantine" {
		dir = cfg.Queue.Quarantine
	}
	sc.cfg = cfg
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		// Say which directory was read: an admin who forgot -c (or gave
		// the wrong file) would otherwise take "0 messages" for the
		// gateway's queue.
		fmt.Fprintf(stderr, "note: %s %s does not exist (no messages)%s\n", spoolLabel[name], dir, builtinHint(path))
		sc.store = absentStore{}
		return sc, -1
	}
	if sc.store, err = openDir(dir, stderr); err != nil {
		fmt.Fprintf(stderr, "portcullis %s: %v\n", name, err)
		return nil, exitFailed
	}
	return sc, -1
}

// spoolLabel names each command's directory in notes.
var spoolLabel = map[string]string{"queue": "spool", "quarantine": "quarantine"}

// builtinHint is what a note adds when no -c was given.
func builtinHint(path string) string {
	if path == "" {
		return "; no -c FILE given, so this is the built-in config's, from the current directory"
	}
	return ""
}

// spoolStore is what the queue and quarantine commands use of a store.
type spoolStore interface {
	queue.Store
	Entries() ([]queue.Entry, error)
}

// absentStore stands for a spool directory that does not exist yet (the
// daemon has not run): empty, and nothing is created. Like Postfix's mailq,
// looking at the queue must not make it: a directory created by root here
// would be one the daemon, running as its own user, cannot use. Only the
// methods the commands call are implemented; bounce and release reach the
// store only after Get found the message.
type absentStore struct{ queue.Store }

func (absentStore) Entries() ([]queue.Entry, error)                 { return nil, nil }
func (absentStore) Get(string) (*queue.Envelope, error)             { return nil, queue.ErrNotFound }
func (absentStore) Open(string) (io.ReadCloser, error)              { return nil, queue.ErrNotFound }
func (absentStore) Delete(string) error                             { return queue.ErrNotFound }
func (absentStore) Move(string, queue.Store, *queue.Envelope) error { return queue.ErrNotFound }
func (absentStore) Close() error                                    { return nil }

func (absentStore) Flush(id string) error {
	if id == "" {
		return nil
	}
	return queue.ErrNotFound
}

// parseSpool parses "VERB [ID] [-c FILE] [--flag]", options anywhere (as
// admins type them). It returns the command and the config path, or nil
// and the exit status.
func parseSpool(name, usage string, args []string, stderr io.Writer, boolFlags []string) (*spoolCmd, string, int) {
	fs := newFlagSet(name, stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, usage) }
	path := addConfigFlag(fs)
	bools := map[string]*bool{}
	for _, b := range boolFlags {
		bools[b] = fs.Bool(b, false, "")
	}
	pos, st := parseInterleaved(fs, args)
	if st >= 0 {
		return nil, "", st
	}
	if why := spoolArgsProblem(name, pos); why != "" {
		fmt.Fprintf(stderr, "portcullis %s\n%s\n", why, usage)
		return nil, "", exitUsage
	}
	sc := &spoolCmd{name: name, verb: pos[0], stderr: stderr, now: time.Now(), flags: map[string]bool{}}
	if len(pos) > 1 {
		id, ok := parseID(pos[1])
		if !ok {
			// The command line was right: an ID was given where one goes.
			// That no message has it is the operation failing (exit 1), as
			// for a well-formed ID that is not queued, not bad usage.
			fmt.Fprintf(stderr, "portcullis %s %s: no such message: %q is not a queue ID (16 digits and capital letters, as `portcullis %s list` shows)\n",
				name, pos[0], pos[1], name)
			return nil, "", exitFailed
		}
		sc.id = id
	}
	for b, v := range bools {
		sc.flags[b] = *v
	}
	for flag, verb := range map[string]string{"json": "list", "full": "show", "learn-ham": "release"} {
		if sc.flags[flag] && sc.verb != verb {
			fmt.Fprintf(stderr, "portcullis %s: --%s goes with %s\n%s\n", name, flag, verb, usage)
			return nil, "", exitUsage
		}
	}
	return sc, *path, -1
}

// spoolArgsProblem says what is wrong with the positional arguments of
// command name ("queue show: missing ID"), or "".
func spoolArgsProblem(name string, pos []string) string {
	if len(pos) == 0 {
		return fmt.Sprintf("%s: missing subcommand (%s)", name, verbList(name))
	}
	n, ok := verbs[name][pos[0]]
	switch {
	case !ok:
		return fmt.Sprintf("%s: unknown subcommand %q (want %s)", name, pos[0], verbList(name))
	case n == 1 && len(pos) == 1:
		return fmt.Sprintf("%s %s: missing ID", name, pos[0])
	case n == 0 && len(pos) > 1:
		return fmt.Sprintf("%s %s: takes no ID, got %q", name, pos[0], pos[1])
	case len(pos) > 2:
		return fmt.Sprintf("%s %s: one ID at a time, got %q too", name, pos[0], pos[2])
	}
	return ""
}

// verbList is name's verbs, for messages: "delete, list or show".
func verbList(name string) string {
	vs := slices.Sorted(maps.Keys(verbs[name]))
	return strings.Join(vs[:len(vs)-1], ", ") + " or " + vs[len(vs)-1]
}

// parseID reads a queue ID as an admin types it: copied from the list with
// its "*" (being delivered) mark, or in lower case. Anything else that is
// not an ID is bad usage: paths are built from IDs, so a "../x" must never
// reach the store, and "no such message" would hide the typo.
func parseID(s string) (string, bool) {
	id := strings.ToUpper(strings.TrimSuffix(s, "*"))
	return id, queue.ValidID(id)
}

// openDir opens a spool directory for a one-shot command: no watching, and
// warnings (a corrupt file moved aside) go to stderr.
func openDir(dir string, stderr io.Writer) (*queue.Dir, error) {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// Notify: a DSN that `queue bounce` queues, and the envelope it or
	// `flush` rewrites, must reach a running daemon at once.
	return queue.Open(dir, queue.Options{Poll: -1, Logger: log, Notify: true})
}

// parseInterleaved parses flags that may come before, between or after
// the positional arguments ("show ID -c FILE"). It returns the positional
// arguments, and the exit status when parsing must stop (-1 otherwise).
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, int) {
	var pos []string
	for {
		if st := parseFlags(fs, args); st >= 0 {
			return nil, st
		}
		if fs.NArg() == 0 {
			return pos, -1
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func (sc *spoolCmd) close() { sc.store.Close() }

// done turns an operation's error into a message and an exit status.
func (sc *spoolCmd) done(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, queue.ErrNotFound):
		fmt.Fprintf(sc.stderr, "portcullis %s %s: no such message: %s%s\n", sc.name, sc.verb, sc.id, sc.elsewhere())
	case errors.Is(err, queue.ErrLeased) && sc.name == "quarantine":
		// Nothing delivers from the quarantine: another command has it.
		fmt.Fprintf(sc.stderr, "portcullis %s %s: message %s is in use by another command; try again in a moment\n",
			sc.name, sc.verb, sc.id)
	case errors.Is(err, queue.ErrLeased):
		fmt.Fprintf(sc.stderr, "portcullis %s %s: message %s is being delivered right now; try again in a moment\n",
			sc.name, sc.verb, sc.id)
	default:
		fmt.Fprintf(sc.stderr, "portcullis %s %s: %v\n", sc.name, sc.verb, err)
	}
	return exitFailed
}

// elsewhere hints at the other store when the ID is there: an admin who
// types `queue show` for a quarantined message learns where it is.
func (sc *spoolCmd) elsewhere() string {
	other, dir := "quarantine", sc.cfg.Queue.Quarantine
	if sc.name == "quarantine" {
		other, dir = "queue", sc.cfg.Queue.Dir
	}
	if !queue.ValidID(sc.id) {
		return ""
	}
	if _, err := os.Stat(dir); err != nil {
		return "" // not there: do not create it by looking
	}
	d, err := openDir(dir, io.Discard)
	if err != nil {
		return ""
	}
	defer d.Close()
	if _, err := d.Get(sc.id); err != nil {
		return ""
	}
	return fmt.Sprintf(" (it is in the %s: portcullis %s show %s)", other, other, sc.id)
}

func (sc *spoolCmd) flush(stdout io.Writer) error {
	if err := sc.store.Flush(sc.id); err != nil {
		return err
	}
	if sc.id == "" {
		fmt.Fprintln(stdout, "all queued messages are due now")
	} else {
		fmt.Fprintf(stdout, "%s: due now\n", sc.id)
	}
	return nil
}

func (sc *spoolCmd) delete(stdout io.Writer) error {
	if err := sc.store.Delete(sc.id); err != nil {
		return err
	}
	sc.note(sc.store, sc.id, sc.name+": deleted", "by", "portcullis "+sc.name+" delete")
	fmt.Fprintf(stdout, "%s: deleted\n", sc.id)
	return nil
}

// note leaves a line for the daemon's log about what this command did to
// id (queue.Dir.Note), so that the message's trace there is whole. Only a
// log: a failure is said on stderr and changes nothing.
func (sc *spoolCmd) note(store any, id, event string, attrs ...string) {
	n, ok := store.(interface {
		Note(id, event string, attrs ...string) error
	})
	if !ok {
		return
	}
	if err := n.Note(id, event, attrs...); err != nil {
		fmt.Fprintf(sc.stderr, "portcullis %s: note for the daemon's log not written: %v\n", sc.name, err)
	}
}

// header returns the message's header section (up to the blank line,
// capped so a header-less binary blob cannot flood the terminal).
func (sc *spoolCmd) header(id string) (string, error) {
	rc, err := sc.store.Open(id)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	var b strings.Builder
	r := bufio.NewReader(io.LimitReader(rc, 256<<10))
	for {
		line, err := r.ReadString('\n')
		if strings.TrimRight(line, "\r\n") == "" {
			return b.String(), nil // end of header (or of the message)
		}
		b.WriteString(strings.TrimRight(line, "\r\n") + "\n")
		if err != nil {
			return b.String(), nil
		}
	}
}

const timeLayout = "2006-01-02 15:04:05"

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(timeLayout)
}

// sender is the envelope sender as the queue keeps it (unquoted, as
// go-smtp hands it) in its envelope form: "john smith"@x, not <john
// smith@x>, which reads as another address.
func sender(from string) string { return "<" + policy.WirePath(from) + ">" }

// listQueue prints one line per message and one per recipient, then the
// total, in the spirit of Postfix's mailq. Times are UTC.
func (sc *spoolCmd) listQueue(w io.Writer) error {
	es, err := sc.store.Entries()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%-17s%10s  %-19s  %-19s  %5s  %s\n", "ID", "SIZE", "RECEIVED (UTC)", "NEXT ATTEMPT", "TRIES", "SENDER")
	var bytes int64
	pending := 0
	for _, e := range es {
		next := fmtTime(e.NextAttempt)
		if !e.NextAttempt.After(sc.now) {
			next = "now"
		}
		fmt.Fprintf(w, "%-17s%10d  %-19s  %-19s  %5d  %s\n", markLeased(e), e.Size, fmtTime(e.Received), next, e.Attempts, sender(e.From))
		for _, r := range e.Rcpts {
			fmt.Fprintf(w, "    %s\n", rcptLine(r))
		}
		bytes += e.Size
		pending += len(e.Pending())
	}
	fmt.Fprintf(w, "-- %d message%s, %d bytes, %d recipient%s pending\n",
		len(es), plural(len(es)), bytes, pending, plural(pending))
	return nil
}

// markLeased appends "*" to the ID of a message being delivered, as
// Postfix's mailq marks the active queue.
func markLeased(e queue.Entry) string {
	if e.Leased {
		return e.ID + "*"
	}
	return e.ID
}

// listJSON prints every message as one JSON array (envelope fields plus
// size and leased), for scripts.
func (sc *spoolCmd) listJSON(w io.Writer) error {
	es, err := sc.store.Entries()
	if err != nil {
		return err
	}
	if es == nil {
		es = []queue.Entry{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if sc.name != "quarantine" {
		return enc.Encode(es)
	}
	// The quarantine's, as its text listing, with each subject decoded:
	// what a person (or a script) sorting held mail goes by.
	type held struct {
		queue.Entry
		Subject string `json:"subject"`
	}
	out := make([]held, len(es))
	for i, e := range es {
		out[i].Entry = e
		if hdr, err := sc.header(e.ID); err == nil {
			out[i].Subject = decodedField(hdr, "Subject")
		}
	}
	return enc.Encode(out)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// rcptLine is one recipient with its status and, when there is one, the
// last reply from the next hop.
func rcptLine(r *queue.Recipient) string {
	s := fmt.Sprintf("%s  %s", policy.WirePath(r.Addr), r.Status)
	if r.Attempts > 0 {
		s += fmt.Sprintf(" (%d attempt%s)", r.Attempts, plural(r.Attempts))
	}
	if r.LastReply != "" {
		s += "  " + r.LastReply
		if r.LastHop != "" {
			s += " [" + r.LastHop + "]"
		}
	}
	return s
}

// show prints the envelope (with the quarantine's reason and stage results
// when held), then the message header, or with --full the whole message.
func (sc *spoolCmd) show(w io.Writer, held bool) error {
	env, err := sc.store.Get(sc.id)
	if err != nil {
		return err
	}
	if sc.flags["full"] {
		printEnvelope(w, env, held)
		return sc.printAll(w)
	}
	hdr, err := sc.header(sc.id)
	if err != nil {
		return err
	}
	printEnvelope(w, env, held)
	// Encoded (and Japanese) subjects and senders, as a person reads them.
	for _, name := range []string{"Subject", "From"} {
		if v := decodedField(hdr, name); v != "" && !strings.Contains(hdr, name+": "+v+"\n") {
			fmt.Fprintf(w, "%-13s %s\n", name+":", termSafe(v))
		}
	}
	fmt.Fprintf(w, "\n%s", termSafeLines(hdr))
	return nil
}

func printEnvelope(w io.Writer, env *queue.Envelope, held bool) {
	fields := [][2]string{
		{"ID", env.ID},
		{"Received", fmtTime(env.Received)},
		{"Sender", sender(env.From)},
		{"Client", clientLine(env.Client)},
		{"Body", env.BodyType},
	}
	if !held {
		fields = append(fields, [2]string{"Next attempt", fmtTime(env.NextAttempt)},
			[2]string{"Attempts", fmt.Sprint(env.Attempts)})
	}
	for _, f := range fields {
		if f[1] != "" {
			fmt.Fprintf(w, "%-13s %s\n", f[0]+":", termSafe(f[1])) // the client's HELO is the client's
		}
	}
	if env.SMTPUTF8 || env.DSNRet != "" || env.DSNEnvID != "" || env.IsDSN || env.DelayNotified {
		fmt.Fprintf(w, "%-13s smtputf8=%t ret=%s envid=%s is_dsn=%t delay_notified=%t\n", "Options:",
			env.SMTPUTF8, env.DSNRet, env.DSNEnvID, env.IsDSN, env.DelayNotified)
	}
	fmt.Fprintln(w, "Recipients:")
	for _, r := range env.Rcpts {
		fmt.Fprintf(w, "  %s\n", rcptLine(r))
	}
	if held {
		showHeld(w, env)
	}
}

// printAll writes the whole message, as stored (CRLF line ends), after a
// blank line: `postcat -q` for Portcullis.
func (sc *spoolCmd) printAll(w io.Writer) error {
	rc, err := sc.store.Open(sc.id)
	if err != nil {
		return err
	}
	defer rc.Close()
	fmt.Fprintln(w)
	_, err = io.Copy(w, rc)
	return err
}

func clientLine(c queue.Client) string {
	s := c.IP
	if c.Hostname != "" {
		s = c.Hostname + " [" + c.IP + "]"
	}
	var extra []string
	for _, kv := range [][2]string{{"helo", c.HELO}, {"listener", c.Listener}, {"user", c.User}} {
		if kv[1] != "" {
			extra = append(extra, kv[0]+"="+kv[1])
		}
	}
	for _, kv := range []struct {
		k string
		v bool
	}{{"tls", c.TLS}, {"trusted", c.Trusted}, {"authenticated", c.Authenticated}} {
		if kv.v {
			extra = append(extra, kv.k)
		}
	}
	if len(extra) > 0 {
		s += " " + strings.Join(extra, " ")
	}
	return s
}
