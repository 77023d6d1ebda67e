// Package bayes is the Bayesian content stage: a statistical spam filter
// of the Robinson-Fisher (chi-square) family, as in SpamAssassin and
// bogofilter, learning from the messages a site labels.
//
// A message is decoded (MIME, transfer encodings, charsets including
// ISO-2022-JP, Shift_JIS and EUC-JP), turned into distinct tokens (header
// fields' words with a prefix per field, one prefix shared by the address
// and list fields, the order of the header fields, body words, adjacent word pairs, CJK
// character bigrams, URL domains, and the markup of HTML parts: tag names,
// presentational attributes, inline styles; see Tokenizer), and each token's counts
// in learned spam and ham give a probability that Fisher's method combines
// (see Params). Counts live in a Store: a bbolt file by default.
//
// Result: results.<stage>.score is the spam probability from 0 to 1; the
// verdict is fail at or above spam_cutoff, pass at or below ham_cutoff,
// neutral between, and neutral with a reason until enough was learned.
package bayes

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
)

// Version is the plugin's version.
const Version = "1.0.0"

// maxLearnBytes bounds how much of a message is read for classifying or
// learning; the tokenizer's own bounds apply after decoding.
const maxLearnBytes = 4 << 20

// Stage is the Bayesian stage. It is safe for concurrent use.
type Stage struct {
	mu     sync.RWMutex
	cfg    Config
	store  Store
	tok    *Tokenizer
	params Params
	now    func() time.Time

	trimMu   sync.Mutex
	lastTrim time.Time // when learning last checked the store's size
}

var (
	_ sdk.Stage         = (*Stage)(nil)
	_ sdk.Closer        = (*Stage)(nil)
	_ sdk.ConfigChecker = (*Stage)(nil)
)

// New returns an unconfigured Bayesian stage (the built-in "bayes").
func New() sdk.Stage { return NewStage() }

// NewStage returns an unconfigured *Stage.
func NewStage() *Stage {
	return &Stage{
		cfg:    DefaultConfig(),
		tok:    NewTokenizer(DefaultTokenizerOptions()),
		params: DefaultParams(),
		now:    time.Now,
	}
}

// Open returns a stage with cfg over store, for the CLI and tests.
func Open(store Store, cfg Config) (*Stage, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := NewStage()
	s.cfg, s.store = cfg, store
	return s, nil
}

// Info implements sdk.Stage.
func (s *Stage) Info() sdk.Info {
	return sdk.Info{Name: "bayes", Version: Version, Phases: []sdk.Phase{sdk.PhaseData}}
}

// Configure implements sdk.Stage. The token store is env.StatePath. There
// is no Redis store yet: with state.redis, each gateway keeps its own tokens
// in its state.path file, which is said once at load, and without a
// state.path the config is refused.
func (s *Stage) Configure(_ context.Context, env sdk.Env, config map[string]any) error {
	cfg, err := ParseConfig(config)
	if err != nil {
		return err
	}
	if err := checkEnv(env); err != nil {
		return err
	}
	if env.RedisURL != "" {
		slog.Warn("bayes: state.redis is not used by this stage; this gateway keeps its own tokens", "path", env.StatePath)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.store == nil || s.storePath() != env.StatePath {
		st, err := OpenBolt(env.StatePath)
		if err != nil {
			return err
		}
		if s.store != nil {
			_ = s.store.Close()
		}
		s.store = st
	}
	s.cfg = cfg
	return nil
}

// CheckConfig implements sdk.ConfigChecker: the config and the state
// path, without opening the token store (a running gateway holds its lock).
func (s *Stage) CheckConfig(_ context.Context, env sdk.Env, config map[string]any) error {
	if _, err := ParseConfig(config); err != nil {
		return err
	}
	return checkEnv(env)
}

// checkEnv refuses a gateway without a state.path: the tokens live in a
// local file, state.redis or not.
func checkEnv(env sdk.Env) error {
	if env.StatePath != "" {
		return nil
	}
	if env.RedisURL != "" {
		return errors.New("bayes: state.redis is not supported by this stage (its tokens live in a local file): set state.path")
	}
	return errNoState
}

func (s *Stage) storePath() string {
	if b, ok := s.store.(*BoltStore); ok {
		return b.Path()
	}
	return ""
}

// Close implements sdk.Closer.
func (s *Stage) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.store == nil {
		return nil
	}
	err := s.store.Close()
	s.store = nil
	return err
}

