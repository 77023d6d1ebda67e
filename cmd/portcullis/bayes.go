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
	learnHamHook = learnHamFile
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
	spam, ham []string
	paths     []string
}

// parseBayesArgs parses by hand because --spam and --ham each take several
// paths ("--spam a b --ham c"), which package flag cannot express.
func parseBayesArgs(args []string) (*bayesArgs, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("missing subcommand")
	}
	a := &bayesArgs{verb: args[0], stage: "bayes"}
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
					return nil, fmt.Errorf("-%s needs a value", name)
				}
				i++
				val = args[i]
			}
			if name == "c" {
				a.config = val
			} else {
				a.stage = val
			}
		default:
			return nil, fmt.Errorf("unknown flag %s", arg)
		}
	}
	return a, a.check()
}

func (a *bayesArgs) check() error {
	switch a.verb {
	case "learn":
		if len(a.paths) > 0 {
			return fmt.Errorf("learn: say --spam or --ham before %s", a.paths[0])
		}
		if len(a.spam)+len(a.ham) == 0 {
			return fmt.Errorf("learn: nothing to learn")
		}
	case "classify":
		if len(a.paths) == 0 || len(a.spam)+len(a.ham) > 0 {
			return fmt.Errorf("classify takes PATH... only")
		}
	case "stats":
		if len(a.paths)+len(a.spam)+len(a.ham) > 0 {
			return fmt.Errorf("stats takes no paths")
		}
	default:
		return fmt.Errorf("unknown subcommand %q", a.verb)
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
		fmt.Fprintf(stderr, "portcullis bayes: %v\n%s\n", err, bayesUsage)
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
	st, err := openBayesStage(cfg, a.stage, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "portcullis bayes: %v\n", err)
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
// the rule-file stage entry named stage (defaults when there is none), its
// state file from state.path.
func openBayesStage(cfg *config.Config, stage string, stderr io.Writer) (*bayes.Stage, error) {
	var stageCfg map[string]any
	set, err := rules.Load(cfg.Dir, cfg.Include, cfg.Path, &cfg.Stages, &cfg.Rules)
	if err != nil {
		fmt.Fprintf(stderr, "portcullis bayes: rule files not loaded, using the stage defaults: %v\n", err)
	} else {
		for _, s := range set.Stages {
			if s.Name == stage {
				stageCfg = s.Config
			}
		}
	}
	if cfg.State.Path == "" {
		return nil, fmt.Errorf("no state.path in the config: the Bayesian stage has nowhere to keep its tokens (it does not use state.redis)")
	}
	st := bayes.NewStage()
	env := sdk.Env{StageName: stage, Hostname: cfg.Hostname, ConfigDir: cfg.Dir, RedisURL: cfg.State.Redis,
		StatePath: sdk.StageStatePath(cfg.State.Path, stage)}
	if err := st.Configure(context.Background(), env, stageCfg); err != nil {
		return nil, err
	}
	return st, nil
}

// learnHamFile is `quarantine release --learn-ham`.
func learnHamFile(cfg *config.Config, path string) error {
	st, err := openBayesStage(cfg, "bayes", io.Discard)
	if err != nil {
		return err
	}
	defer st.Close()
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	_, err = st.LearnRaw(context.Background(), raw, false)
	return err
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
	if int(s.Spam) < cfg.MinSpam || int(s.Ham) < cfg.MinHam {
		ready = fmt.Sprintf("no (needs %d spam and %d ham)", cfg.MinSpam, cfg.MinHam)
	}
	fmt.Fprintf(stdout, "state file:      %s\n", path)
	if redis != "" {
		fmt.Fprintf(stdout, "state.redis:     not used by this stage: each gateway keeps its own tokens in its state file\n")
	}
	fmt.Fprintf(stdout, "spam learned:    %d (counted %d times with train-on-error)\n", s.SpamMessages, s.Spam)
	fmt.Fprintf(stdout, "ham learned:     %d (counted %d times with train-on-error)\n", s.HamMessages, s.Ham)
	fmt.Fprintf(stdout, "message hashes:  %d\n", s.Messages)
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
		grams += "; no say until min_spam and min_ham (a store learned before it: run bayes learn again)"
	}
	fmt.Fprintf(stdout, "cutoffs:         spam >= %g, ham <= %g\n", cfg.SpamCutoff, cfg.HamCutoff)
	fmt.Fprintf(stdout, "4-gram model:    %s\n", grams)
	fmt.Fprintf(stdout, "gives verdicts:  %s\n", ready)
	return nil
}
