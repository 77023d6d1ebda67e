package queue

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// Notes: what another process did to a message, for the daemon's log. The
// queue commands (`queue delete`, `queue bounce`, `quarantine release`)
// log to their own terminal; the daemon's log, where an admin follows a
// message by its queue ID, would otherwise say only "removed by another
// process", or nothing at all when the daemon was stopped at the time. So
// such a command also appends a note to dir/.events (Note), and the
// daemon's Dir (Options.Events) logs each note with its queue ID and
// clears the file: at once when it runs (a note touches the control file,
// which its watcher polls), else at its next start. Notes are a log, not
// state: they are not fsynced, and past maxEvents bytes new ones are
// dropped.

const (
	eventsName = ".events"
	maxEvents  = 1 << 20
)

// note is one line of dir/.events.
type note struct {
	Time  time.Time         `json:"t"`
	ID    string            `json:"id"`
	Event string            `json:"event"`
	Attrs map[string]string `json:"attrs,omitempty"`
}

func (d *Dir) eventsPath() string { return filepath.Join(d.path, eventsName) }

// Note records that event happened to message id (attrs in key, value
// pairs), for the daemon's log, and tells the daemon. event is the log
// line's message ("queue: deleted", or "queued" for a DSN, as the
// daemon's own lines say it).
func (d *Dir) Note(id, event string, attrs ...string) error {
	n := note{Time: d.now().UTC(), ID: id, Event: event}
	for i := 0; i+1 < len(attrs); i += 2 {
		if n.Attrs == nil {
			n.Attrs = map[string]string{}
		}
		n.Attrs[attrs[i]] = attrs[i+1]
	}
	line, err := json.Marshal(n)
	if err != nil {
		return err
	}
	f, err := openOwned(d.eventsPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, d.own)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	if st, err := f.Stat(); err == nil && st.Size() > maxEvents {
		return nil // nobody reads them: a daemon that never runs here
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		return err
	}
	return d.touch()
}

// logNotes logs and clears the notes other processes left (Options.Events).
func (d *Dir) logNotes() {
	if !d.opts.Events {
		return
	}
	st, err := os.Stat(d.eventsPath())
	if err != nil || st.Size() == 0 {
		return
	}
	f, err := os.OpenFile(d.eventsPath(), os.O_RDWR, 0)
	if err != nil {
		return
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return
	}
	var notes []note
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		var n note
		if json.Unmarshal(bytes.TrimSpace(sc.Bytes()), &n) == nil && ValidID(n.ID) && n.Event != "" {
			notes = append(notes, n)
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, bufio.ErrTooLong) {
		d.log.Warn("queue: cannot read the notes of other processes", "file", d.eventsPath(), "err", err)
		return
	}
	if err := f.Truncate(0); err != nil {
		d.log.Warn("queue: cannot clear the notes of other processes", "file", d.eventsPath(), "err", err)
		return
	}
	for _, n := range notes {
		args := []any{"queue_id", n.ID}
		for _, k := range slices.Sorted(maps.Keys(n.Attrs)) {
			args = append(args, k, n.Attrs[k])
		}
		args = append(args, "at", n.Time.Format(time.RFC3339))
		d.log.Info(n.Event, args...)
	}
}