// Store returns the stage's token store.
func (s *Stage) Store() Store {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.store
}

// Config returns the stage's config.
func (s *Stage) Config() Config {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cfg
}

// Check implements sdk.Stage: it classifies the message at the data phase.
func (s *Stage) Check(ctx context.Context, req *sdk.Request) (*sdk.Result, error) {
	if req.Phase != sdk.PhaseData || req.Message == nil {
		return &sdk.Result{Verdict: sdk.VerdictNone}, nil
	}
	raw, err := readMessage(req.Message)
	if err != nil {
		return nil, err
	}
	c, err := s.Classify(ctx, raw)
	if err != nil {
		return nil, err
	}
	return c.Result(), nil
}

func readMessage(m *sdk.Message) ([]byte, error) {
	rc, err := m.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, maxLearnBytes))
}

// Classification is the outcome of classifying one message.
type Classification struct {
	Score   float64
	Verdict sdk.Verdict
	Tokens  int    // tokens that counted
	Totals  Totals // counted messages, train-on-error repeats included: the classifier's
	Learned Totals // distinct messages learned: what min_spam and min_ham count
	Reason  string
	// Untrained: fewer than min_spam spam or min_ham ham were learned; the
	// score is 0.5 and the verdict neutral, and the result carries the tag
	// "untrained" so that rules can tell it from a real "unsure".
	Untrained bool
}

// TagUntrained is the result tag of a message scored before enough training.
const TagUntrained = "untrained"

// Result turns c into the stage result seen in rules.
func (c Classification) Result() *sdk.Result {
	r := &sdk.Result{
		Verdict: c.Verdict,
		Score:   c.Score,
		Reason:  c.Reason,
		Attrs: map[string]string{
			"tokens": strconv.Itoa(c.Tokens),
			"spam":   strconv.FormatUint(uint64(c.Learned.Spam), 10),
			"ham":    strconv.FormatUint(uint64(c.Learned.Ham), 10),
		},
	}
	if c.Untrained {
		r.Tags = []string{TagUntrained}
	}
	return r
}

// Classify scores a raw message (RFC 5322, optionally with an mbox From line).
func (s *Stage) Classify(ctx context.Context, raw []byte) (Classification, error) {
	s.mu.RLock()
	store, cfg, params := s.store, s.cfg, s.params
	s.mu.RUnlock()
	if store == nil {
		return Classification{}, errors.New("bayes: stage not configured")
	}
	raw = withoutOwnTrace(raw)
	keys := s.keys(raw)
	counts, totals, learned, grams, gramN, err := lookup(ctx, store, params, keys)
	if err != nil {
		return Classification{}, err
	}
	c := Classification{Totals: totals, Learned: learned, Score: 0.5, Verdict: sdk.VerdictNeutral}
	if int(learned.Spam) < cfg.MinSpam || int(learned.Ham) < cfg.MinHam {
		// Messages, not counts: train-on-error counts a message it got
		// wrong several times, and 150 spam could count as 325.
		c.Reason = fmt.Sprintf("not enough training: %d spam, %d ham learned (need %d and %d)",
			learned.Spam, learned.Ham, cfg.MinSpam, cfg.MinHam)
		c.Untrained = true
		return c, nil
	}
	c.Score, c.Tokens = params.Score(counts, totals.Spam, totals.Ham)
	// The gram model has its say once it learned as much as Fisher needs:
	// a model stepped by a few messages (a store trained before it existed,
	// then a rule's learn_spam) would swing scores on little evidence.
	if grams != nil && cfg.GramWeight > 0 && int(gramN.Spam) >= cfg.MinSpam && int(gramN.Ham) >= cfg.MinHam {
		c.Score = blend(c.Score, grams.logitOf(raw), cfg.GramWeight)
	}
	switch {
	case c.Score >= cfg.SpamCutoff:
		c.Verdict, c.Reason = sdk.VerdictFail, fmt.Sprintf("spam probability %.4f from %d tokens", c.Score, c.Tokens)
	case c.Score <= cfg.HamCutoff:
		c.Verdict, c.Reason = sdk.VerdictPass, fmt.Sprintf("ham: spam probability %.4f from %d tokens", c.Score, c.Tokens)
	default:
		c.Reason = fmt.Sprintf("unsure: spam probability %.4f from %d tokens", c.Score, c.Tokens)
	}
	return c, nil
}

