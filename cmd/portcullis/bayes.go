package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/plugins/bayes"
	"github.com/portcullis-mta/portcullis/plugins/bayes/msgsrc"
	"github.com/portcullis-mta/portcullis/rules"
	"github.com/portcullis-mta/portcullis/sdk"
)

func init() {
	register(&command{
		name:    "bayes",
		summary: "learn --spam PATH... --ham PATH... | classify PATH... | stats: the Bayesian stage",
		run:     runBayes,
	})
	learnHamHook = learnHamPrepare
}

const bayesUsage = `usage: portcullis bayes learn [--spam PATH...] [--ham PATH...] [-c FILE] [--stage NAME]
       portcullis bayes classify PATH... [-c FILE] [--stage NAME]
       portcullis bayes stats [-c FILE] [--stage NAME]

PATH is a message file, a directory or maildir (walked), an mbox, or a
.tar.gz/.tgz/.tar archive of messages. classify prints NAME<TAB>SCORE<TAB>VERDICT.
--stage names the rule-file stage whose config and state file are used (default bayes).`

// bayesArgs are the parsed arguments of a bayes subcommand.
type bayesArgs struct {
	verb      string
	config    string
	stage     string
	stageSet  bool // --stage was given
	spam, ham []string
	paths     []string
}

// parseBayesArgs parses by hand because --spam and --ham each take several
// paths ("--spam a b --ham c"), which package flag cannot express. An
// error says what is wrong, naming the subcommand ("bayes classify:
// missing PATH").
func parseBayesArgs(args []string) (*bayesArgs, error) {
	if len(args) == 0 {
		return nil, errors.New("bayes: missing subcommand (learn, classify or stats)")
	}
	a := &bayesArgs{verb: args[0], stage: "bayes"}
	switch a.verb {
	case "learn", "classify", "stats":
	default:
		return nil, fmt.Errorf("bayes: unknown subcommand %q (want learn, classify or stats)", a.verb)
	}
	target := &a.paths
	for i := 1; i < len(args); i++ {
		arg := args[i]
		name, val, hasVal := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if !strings.HasPrefix(arg, "-") || arg == "-" {
			*target = append(*target, arg)
			continue
		}
		switch name {
		case "spam", "ham":
			target = &a.spam
			if name == "ham" {
				target = &a.ham
			}
			if hasVal {
				*target = append(*target, val)
			}
		case "c", "stage":
			if !hasVal {
				if i+1 >= len(args) {
					return nil, fmt.Errorf("bayes %s: %s needs a value", a.verb, arg)
				}
				i++
				val = args[i]
			}
			if name == "c" {
				a.config = val
			} else {
				a.stage, a.stageSet = val, true
			}
		default:
			return nil, fmt.Errorf("bayes %s: unknown flag %s", a.verb, arg)
		}
	}
	if err := a.check(); err != nil {
		return nil, fmt.Errorf("bayes %s: %w", a.verb, err)
	}
	return a, nil
}

// check reports paths that do not fit the subcommand.
func (a *bayesArgs) check() error {
	switch a.verb {
	case "learn":
		if len(a.paths) > 0 {
			return fmt.Errorf("say --spam or --ham before %s", a.paths[0])
		}
		if len(a.spam)+len(a.ham) == 0 {
			return errors.New("missing --spam PATH or --ham PATH")
		}
	case "classify":
		if len(a.spam)+len(a.ham) > 0 {
			return errors.New("--spam and --ham go with learn")
		}
		if len(a.paths) == 0 {
			return errors.New("missing PATH")
		}
	case "stats":
		if len(a.spam)+len(a.ham) > 0 {
			return errors.New("--spam and --ham go with learn")
		}
		if len(a.paths) > 0 {
			return fmt.Errorf("takes no PATH, got %s", a.paths[0])
		}
	}
	return nil
}

