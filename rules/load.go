package rules

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxIncludeDepth bounds nested includes (a loop is also stopped by seen).
const maxIncludeDepth = 8

// loader collects stages, rules and problems of one Load.
type loader struct {
	probs  Problems
	seen   map[string]bool
	depth  int
	stages []stageSrc
	rules  []ruleSrc
	fns    *funcs
	files  []string // the files parsed, in order
}

// Load reads the rule set of a configuration: first the config file's
// inline stages: and rules: nodes (inlineFile names the config file in
// positions), then every file matched by the include globs, relative to
// configDir, in order (matches of one glob sorted). A glob matching nothing
// is an error, as a literal path that does not exist is: a typo in
// rules.d/*.yaml would otherwise leave the gateway without a stage or a
// rule, and check saying ok. A rule file may itself have include: globs,
// relative to its own directory.
//
// The error, if any, is Problems.
func Load(configDir string, include []string, inlineFile string, inlineStages, inlineRules *yaml.Node) (*Set, error) {
	set, probs := load(configDir, include, inlineFile, inlineStages, inlineRules)
	if len(probs) > 0 {
		return nil, probs
	}
	return set, nil
}

// LoadPartial is Load for a caller that reports problems rather than runs
// the set (`portcullis check`): along with the Problems it returns what
// loaded cleanly, so that the checks of those parts can go on. Its Stages
// are the stages whose entries had no problem (a bad key, value or name,
// a missing name or plugin, a duplicate); a stage whose when: expression
// does not compile is kept, as its plugin and config are not in question.
// Its Rules are the rules whose entries parsed and compiled without a
// problem. Never run a set that came with problems.
func LoadPartial(configDir string, include []string, inlineFile string, inlineStages, inlineRules *yaml.Node) (*Set, error) {
	set, probs := load(configDir, include, inlineFile, inlineStages, inlineRules)
	if len(probs) > 0 {
		return set, probs
	}
	return set, nil
}

func load(configDir string, include []string, inlineFile string, inlineStages, inlineRules *yaml.Node) (*Set, Problems) {
	l := &loader{seen: map[string]bool{}, fns: newFuncs()}
	inline := &source{name: inlineFile}
	l.files = append(l.files, inlineFile)
	if inlineFile != "" {
		if b, err := os.ReadFile(inlineFile); err == nil {
			inline.lines = strings.Split(string(b), "\n")
		}
		l.seen[abs(inlineFile)] = true
	}
	if inlineStages != nil && inlineStages.Kind != 0 {
		l.parseStages(inline, inlineStages)
	}
	if inlineRules != nil && inlineRules.Kind != 0 {
		l.parseRules(inline, inlineRules)
	}
	for _, g := range include {
		l.include(Pos{File: inlineFile}, g, configDir)
	}
	return l.finish()
}

// Parse parses one rule file's bytes on its own (no includes are followed);
// name is used in positions. It is what the fuzz test drives.
func Parse(name string, data []byte) (*Set, error) {
	l := &loader{seen: map[string]bool{}, fns: newFuncs(), depth: maxIncludeDepth}
	l.files = append(l.files, name)
	l.parseBytes(name, data, "")
	set, probs := l.finish()
	if len(probs) > 0 {
		return nil, probs
	}
	return set, nil
}

func abs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// includeNode handles a rule file's include: key.
func (l *loader) includeNode(src *source, n *yaml.Node, dir string) {
	for _, g := range l.list(src, n, "include") {
		if s, ok := l.str(src, g, "include"); ok {
			l.include(src.at(g), s, dir)
		}
	}
}

// hiddenMatch reports a file that glob pattern matched through a wildcard
// at a name starting with a dot, which a shell's glob leaves out: an
// editor's lock or backup file beside a rule file (Emacs's .#a.yaml, a
// dangling link while the file is edited) is no rule file, and a reload
// at that moment must not fail on it. A dot written in the pattern
// (rules.d/.*.yaml) matches as it says.
func hiddenMatch(pattern, file string) bool {
	pp := strings.Split(filepath.ToSlash(pattern), "/")
	fp := strings.Split(filepath.ToSlash(file), "/")
	if len(pp) != len(fp) {
		return false
	}
	for i, c := range pp {
		if strings.HasPrefix(fp[i], ".") && !strings.HasPrefix(c, ".") && strings.ContainsAny(c, "*?[") {
			return true
		}
	}
	return false
}

// emptyDropIn reports whether the directory of glob pattern p exists (its
// directory part has no wildcard) and holds no file but hidden ones.
func emptyDropIn(p string) bool {
	d := filepath.Dir(p)
	if strings.ContainsAny(d, "*?[\\") {
		return false
	}
	entries, err := os.ReadDir(d)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			return false
		}
	}
	return true
}

// include loads every file matched by glob g relative to dir.
func (l *loader) include(at Pos, g, dir string) {
	if l.depth >= maxIncludeDepth {
		l.problem(at, "include %q: includes nested deeper than %d", g, maxIncludeDepth)
		return
	}
	p := g
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	var files []string
	if strings.ContainsAny(g, "*?[\\") {
		m, err := filepath.Glob(p)
		if err != nil {
			l.problem(at, "include %q: %v", g, err)
			return
		}
		sort.Strings(m)
		files = slices.DeleteFunc(m, func(f string) bool { return hiddenMatch(p, f) })
		if len(files) == 0 && !emptyDropIn(p) {
			// A typo in the directory or in the pattern loads no rules
			// at all, which a running gateway would take as "accept
			// everything": say so, as for a literal path that is
			// missing. An empty drop-in directory is no typo: it is
			// where rule files go when there are some. A hidden file
			// (an editor's lock) alone is no rule file either.
			l.problem(at, "include %q: matches no file", g)
			return
		}
	} else {
		if _, err := os.Stat(p); err != nil {
			l.problem(at, "include %q: %v", g, errors.Unwrap(err))
			return
		}
		files = []string{p}
	}
	for _, f := range files {
		if l.seen[abs(f)] {
			continue // a file matched twice (or a loop) is read once
		}
		l.seen[abs(f)] = true
		data, err := os.ReadFile(f)
		if err != nil {
			l.problem(Pos{File: f}, "%v", errors.Unwrap(err))
			continue
		}
		l.depth++
		l.files = append(l.files, f)
		l.parseBytes(f, data, filepath.Dir(f))
		l.depth--
	}
}