// lookup fetches the counts of keys that Score with p would use and the
// gram model's weights and counts, reading the bbolt store's classifying
// view directly when it can (no copy of the key list through the
// interface).
//
// learned is the distinct messages learned (a store other than the bbolt
// one, which counts each message once, gives its totals).
func lookup(ctx context.Context, store Store, p Params, keys []Key) (counts []Count, totals, learned Totals, grams Weights, gramN Totals, err error) {
	counts = make([]Count, 0, len(keys))
	if b, ok := store.(*BoltStore); ok {
		v, err := b.classifying(p)
		if err != nil {
			return nil, Totals{}, Totals{}, nil, Totals{}, err
		}
		for _, k := range keys {
			if c, ok := v.counts[k]; ok {
				counts = append(counts, c)
			}
		}
		return counts, v.totals, v.msgs, v.grams, v.gramN, nil
	}
	if totals, err = store.Totals(ctx); err != nil {
		return nil, Totals{}, Totals{}, nil, Totals{}, err
	}
	if g, ok := store.(GramStore); ok {
		if grams, gramN, err = g.Grams(ctx); err != nil {
			return nil, Totals{}, Totals{}, nil, Totals{}, err
		}
	}
	counts = counts[:len(keys)]
	return counts, totals, totals, grams, gramN, store.Lookup(ctx, keys, counts)
}

// keys tokenizes raw and returns the distinct store keys.
func (s *Stage) keys(raw []byte) []Key {
	return s.tok.Keys(parseDoc(raw))
}

// Prepare turns a raw message into what Store.Learn takes (with its gram
// features unless gram_weight is 0).
func (s *Stage) Prepare(raw []byte, spam bool) Learned {
	raw = withoutOwnTrace(raw)
	l := Learned{Hash: HashMessage(raw), Keys: s.keys(raw), Spam: spam}
	if s.Config().GramWeight > 0 {
		l.Grams = gramFeatures(raw, nil)
	}
	return l
}

// hashVersion names the form of HashMessage a store's message hashes
// have (its meta "hash" key, set when a store is made). A store marked
// with another version does not recognise its messages again: relearning
// them counts them twice, and a correction does not move them. Stores
// made before the mark existed carry none and are taken as this form,
// which most of them have (the form before it, of early builds, is told
// apart by nothing stored); when the form changes again, bump this and
// read an unmarked store as old too.
const hashVersion = 2

// HashMessage identifies a message for learning: SHA-256 of its
// Message-ID and body. The other header fields are left out so that the
// same message seen on another path (new Received fields, a filter's tags)
// is still recognised, and the body is taken in one form (writeBody) so
// that the copy a rule learned off the wire (CRLF) is the copy a person
// later learns from a maildir or an mbox (LF, quoted, a line end more or
// less).
func HashMessage(raw []byte) MsgHash {
	header, body := splitHeader(raw)
	h := sha256.New()
	h.Write(messageID(header))
	h.Write([]byte{0})
	writeBody(h, body)
	var out MsgHash
	copy(out[:], h.Sum(nil))
	return out
}