func runBayes(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprintln(stderr, bayesUsage)
		return exitOK
	}
	a, err := parseBayesArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "portcullis %v\n%s\n", err, bayesUsage)
		return exitUsage
	}
	cfg, err := loadConfig(a.config)
	if err != nil {
		printConfigError(stderr, err)
		return exitFailed
	}
	// Every PATH is there before anything is learned: a typo in the last
	// one must not leave the store with half a run (no rounds, no gram
	// model).
	for _, p := range append(append(append([]string{}, a.paths...), a.spam...), a.ham...) {
		if _, err := os.Stat(p); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				err = fmt.Errorf("%s: no such file or directory", p)
			}
			fmt.Fprintf(stderr, "portcullis bayes %s: %v\n", a.verb, err)
			return exitFailed
		}
	}
	st, err := openBayesStage(cfg, a.stage, a.stageSet, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "portcullis bayes %s: %v\n", a.verb, err)
		return exitFailed
	}
	defer st.Close()
	switch a.verb {
	case "learn":
		err = bayesLearn(st, a, stderr, stdout)
	case "classify":
		err = bayesClassify(st, a.paths, stdout, stderr)
	case "stats":
		err = bayesStats(st, cfg.State.Redis, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "portcullis bayes %s: %v\n", a.verb, err)
		return exitFailed
	}
	return exitOK
}

// openBayesStage configures the stage as the daemon would: its config from
// the rule-file stage named stage, its state file from state.path. A name
// that is not a stage running the bayes plugin is an error, before any
// file is created: a store no stage reads would be trained or read in vain.
//
// One case keeps the defaults: no --stage, and no stage of the rule files
// runs the bayes plugin at all (a gateway being set up, or the built-in
// config). The store is then state.bayes.db with the default settings,
// which a stage named bayes added later reads, and a note on stderr says
// so.
func openBayesStage(cfg *config.Config, stage string, explicit bool, stderr io.Writer) (*bayes.Stage, error) {
	set, err := loadRules(cfg)
	if err != nil {
		return nil, fmt.Errorf("the rule files of %s do not load: %w", cfgName(cfg), err)
	}
	if !explicit && bayesStage(set) == nil && set.Stage(stage) == nil {
		fmt.Fprintf(stderr, "portcullis bayes: note: no stage in the rule files of %s runs the bayes plugin; "+
			"using its default settings and the store of a stage named %s\n", cfgName(cfg), stage)
		return configureBayes(cfg, &rules.Stage{Name: stage, Plugin: bayesPlugin})
	}
	spec, err := findBayesStage(cfg, set, stage)
	if err != nil {
		return nil, err
	}
	return configureBayes(cfg, spec)
}

// findBayesStage is the stage of set named name, which must run the bayes
// plugin.
func findBayesStage(cfg *config.Config, set *rules.Set, name string) (*rules.Stage, error) {
	var names []string
	var found *rules.Stage
	for _, s := range set.Stages {
		if s.Plugin == bayesPlugin {
			names = append(names, s.Name)
		}
		if s.Name == name {
			found = s
		}
	}
	have := "no stage runs the bayes plugin"
	if len(names) > 0 {
		have = "stages running the bayes plugin: " + strings.Join(names, ", ")
	}
	switch {
	case found == nil:
		return nil, fmt.Errorf("no stage %q in the rule files of %s (%s)", name, cfgName(cfg), have)
	case found.Plugin != bayesPlugin:
		return nil, fmt.Errorf("stage %q in the rule files of %s runs plugin %q, not %s (%s)", name, cfgName(cfg), found.Plugin, bayesPlugin, have)
	}
	return found, nil
}

// configureBayes opens the stage spec in this process, over the state file
// its plugin process reads.
func configureBayes(cfg *config.Config, spec *rules.Stage) (*bayes.Stage, error) {
	if cfg.State.Path == "" {
		return nil, fmt.Errorf("no state.path in the config: the Bayesian stage has nowhere to keep its tokens (it does not use state.redis)")
	}
	st := bayes.NewStage()
	env := sdk.Env{StageName: spec.Name, Hostname: cfg.Hostname, ConfigDir: cfg.Dir, RedisURL: cfg.State.Redis,
		StatePath: sdk.StageStatePath(cfg.State.Path, spec.Name)}
	if err := st.Configure(context.Background(), env, spec.Config); err != nil {
		return nil, err
	}
	return st, nil
}

// cfgName names the config in messages.
func cfgName(cfg *config.Config) string {
	if cfg.Path == "" {
		return embeddedConfigName
	}
	return cfg.Path
}

