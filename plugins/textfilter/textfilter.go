// Package textfilter provides the TEXT and SUBJECT content stages: pattern
// lists matched against a message's decoded text.
//
// TEXT (NewText, built-in "textfilter") matches the decoded Subject, every
// decoded text part (HTML turned into text; see sdk/mime) and the header
// fields named in `headers`. SUBJECT (NewSubject, built-in "subject")
// matches the decoded Subject only, without reading the body.
//
// Before matching, text and literal patterns are normalised: Unicode NFKC,
// then case folding, then characters that render as nothing (Unicode's
// Default_Ignorable_Code_Point: soft hyphen, zero-width space and joiners,
// bidi controls, variation selectors) are removed, then runs of white space
// become one space. So ＳＰＡＭ matches "spam", ｶﾀｶﾅ matches "カタカナ",
// "vi&shy;agra" matches "viagra", and "free money" matches across a line
// break.
//
// # List files
//
// UTF-8 text (a BOM is ignored; a file that is not UTF-8, such as a
// Shift_JIS export from an old Windows server, is decoded as sdk/mime's
// ToUTF8 detects it), one pattern a line:
//
//	# a comment line
//	viagra                  a literal: matches anywhere (substring), any case or width
//	未承諾広告
//	re:^re: ?\[spam\]       a regular expression (Go RE2 syntax, case-insensitive)
//	/casino\s+bonus/        the same, between slashes (an "i" flag is accepted)
//	bitcoin<TAB>5           a TAB and a number at the end set the pattern's weight
//
// Literals of every list are matched in one pass with an Aho-Corasick
// automaton; regular expressions run after it over the same normalised text
// (RE2 runs in linear time). Lists are re-read when their file changes
// (checked at most every reload_interval, and only once the file has not
// changed for reload_settle); a list that no longer loads keeps the rules
// it replaces, the result carries attrs.reload_error, and the gateway's
// log has one error line for that change (an info line when a change
// loads). Update a list by writing a new file and renaming it over the old
// one.
//
// # Config
//
//	lists:                        # one or more
//	  - name: spamwords           # tags are "<name>:<pattern>"
//	    file: lists/spam.txt      # relative to the config directory
//	    patterns: [extra words]   # and/or inline patterns
//	    weight: 1                 # default weight of the list's patterns
//	headers: [From, Reply-To]     # TEXT only: further header fields to match
//	score: weight                 # weight (sum of weights) | count (distinct patterns)
//	threshold: 1                  # verdict fail when score >= threshold
//	reload_interval: 5s           # how often list files are checked for changes
//	reload_settle: 2s             # a changed file is read once it is this old (not mid-write)
//	max_tags: 20
//	max_text_bytes: 1048576       # TEXT only: bytes of each text matched (1024..64 MiB)
//
// Result: verdict fail or pass, score, tags "<list>:<pattern>" (each
// distinct pattern once), attrs "lists" (matched list names, comma
// separated) and "matches" (distinct patterns). TEXT also tags text it
// did not match: the MIME walker's limit findings (mime.limit.*), and
// text.limit.bytes when a text was longer than max_text_bytes.
package textfilter

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/mime"
)

// Stage is a TEXT or SUBJECT stage.
type Stage struct {
	subjectOnly bool
	now         func() time.Time // injected clock for the reload check
	log         *slog.Logger     // nil: slog's default, which Serve points at the gateway

	mu        sync.Mutex // serialises reloads
	cfg       config
	env       sdk.Env
	seen      []fileStamp // the list files as last read, whether they loaded or not
	set       atomic.Pointer[ruleset]
	lastCheck atomic.Int64 // unix nanoseconds of the last reload check
}

var (
	_ sdk.Stage         = (*Stage)(nil)
	_ sdk.ConfigChecker = (*Stage)(nil)
)

// NewText returns a TEXT stage.
func NewText() sdk.Stage { return &Stage{now: time.Now} }

// NewSubject returns a SUBJECT stage.
func NewSubject() sdk.Stage { return &Stage{subjectOnly: true, now: time.Now} }

// New returns a TEXT stage (the package's main stage).
func New() sdk.Stage { return NewText() }

// Info implements sdk.Stage.
func (s *Stage) Info() sdk.Info {
	name := "textfilter"
	if s.subjectOnly {
		name = "subject"
	}
	return sdk.Info{Name: name, Version: "1.0.0", Phases: []sdk.Phase{sdk.PhaseData}}
}

// Configure implements sdk.Stage: it validates the config and loads every list.
func (s *Stage) Configure(_ context.Context, env sdk.Env, raw map[string]any) error {
	cfg, err := parseConfig(raw, s.subjectOnly)
	if err != nil {
		return err
	}
	set, err := loadRuleset(cfg, env.ConfigDir)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg, s.env, s.seen = cfg, env, set.stamps
	s.set.Store(set)
	s.lastCheck.Store(s.now().UnixNano())
	return nil
}

// CheckConfig implements sdk.ConfigChecker: it reads and compiles every
// list as Configure does and keeps nothing.
func (s *Stage) CheckConfig(_ context.Context, env sdk.Env, raw map[string]any) error {
	cfg, err := parseConfig(raw, s.subjectOnly)
	if err != nil {
		return err
	}
	_, err = loadRuleset(cfg, env.ConfigDir)
	return err
}

