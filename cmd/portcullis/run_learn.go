package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/emersion/go-message/textproto"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/daemon"
	"github.com/portcullis-mta/portcullis/plugins/bayes"
	"github.com/portcullis-mta/portcullis/rules"
	"github.com/portcullis-mta/portcullis/sdk"
)

// The rule actions learn_spam and learn_ham train the Bayesian stage inside
// `portcullis run`: after the message is committed and the client has its
// 250, the SMTP server hands it to a learner that keeps one in-process bayes
// Stage over the same state file the stage's plugin process reads (the
// store takes bbolt's lock only for the moment of a write). The stage opens
// at the first learn event and is configured again at the first event after
// a reload.
func init() {
	runHooks = append(runHooks, func(d *daemon.Daemon) error {
		logger := d.Logger() // follows log.level across reloads
		l := &learner{config: d.Config, log: logger}
		d.Learn = l.learn
		d.AddService(learnService{l})
		return nil
	})
	extraChecks = append(extraChecks, checkLearnStage)
	setChecks = append(setChecks, learnProblems)
}

// bayesPlugin is the plugin name of the Bayesian stage in rule files.
const bayesPlugin = "bayes"

// learner trains the bayes stage of the config in force.
type learner struct {
	config func() *config.Config // the config in force (the daemon's)
	log    *slog.Logger

	// mu serializes learning: AutoLearn classifies and then learns, and two
	// events interleaving there would judge against stale counts.
	mu    sync.Mutex
	cfg   *config.Config // what st was configured from
	name  string         // st's stage name
	st    *bayes.Stage
	limit int64
	// broken is the config in force when learning panicked (a damaged
	// state file): no more learning under it, the next reload tries again.
	broken *config.Config
}

// learn is the daemon's Learn hook. Failures are logged, never returned:
// the message is already accepted.
func (l *learner) learn(ctx context.Context, spam bool, id string, open func() (io.ReadCloser, error)) {
	log := l.log.With("queue_id", id, "learn", className(spam))
	l.mu.Lock()
	defer l.mu.Unlock()
	// The store is a memory-mapped bbolt file, in the daemon's process: a
	// damaged one made bbolt panic (or fault, which SetPanicOnFault makes
	// a panic in this goroutine) and took the whole gateway down.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			log.Error("learning failed: the Bayes state file may be damaged; no more learning until a reload",
				"stage", l.name, "panic", fmt.Sprint(p))
			if st := l.st; st != nil {
				func() {
					defer func() { _ = recover() }()
					_ = st.Close()
				}()
			}
			l.broken, l.st, l.cfg = l.config(), nil, nil
		}
	}()
	if l.broken != nil && l.broken == l.config() {
		log.Error("learning failed: stopped after an earlier failure of the state file; reload to try again")
		return
	}
	st, err := l.stage(ctx)
	if err != nil {
		log.Error("learning failed", "err", err)
		return
	}
	raw, err := readLimited(open, l.limit)
	if err != nil {
		log.Error("learning failed: reading the message", "err", err)
		return
	}
	learned, reason, err := st.AutoLearn(ctx, sdk.NewBytesMessage(headerFields(raw), raw), spam)
	if err != nil {
		log.Error("learning failed", "stage", l.name, "err", err)
		return
	}
	log.Info("bayes autolearn", "stage", l.name, "learned", learned, "reason", reason)
}

// stage returns the bayes stage of the config in force, configuring it
// again when the config changed since the last event.
func (l *learner) stage(ctx context.Context) (*bayes.Stage, error) {
	cfg := l.config()
	if l.st != nil && cfg == l.cfg {
		return l.st, nil
	}
	set, err := loadRules(cfg)
	if err != nil {
		return nil, fmt.Errorf("rule files: %w", err)
	}
	spec := bayesStage(set)
	if spec == nil {
		return nil, errors.New("rules use learn_spam/learn_ham but no stage has plugin: bayes")
	}
	if l.st == nil {
		l.st = bayes.NewStage()
	}
	env := sdk.Env{StageName: spec.Name, Hostname: cfg.Hostname, ConfigDir: cfg.Dir,
		StatePath: sdk.StageStatePath(cfg.State.Path, spec.Name)}
	if err := l.st.Configure(ctx, env, spec.Config); err != nil {
		return nil, fmt.Errorf("stage %s: %w", spec.Name, err)
	}
	l.cfg, l.name, l.limit = cfg, spec.Name, cfg.Limits.MaxMessageBytes
	return l.st, nil
}

// close releases the stage at daemon stop, after the last learn event.
func (l *learner) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.st != nil {
		_ = l.st.Close()
		l.st = nil
	}
}

// bayesStage is the first stage of set whose plugin is bayes.
func bayesStage(set *rules.Set) *rules.Stage {
	for _, st := range set.Stages {
		if st.Plugin == bayesPlugin {
			return st
		}
	}
	return nil
}

func className(spam bool) string {
	if spam {
		return "spam"
	}
	return "ham"
}

// readLimited reads at most limit bytes of the message: the spooled copy
// carries our Received field on top of what the size limit allowed, and a
// truncated tail changes nothing a classifier learns from.
func readLimited(open func() (io.ReadCloser, error), limit int64) ([]byte, error) {
	rc, err := open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, limit))
}

// headerFields parses the top-level header of raw (nil when it does not
// parse: the stage reads the bytes anyway).
func headerFields(raw []byte) []sdk.HeaderField {
	hdr, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return nil
	}
	var fields []sdk.HeaderField
	for f := hdr.Fields(); f.Next(); {
		v := strings.NewReplacer("\r\n", "", "\n", "").Replace(f.Value())
		fields = append(fields, sdk.HeaderField{Name: f.Key(), Value: strings.TrimSpace(v)})
	}
	return fields
}

// learnService closes the learner's stage when the daemon stops.
type learnService struct{ l *learner }

func (learnService) Start(context.Context) error  { return nil }
func (learnService) Reload(*config.Config) error  { return nil }
func (s learnService) Stop(context.Context) error { s.l.close(); return nil }

// checkLearnStage is a `portcullis check` problem at each learn_spam or
// learn_ham rule when no stage has plugin bayes: those rules would tag and
// train nothing.
func checkLearnStage(cfg *config.Config) []error {
	set, err := loadRules(cfg)
	if err != nil {
		return nil // checkRules reports load errors
	}
	return learnProblems(set)
}

// learnProblems are checkLearnStage's problems in a loaded rule set: `run`
// and a reload refuse them too (setChecks), as check does.
func learnProblems(set *rules.Set) []error {
	if bayesStage(set) != nil {
		return nil
	}
	var out []error
	for _, r := range set.Rules {
		if r.Action == rules.ActionLearnSpam || r.Action == rules.ActionLearnHam {
			out = append(out, rules.Problem{Pos: r.Pos,
				Msg: fmt.Sprintf("action %s needs a stage with plugin: %s to train", r.Action, bayesPlugin)})
		}
	}
	return out
}