func (l *loader) parseBytes(name string, data []byte, dir string) {
	src := &source{name: name, lines: strings.Split(string(data), "\n")}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		l.probs = append(l.probs, yamlProblem(name, data, err))
		return
	}
	l.parseFile(src, &doc, dir)
}

// finish checks names, compiles every expression and sets load-time
// phases. With problems, the set holds the stages and rules that had none
// in their own entries (see LoadPartial).
func (l *loader) finish() (*Set, Problems) {
	set := &Set{fns: l.fns, files: l.files}
	known := map[string]Pos{}
	for _, ss := range l.stages {
		if first, dup := known[ss.st.Name]; dup && ss.st.Name != "" {
			l.problem(ss.st.Pos, "duplicate stage %q (first at %s)", ss.st.Name, first)
			continue
		}
		known[ss.st.Name] = ss.st.Pos
		set.Stages = append(set.Stages, ss.st)
	}
	for _, ss := range l.stages {
		if ss.when != nil {
			ss.st.When = l.compile(ss.src.expr(ss.when), true, known)
		}
	}
	ruleNames := map[string]Pos{}
	badRules := map[*Rule]bool{}
	for _, rs := range l.rules {
		before := len(l.probs)
		if first, dup := ruleNames[rs.r.Name]; dup && rs.r.Name != "" {
			l.problem(rs.r.Pos, "duplicate rule %q (first at %s)", rs.r.Name, first)
		}
		ruleNames[rs.r.Name] = rs.r.Pos
		l.compileRule(rs, known)
		set.Rules = append(set.Rules, rs.r)
		if rs.bad || len(l.probs) > before {
			badRules[rs.r] = true
		}
	}
	l.probs = append(l.probs, set.assignPhases(nil)...)
	if len(l.probs) == 0 {
		return set, nil
	}
	sortProblems(l.probs)
	badStages := map[*Stage]bool{}
	for _, ss := range l.stages {
		badStages[ss.st] = ss.bad
	}
	set.Stages = slices.DeleteFunc(set.Stages, func(st *Stage) bool { return badStages[st] })
	set.Rules = slices.DeleteFunc(set.Rules, func(r *Rule) bool { return badRules[r] })
	return set, l.probs
}

func (l *loader) compile(where exprSrc, asBool bool, known map[string]Pos) *Program {
	p, probs := l.fns.compile(where.node.Value, where, asBool)
	l.probs = append(l.probs, probs...)
	if p != nil {
		l.checkRefs(p.results, known)
	}
	return p
}

func (l *loader) checkRefs(refs []resultRef, known map[string]Pos) {
	for _, ref := range refs {
		if _, ok := known[ref.stage]; !ok {
			l.problem(ref.pos, "unknown stage %q in results.%s", ref.stage, ref.stage)
		}
	}
}

func (l *loader) compileRule(rs ruleSrc, known map[string]Pos) {
	r := rs.r
	if rs.when != nil {
		r.When = l.compile(rs.src.expr(rs.when), true, known)
	}
	if rs.reply != nil && (r.Action == ActionReject || r.Action == ActionTempfail) {
		reply, probs := l.fns.compileReply(rs.reply, rs.src.expr(rs.reply), r.Action)
		l.probs = append(l.probs, probs...)
		r.Reply = reply
		if reply != nil {
			l.templateRefs(reply.Text, known)
		}
	}
	if rs.hdrValue != nil && r.Header != nil {
		t, probs := l.fns.compileTemplate(rs.hdrValue.Value, rs.src.expr(rs.hdrValue), 0)
		l.probs = append(l.probs, probs...)
		r.Header.Value = t
		l.templateRefs(t, known)
	} else if r.Header != nil {
		r.Header.Value = &Template{}
		if rs.defaultTag {
			r.Header.Value.parts = []tplPart{{lit: r.Name}}
		}
	}
}

func (l *loader) templateRefs(t *Template, known map[string]Pos) {
	for _, p := range t.parts {
		if p.prog != nil {
			l.checkRefs(p.prog.results, known)
		}
	}
}

// sortProblems orders problems by file (in the order files were read),
// then line and column.
func sortProblems(ps Problems) { sortByFiles(ps, nil) }

// SortProblems orders problems about the set's files (its own and those of
// checks made on it, such as a stage's config refused by its plugin) by
// file, in the order the files were read (the config file first), then
// line and column. Problems in files the set did not read come last, in
// the order they first appear.
func (s *Set) SortProblems(ps Problems) { sortByFiles(ps, s.files) }

// sortByFiles orders ps by file (files first, in their order, then the
// others in the order they first appear), then line and column.
func sortByFiles(ps Problems, files []string) {
	order := map[string]int{}
	for _, f := range files {
		if _, ok := order[f]; !ok {
			order[f] = len(order)
		}
	}
	for _, p := range ps {
		if _, ok := order[p.Pos.File]; !ok {
			order[p.Pos.File] = len(order)
		}
	}
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i].Pos, ps[j].Pos
		if a.File != b.File {
			return order[a.File] < order[b.File]
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}