// Check implements sdk.Stage.
func (s *Stage) Check(ctx context.Context, req *sdk.Request) (*sdk.Result, error) {
	set := s.set.Load()
	if set == nil {
		return nil, fmt.Errorf("textfilter: not configured")
	}
	if req.Message == nil {
		return &sdk.Result{Verdict: sdk.VerdictNone}, nil
	}
	set = s.maybeReload(set)
	texts, limits, err := s.texts(ctx, req.Message, set.cfg.Headers)
	if err != nil {
		return nil, err
	}
	cut := clip(texts, set.cfg.MaxTextBytes)
	hits, grew, err := set.match(ctx, texts)
	if err != nil {
		return nil, err
	}
	if (cut || grew) && !s.subjectOnly {
		limits = append(limits, tagTextLimit)
	}
	res := set.result(hits)
	// Text the walker did not reach was not matched: the tags say so, for
	// a rule to act on (a word hidden 21 levels deep, or after 500 parts,
	// passed untagged), as execfilter tags archive.limit.
	res.Tags = append(res.Tags, limits...)
	return res, nil
}

// tagTextLimit says a text was longer than max_text_bytes: its rest was
// not matched.
const tagTextLimit = "text.limit.bytes"

// clip cuts each text to its first max bytes (at a character boundary)
// and reports whether it cut any. max 0 cuts nothing.
func clip(texts []string, max int) bool {
	cut := false
	for i, t := range texts {
		if max > 0 && len(t) > max {
			texts[i], cut = clipString(t, max), true
		}
	}
	return cut
}

// clipString is the first max bytes of t (len(t) > max), ending on a
// whole character.
func clipString(t string, max int) string {
	n := max
	for n > 0 && !utf8.RuneStart(t[n]) {
		n--
	}
	return t[:n]
}

// mimeLimits are the walker's defaults, asking for the text alone: the
// stage reads no attachment's bytes, and decoding them cost a 20 MB base64
// attachment 35 MB. The limits and their findings come out the same.
var mimeLimits = func() mime.Limits {
	l := mime.DefaultLimits()
	l.TextOnly = true
	return l
}()

// unreadFindings are the walker's findings that leave text unmatched.
var unreadFindings = map[string]bool{mime.FindPartsLimit: true, mime.FindDepthLimit: true,
	mime.FindTotalLimit: true, mime.FindPartTruncated: true}

// texts collects the decoded text to match, and the findings of the MIME
// walk that left some of it out.
func (s *Stage) texts(ctx context.Context, msg *sdk.Message, headers []string) (texts, limits []string, err error) {
	if s.subjectOnly {
		return []string{mime.DecodeHeader(msg.Get("Subject"))}, nil, nil
	}
	m, err := mime.ParseMessage(ctx, msg, mimeLimits)
	if err != nil {
		return nil, nil, fmt.Errorf("textfilter: read message: %w", err)
	}
	for _, f := range m.Findings {
		if unreadFindings[f] {
			limits = append(limits, f)
		}
	}
	out := []string{m.Subject}
	for _, f := range m.Header {
		for _, h := range headers {
			if strings.EqualFold(f.Name, h) {
				out = append(out, f.Value)
			}
		}
	}
	for _, p := range m.Parts {
		if p.IsText {
			out = append(out, p.Text)
		}
	}
	return out, limits, nil
}

// maybeReload re-reads the lists when a file changed, at most once per
// reload interval. A list that no longer loads keeps the previous rules:
// a half-edited file must not switch filtering off. Its versions are
// remembered all the same, so that it is read, and its error logged, once
// per change rather than every interval.
func (s *Stage) maybeReload(set *ruleset) *ruleset {
	now := s.now().UnixNano()
	last := s.lastCheck.Load()
	if now-last < int64(set.cfg.ReloadInterval) || !s.lastCheck.CompareAndSwap(last, now) {
		return set
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	set = s.set.Load() // a Configure may have replaced it meanwhile
	if !changed(s.seen, set.cfg.ReloadSettle, time.Unix(0, now)) {
		return set
	}
	// Stamped before reading: a file changed while it is read is stamped
	// older than what was read, and read again, rather than the reverse.
	tried := restamp(s.seen)
	files := strings.Join(changedPaths(s.seen, tried), ",")
	fresh, err := loadRuleset(s.cfg, s.env.ConfigDir)
	if err != nil {
		s.seen = tried
		set.reloadErr.Store(err.Error())
		// Nobody reads attrs.reload_error unless a rule logs it: without
		// this line the patterns an admin just added would silently not
		// take effect.
		s.logger().Error(s.Info().Name+": changed list file refused, keeping the previous list", "error", err, "changed", files)
		return set
	}
	s.seen = fresh.stamps
	s.set.Store(fresh)
	s.logger().Info(s.Info().Name+": changed list files loaded", "changed", files)
	return fresh
}

func (s *Stage) logger() *slog.Logger {
	if s.log != nil {
		return s.log
	}
	return slog.Default()
}

// result turns matches into a Result.
func (r *ruleset) result(hits map[int]bool) *sdk.Result {
	res := &sdk.Result{Verdict: sdk.VerdictPass, Attrs: map[string]string{}}
	if e, _ := r.reloadErr.Load().(string); e != "" {
		res.Attrs["reload_error"] = e
	}
	ids := make([]int, 0, len(hits))
	for id := range hits {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	lists := map[string]bool{}
	var names []string
	for _, id := range ids {
		p := r.patterns[id]
		if r.cfg.Score == "count" {
			res.Score++
		} else {
			res.Score += p.weight
		}
		if len(res.Tags) < r.cfg.MaxTags {
			res.Tags = append(res.Tags, p.list+":"+p.text)
		}
		if !lists[p.list] {
			lists[p.list] = true
			names = append(names, p.list)
		}
	}
	res.Attrs["matches"] = strconv.Itoa(len(ids))
	res.Attrs["lists"] = strings.Join(names, ",")
	if len(ids) > 0 && res.Score >= r.cfg.Threshold {
		res.Verdict = sdk.VerdictFail
		res.Reason = "matched " + res.Tags[0]
	}
	return res
}