// learnHamPrepare is learnHamHook: `quarantine release --learn-ham` trains
// the stage the daemon's learn_ham trains, the first one running the bayes
// plugin; without one the release is refused.
func learnHamPrepare(cfg *config.Config) (func(string) error, func(), error) {
	set, err := loadRules(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("the rule files of %s do not load: %w", cfgName(cfg), err)
	}
	spec := bayesStage(set)
	if spec == nil {
		return nil, nil, fmt.Errorf("no stage in the rule files of %s runs the bayes plugin", cfgName(cfg))
	}
	st, err := configureBayes(cfg, spec)
	if err != nil {
		return nil, nil, err
	}
	learn := func(path string) error {
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		_, err = st.LearnRaw(context.Background(), raw, false)
		return err
	}
	return learn, func() { st.Close() }, nil
}

// bayesClassify prints NAME<TAB>SCORE<TAB>VERDICT per message; a file that
// is not a message (msgsrc.Problem) is named on stderr instead, so that
// every line of stdout has the contract's three fields.
func bayesClassify(st *bayes.Stage, paths []string, stdout, stderr io.Writer) error {
	ctx := context.Background()
	for _, p := range paths {
		err := msgsrc.Walk(p, func(m msgsrc.Message) error {
			name := printableName(m.Name)
			if why := msgsrc.Problem(m.Data); why != "" {
				fmt.Fprintf(stderr, "portcullis bayes classify: %s skipped: %s\n", name, why)
				return nil
			}
			c, err := st.Classify(ctx, m.Data)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "%s\t%.4f\t%s\n", name, c.Score, c.Verdict)
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// printableName is name, Go-quoted when it holds a tab, a line end or
// another control character that would break the line format.
func printableName(name string) string {
	if strings.IndexFunc(name, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0 {
		return strconv.Quote(name)
	}
	return name
}

func bayesStats(st *bayes.Stage, redis string, stdout io.Writer) error {
	s, err := st.Store().Stats(context.Background())
	if err != nil {
		return err
	}
	cfg := st.Config()
	path := ""
	if b, ok := st.Store().(*bayes.BoltStore); ok {
		path = b.Path()
	}
	last := "never"
	if !s.LastLearn.IsZero() {
		last = s.LastLearn.Format(time.RFC3339)
	}
	ready := "yes"
	if s.SpamMessages < cfg.MinSpam || s.HamMessages < cfg.MinHam {
		ready = fmt.Sprintf("no (needs %d spam and %d ham)", cfg.MinSpam, cfg.MinHam)
	}
	fmt.Fprintf(stdout, "state file:      %s\n", path)
	if redis != "" {
		fmt.Fprintf(stdout, "state.redis:     not used by this stage: each gateway keeps its own tokens in its state file\n")
	}
	fmt.Fprintf(stdout, "spam learned:    %d (counted %d times with train-on-error)\n", s.SpamMessages, s.Spam)
	fmt.Fprintf(stdout, "ham learned:     %d (counted %d times with train-on-error)\n", s.HamMessages, s.Ham)
	fmt.Fprintf(stdout, "message hashes:  %d%s\n", s.Messages, oldHashNote(s, path))
	fmt.Fprintf(stdout, "tokens:          %d\n", s.Tokens)
	fmt.Fprintf(stdout, "file size:       %d bytes\n", s.Bytes)
	fmt.Fprintf(stdout, "last learned:    %s\n", last)
	grams := fmt.Sprintf("learned %d spam and %d ham", s.GramModel.Spam, s.GramModel.Ham)
	switch {
	case cfg.GramWeight == 0:
		grams += "; off (gram_weight 0)"
	case int(s.GramModel.Spam) >= cfg.MinSpam && int(s.GramModel.Ham) >= cfg.MinHam:
		grams += fmt.Sprintf("; its logit is added to Fisher's with weight %g", cfg.GramWeight)
	default:
		grams += "; no say until it has learned min_spam and min_ham messages (bayes learn teaches it, also messages the store already knows)"
	}
	fmt.Fprintf(stdout, "cutoffs:         spam >= %g, ham <= %g\n", cfg.SpamCutoff, cfg.HamCutoff)
	fmt.Fprintf(stdout, "4-gram model:    %s\n", grams)
	fmt.Fprintf(stdout, "gives verdicts:  %s\n", ready)
	return nil
}

// oldHashNote is what bayes stats and learn say of a store whose message
// hashes an older build made: its messages are not recognised again.
func oldHashNote(s bayes.Stats, path string) string {
	if !s.OldHashes {
		return ""
	}
	return fmt.Sprintf(" (of another form, an older build's: a message learned again is counted twice, and learning it as "+
		"the other class does not move it; to rebuild the store, remove %s and run bayes learn on your corpus)", path)
}
