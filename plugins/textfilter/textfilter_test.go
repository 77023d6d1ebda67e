package textfilter

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/plugintest"
	"golang.org/x/text/cases"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/unicode/norm"
)

func configure(t *testing.T, st sdk.Stage, dir string, cfg map[string]any) {
	t.Helper()
	if err := st.Configure(context.Background(), sdk.Env{StageName: "text", ConfigDir: dir}, cfg); err != nil {
		t.Fatalf("Configure: %v", err)
	}
}

func message(t *testing.T, name string) *sdk.Message {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name+".eml"))
	if err != nil {
		t.Fatal(err)
	}
	var hdr []sdk.HeaderField
	head, _, _ := strings.Cut(string(raw), "\r\n\r\n")
	for _, line := range strings.Split(head, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			hdr = append(hdr, sdk.HeaderField{Name: k, Value: strings.TrimSpace(v)})
		}
	}
	return sdk.NewBytesMessage(hdr, raw)
}

func check(t *testing.T, st sdk.Stage, msg *sdk.Message) *sdk.Result {
	t.Helper()
	res, err := st.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseData, Message: msg})
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return res
}

var listConfig1 = map[string]any{"lists": []any{map[string]any{"name": "spam", "file": "spam.txt"}}}

func TestGoldenMessages(t *testing.T) {
	tests := []struct {
		file        string
		textTags    []string
		subjectTags []string
	}{
		{"iso2022jp_subject", []string{"spam:未承諾広告"}, []string{"spam:未承諾広告"}},
		{"sjis_base64", []string{"spam:出会い系"}, nil},
		{"eucjp_qp", []string{"spam:儲かる"}, nil},
		{"sjis_mislabelled", []string{"spam:お支払い"}, nil},
		{"widths", []string{"spam:spam", "spam:ｶﾀｶﾅ", `spam:re:free\s+money`}, []string{"spam:spam"}},
		{"clean", nil, nil},
	}
	text, subject := NewText(), NewSubject()
	configure(t, text, "testdata", listConfig1)
	configure(t, subject, "testdata", listConfig1)
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			msg := message(t, tc.file)
			for _, c := range []struct {
				st   sdk.Stage
				want []string
			}{{text, tc.textTags}, {subject, tc.subjectTags}} {
				res := check(t, c.st, msg)
				if !slices.Equal(res.Tags, c.want) {
					t.Errorf("%s tags %q, want %q", c.st.Info().Name, res.Tags, c.want)
				}
				wantVerdict := sdk.VerdictPass
				if len(c.want) > 0 {
					wantVerdict = sdk.VerdictFail
				}
				if res.Verdict != wantVerdict || res.Score != float64(len(c.want)) {
					t.Errorf("%s verdict %s score %v, want %s %d", c.st.Info().Name, res.Verdict, res.Score, wantVerdict, len(c.want))
				}
			}
		})
	}
}

func TestScoring(t *testing.T) {
	msg := sdk.NewBytesMessage([]sdk.HeaderField{{Name: "Subject", Value: "BITCOIN spam"}},
		[]byte("Subject: BITCOIN spam\r\nX-Note: casino\r\n\r\nbody\r\n"))
	tests := []struct {
		name   string
		cfg    map[string]any
		score  float64
		tags   int
		result sdk.Verdict
	}{
		{"weights", map[string]any{"lists": []any{map[string]any{"name": "spam", "file": "spam.txt"}}}, 6, 2, sdk.VerdictFail},
		{"count", map[string]any{"score": "count", "lists": []any{map[string]any{"name": "spam", "file": "spam.txt"}}}, 2, 2, sdk.VerdictFail},
		{"threshold", map[string]any{"threshold": 10, "lists": []any{map[string]any{"name": "spam", "file": "spam.txt"}}}, 6, 2, sdk.VerdictPass},
		{"headers", map[string]any{"headers": []any{"X-Note"}, "lists": []any{map[string]any{"name": "g", "patterns": []any{"casino"}, "weight": 2}}}, 2, 1, sdk.VerdictFail},
		{"header not chosen", map[string]any{"lists": []any{map[string]any{"name": "g", "patterns": []any{"casino"}}}}, 0, 0, sdk.VerdictPass},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := NewText()
			configure(t, st, "testdata", tc.cfg)
			res := check(t, st, msg)
			if res.Score != tc.score || len(res.Tags) != tc.tags || res.Verdict != tc.result {
				t.Errorf("got score %v tags %q verdict %s; want %v, %d, %s", res.Score, res.Tags, res.Verdict, tc.score, tc.tags, tc.result)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  map[string]any
		want string
	}{
		{"no lists", map[string]any{}, "at least one list"},
		{"unknown key", map[string]any{"listz": 1, "lists": []any{map[string]any{"name": "a", "patterns": []any{"x"}}}}, "listz"},
		{"bad score", map[string]any{"score": "max", "lists": []any{map[string]any{"name": "a", "patterns": []any{"x"}}}}, "score"},
		{"missing file", map[string]any{"lists": []any{map[string]any{"name": "a", "file": "nope.txt"}}}, "nope.txt"},
		{"bad regex", map[string]any{"lists": []any{map[string]any{"name": "a", "patterns": []any{"re:(["}}}}, "regular expression"},
		{"no name", map[string]any{"lists": []any{map[string]any{"patterns": []any{"x"}}}}, "name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := NewText().Configure(context.Background(), sdk.Env{ConfigDir: "testdata"}, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	err := NewSubject().Configure(context.Background(), sdk.Env{}, map[string]any{"headers": []any{"From"},
		"lists": []any{map[string]any{"name": "a", "patterns": []any{"x"}}}})
	if err == nil {
		t.Error("subject stage accepted headers")
	}
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "l.txt")
	if err := os.WriteFile(list, []byte("alpha\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	st := &Stage{now: func() time.Time { return now }}
	configure(t, st, dir, map[string]any{"reload_interval": "10s", "reload_settle": "30s", "lists": []any{map[string]any{"name": "l", "file": "l.txt"}}})
	msg := sdk.NewBytesMessage(nil, []byte("Subject: beta\r\n\r\nalpha beta\r\n"))
	steps := []struct {
		content string
		advance time.Duration
		want    []string
		errAttr bool
	}{
		{"", 0, []string{"l:alpha"}, false},
		{"beta\n", time.Second, []string{"l:alpha"}, false},            // within the interval: not yet re-read
		{"", 10 * time.Second, []string{"l:alpha"}, false},             // changed 11 s ago: not settled yet
		{"", 20 * time.Second, []string{"l:beta"}, false},              // settled: re-read
		{"re:([\nalpha\n", 31 * time.Second, []string{"l:beta"}, true}, // broken file keeps the old rules
	}
	for i, s := range steps {
		if s.content != "" {
			if err := os.WriteFile(list, []byte(s.content), 0o644); err != nil {
				t.Fatal(err)
			}
			mod := now.Add(time.Duration(i) * time.Millisecond) // written "now", distinct per step
			os.Chtimes(list, mod, mod)
		}
		now = now.Add(s.advance)
		res := check(t, st, msg)
		if !slices.Equal(res.Tags, s.want) || (res.Attrs["reload_error"] != "") != s.errAttr {
			t.Errorf("step %d: tags %q attrs %v; want %q, reload error %v", i, res.Tags, res.Attrs, s.want, s.errAttr)
		}
	}
}

// TestReloadLogged: a changed list that is refused says so in the log,
// once (not on every message or every reload_interval), with the file,
// line and problem; a list file that went away likewise; and a later
// change that loads says so too. Before, only attrs.reload_error knew,
// and patterns just added silently did not match.
func TestReloadLogged(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "subject.txt")
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(list, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("viagra\n")
	now := time.Now().Add(time.Hour) // every write settled
	var logs strings.Builder
	st := &Stage{subjectOnly: true, now: func() time.Time { return now },
		log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{ReplaceAttr: dropTime}))}
	configure(t, st, dir, map[string]any{"reload_interval": "10s", "lists": []any{map[string]any{"name": "subject", "file": "subject.txt"}}})
	msg := sdk.NewBytesMessage([]sdk.HeaderField{{Name: "Subject", Value: "cialis offer"}}, []byte("Subject: cialis offer\r\n\r\n"))
	expectLog := func(step, want string) {
		t.Helper()
		if logs.String() != want {
			t.Errorf("%s: log\n%s\nwant\n%s", step, logs.String(), want)
		}
		logs.Reset()
	}
	checks := func(step string, wantTags []string) {
		t.Helper()
		for range 3 {
			now = now.Add(11 * time.Second)
			if res := check(t, st, msg); !slices.Equal(res.Tags, wantTags) {
				t.Fatalf("%s: tags %q, want %q", step, res.Tags, wantTags)
			}
		}
	}

	write("viagra\nre:(unclosed\ncialis\n")
	checks("broken list", nil)
	expectLog("broken list", `level=ERROR msg="subject: changed list file refused, keeping the previous list" `+
		`error="list `+list+`: subject:2: bad regular expression \"(unclosed\": error parsing regexp: missing closing ): `+"`(?i)(unclosed`"+`" `+
		`changed=`+list+"\n")

	if err := os.Remove(list); err != nil {
		t.Fatal(err)
	}
	checks("list gone", nil)
	expectLog("list gone", `level=ERROR msg="subject: changed list file refused, keeping the previous list" `+
		`error="list subject: open `+list+`: no such file or directory" changed=`+list+"\n")

	write("viagra\ncialis\n")
	checks("fixed list", []string{"subject:cialis"})
	expectLog("fixed list", `level=INFO msg="subject: changed list files loaded" changed=`+list+"\n")
}

// dropTime leaves the time out of log lines, for comparing them whole.
func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"ＳＰＡＭ", "spam"},
		{"ｶﾀｶﾅ", "カタカナ"},
		{"Straße", "strasse"},
		{"free\r\n\t money", "free money"},
		{"ＦＲＥＥ　ＭＯＮＥＹ", "free money"},
		{"①", "1"},
		// No space between words in Japanese: a wrapped line or a spacing
		// trick does not break a word, where Latin or Hangul keeps it.
		{"口座\r\n確認", "口座確認"},
		{"口座　確認", "口座確認"},
		{"出会い 系サイト", "出会い系サイト"},
		{"お知らせ\nABC 確認", "お知らせ abc 確認"},
		{"한국 어", "한국 어"},
		// One JIS character whatever table decoded it (jisFold); an ASCII
		// tilde is no wave dash.
		{"10～20時", "10〜20時"},
		{"10〜20時 http://example.test/~user", "10〜20時 http://example.test/~user"},
		{"∥‖―—－−", "∥∥――--"},
	}
	for _, tc := range tests {
		if got := normalize(tc.in); got != tc.want {
			t.Errorf("normalize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// dropSpacesBetweenCJK is the reference for normalize's last rule: a space
// between two kana or ideographs goes.
func dropSpacesBetweenCJK(s string) string {
	r := []rune(s)
	var out []rune
	for i, c := range r {
		if c == ' ' && i > 0 && i+1 < len(r) && unspaced(r[i-1]) && unspaced(r[i+1]) {
			continue
		}
		out = append(out, c)
	}
	return string(out)
}

// TestNormalizeAgreesWithFold checks the fast path against the plain
// NFKC + cases.Fold pipeline on mixed text.
func TestNormalizeAgreesWithFold(t *testing.T) {
	visible := func(r rune) rune {
		if ignorable(r) {
			return -1
		}
		return r
	}
	for _, s := range []string{"ＳＰＡＭ ｶﾀｶﾅ Straße ΣΊΣΥΦΟΣ Привет 未承諾広告 ＡＢＣ①ﾊﾟﾝ", "École ǅ ﬁ İstanbul", "ｶﾞｷﾞ 한국어 Ǆ",
		"vi\u00adＡ\u200bgra 未\u200d承\u3164諾 ﾊ\uffa0ﾟ Σ\ufe0fΣ \u200b", "10～20時 ～〜~ ∥‖ ―— －−"} {
		want := dropSpacesBetweenCJK(strings.Join(strings.Fields(strings.Map(visible, cases.Fold().String(norm.NFKC.String(jisFold.Replace(s))))), " "))
		if got := normalize(s); got != want {
			t.Errorf("normalize(%q) = %q, want %q", s, got, want)
		}
	}
}

// TestExampleConfig runs the example rule file's stages on the golden messages.
func TestExampleConfig(t *testing.T) {
	text, subject := NewText(), NewSubject()
	configure(t, text, "testdata", plugintest.StageConfig(t, "../../examples/rules/content.yaml", "textfilter"))
	configure(t, subject, "testdata", plugintest.StageConfig(t, "../../examples/rules/content.yaml", "subject"))
	if res := check(t, subject, message(t, "iso2022jp_subject")); res.Verdict != sdk.VerdictFail {
		t.Errorf("subject stage on the ISO-2022-JP subject: %+v", res)
	}
	if res := check(t, text, message(t, "clean")); res.Verdict != sdk.VerdictPass {
		t.Errorf("text stage on a clean message: %+v", res)
	}
}

// TestConcurrentReload checks many messages at once while the list file
// changes under them (run with -race).
func TestConcurrentReload(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "l.txt")
	os.WriteFile(list, []byte("alpha\n"), 0o644)
	st := NewText()
	configure(t, st, dir, map[string]any{"reload_interval": "0s", "reload_settle": "0s", "lists": []any{map[string]any{"name": "l", "file": "l.txt"}}})
	msg := sdk.NewBytesMessage(nil, []byte("Subject: x\r\n\r\nalpha beta\r\n"))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 50; i++ { // new file, renamed over the old: the documented way
			tmp := filepath.Join(dir, fmt.Sprintf("l.%d.tmp", i))
			os.WriteFile(tmp, []byte(strings.Repeat("alpha\n", i%3+1)+"beta\n"), 0o644)
			os.Rename(tmp, list)
		}
	}()
	errs := make(chan string, 400)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				res, err := st.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseData, Message: msg})
				if err != nil || !slices.Contains(res.Tags, "l:alpha") {
					errs <- fmt.Sprintf("%v %v", res, err)
				}
			}
		}()
	}
	wg.Wait()
	<-done
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestNFKCFastPath compares nfkc with norm.NFKC on random strings of
// characters chosen to hit the seams: combining marks after stable
// characters, half-width kana with voicing marks, full-width forms.
func TestNFKCFastPath(t *testing.T) {
	pieces := []string{"a", "e", "Z", " ", "か", "ハ", "\u3099", "\u309a", "\u0301", "\u0308", "ｶ", "ﾞ", "ﾟ", "ﾊ", "Ａ", "①", "㈱",
		"\u3000", "漢", "ー", "。", "Å", "ﬁ", "가", "\u1100", "\u1161", "ゟ", "ヿ", "\u00a0", "ǅ", "～", "〜", "‖", "—", "−"}
	r := rand.New(rand.NewPCG(11, 12))
	for i := 0; i < 5000; i++ {
		var b strings.Builder
		for j := r.IntN(12); j >= 0; j-- {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		s := b.String()
		if got, want := nfkc(s), norm.NFKC.String(jisFold.Replace(s)); got != want {
			t.Fatalf("nfkc(%+q) = %+q, want %+q", s, got, want)
		}
	}
}

func TestShiftJISListFile(t *testing.T) {
	dir := t.TempDir()
	sj, err := japanese.ShiftJIS.NewEncoder().String("# 旧サーバーの一覧\r\n未承諾広告\r\n出会い系\r\n")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "old.txt"), []byte(sj), 0o644)
	st := NewText()
	configure(t, st, dir, map[string]any{"lists": []any{map[string]any{"name": "old", "file": "old.txt"}}})
	res := check(t, st, message(t, "sjis_base64"))
	if !slices.Equal(res.Tags, []string{"old:出会い系"}) {
		t.Errorf("tags %q", res.Tags)
	}
}

// TestJapaneseShapes matches Japanese words in message shapes the golden
// files do not hold: raw ISO-2022-JP and Shift_JIS Subjects as old mailers
// send them, an encoded-word split inside a JIS character, a body with no
// charset, HTML that declares its charset only in a meta tag.
func TestJapaneseShapes(t *testing.T) {
	jis := func(s string) string { out, _ := japanese.ISO2022JP.NewEncoder().String(s); return out }
	sj := func(s string) string { out, _ := japanese.ShiftJIS.NewEncoder().String(s); return out }
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	subj := jis("【未承諾広告】激安")
	tests := []struct {
		name, subject, head, body string
		subjectMatch              bool
	}{
		{"raw ISO-2022-JP subject", subj, "", "body", true},
		{"raw Shift_JIS subject", sj("【未承諾広告】激安"), "", "body", true},
		{"encoded-words split in a JIS character", "=?ISO-2022-JP?B?" + b64(subj[:6]) + "?=\r\n =?ISO-2022-JP?B?" + b64(subj[6:]) + "?=", "", "body", true},
		{"ISO-2022-JP body without charset", "hello", "Content-Type: text/plain\r\n", jis("未承諾広告です"), false},
		{"HTML meta charset", "hello", "Content-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n",
			b64(`<html><head><meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS"></head><body>` + sj("ｶｼﾞﾉ") + `</body></html>`), false},
		{"a word wrapped across lines", "hello", "Content-Type: text/plain; charset=ISO-2022-JP\r\n",
			jis("未承諾") + "\r\n" + jis("広告です"), false},
		{"a word spaced out", "hello", "Content-Type: text/plain; charset=ISO-2022-JP\r\n", jis("未承諾　広告"), false},
	}
	cfg := map[string]any{"lists": []any{map[string]any{"name": "ja", "patterns": []any{"未承諾広告", "カジノ"}}}}
	text, subject := NewText(), NewSubject()
	configure(t, text, "testdata", cfg)
	configure(t, subject, "testdata", cfg)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := "From: a@example.test\r\nSubject: " + tc.subject + "\r\nMIME-Version: 1.0\r\n" + tc.head + "\r\n" + tc.body + "\r\n"
			msg := sdk.NewBytesMessage([]sdk.HeaderField{{Name: "Subject", Value: tc.subject}}, []byte(raw))
			if res := check(t, text, msg); res.Verdict != sdk.VerdictFail {
				t.Errorf("text stage: %+v", res)
			}
			if res := check(t, subject, msg); (res.Verdict == sdk.VerdictFail) != tc.subjectMatch {
				t.Errorf("subject stage: %+v", res)
			}
		})
	}
}

// TestWaveDash: the wave dash a Japanese admin types (U+301C, as JIS,
// macOS and most input methods write it) matches the one JIS character
// 0x2141 in ISO-2022-JP, Shift_JIS and EUC-JP mail (which x/text, like
// Windows, decodes as U+FF5E) and in UTF-8 mail of either form; and it
// does not match an ASCII tilde.
func TestWaveDash(t *testing.T) {
	encs := map[string]encoding.Encoding{"iso-2022-jp": japanese.ISO2022JP, "shift_jis": japanese.ShiftJIS, "euc-jp": japanese.EUCJP}
	for _, pattern := range []string{"10〜20時", "10～20時", "re:10〜2\\d時"} {
		st := NewText()
		configure(t, st, "testdata", map[string]any{"lists": []any{map[string]any{"name": "w", "patterns": []any{pattern}}}})
		body := func(charset, text string) *sdk.Message {
			raw := "From: a@example.test\r\nSubject: x\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=" + charset +
				"\r\n\r\n" + text + "\r\n"
			return sdk.NewBytesMessage(nil, []byte(raw))
		}
		for name, e := range encs {
			text, err := e.NewEncoder().String("受付は10～20時です") // x/text encodes U+FF5E as JIS 0x2141
			if err != nil {
				t.Fatal(err)
			}
			if res := check(t, st, body(name, text)); res.Verdict != sdk.VerdictFail {
				t.Errorf("%s: pattern %q, wave dash in %s: %s", name, pattern, name, res.Verdict)
			}
		}
		for _, text := range []string{"受付は10〜20時です", "受付は10～20時です"} {
			if res := check(t, st, body("utf-8", text)); res.Verdict != sdk.VerdictFail {
				t.Errorf("pattern %q, UTF-8 %q: %s", pattern, text, res.Verdict)
			}
		}
		if res := check(t, st, body("utf-8", "see http://example.test/10~20時")); res.Verdict == sdk.VerdictFail {
			t.Errorf("pattern %q matched an ASCII tilde", pattern)
		}
	}
}

// TestReloadOnReplace: a list replaced by renaming a new file over it (vim,
// sed -i, a Kubernetes ConfigMap swap) is re-read even when the new file
// has the old one's size and time.
func TestReloadOnReplace(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "l.txt")
	if err := os.WriteFile(list, []byte("alpha\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	if err := os.Chtimes(list, now, now); err != nil { // the stage's clock is fake
		t.Fatal(err)
	}
	old, err := os.Stat(list)
	if err != nil {
		t.Fatal(err)
	}
	st := &Stage{now: func() time.Time { return now }}
	configure(t, st, dir, map[string]any{"reload_interval": "10s", "reload_settle": "0s",
		"lists": []any{map[string]any{"name": "l", "file": "l.txt"}}})
	msg := sdk.NewBytesMessage(nil, []byte("Subject: gamma\r\n\r\nalpha gamma\r\n"))
	if res := check(t, st, msg); !slices.Equal(res.Tags, []string{"l:alpha"}) {
		t.Fatalf("tags %q", res.Tags)
	}
	tmp := filepath.Join(dir, "l.txt.new")
	if err := os.WriteFile(tmp, []byte("gamma\n"), 0o644); err != nil { // same size as "alpha\n"
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, old.ModTime(), old.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, list); err != nil {
		t.Fatal(err)
	}
	now = now.Add(11 * time.Second)
	if res := check(t, st, msg); !slices.Equal(res.Tags, []string{"l:gamma"}) {
		t.Errorf("after the replace: tags %q, want l:gamma", res.Tags)
	}
}

// TestAllListErrors: every list that cannot be read is named, not only the
// first, so that `portcullis check` reports them in one go.
func TestAllListErrors(t *testing.T) {
	dir := t.TempDir()
	err := NewText().Configure(context.Background(), sdk.Env{ConfigDir: dir}, map[string]any{"lists": []any{
		map[string]any{"name": "a", "file": "a.txt"},
		map[string]any{"name": "b", "patterns": []any{"ok"}},
		map[string]any{"name": "c", "file": "c.txt"},
	}})
	if err == nil || !strings.Contains(err.Error(), "list a: ") || !strings.Contains(err.Error(), "list c: ") ||
		strings.Contains(err.Error(), "\n") {
		t.Fatalf("error %v, want both missing lists named on one line", err)
	}
}

// TestFullWidthRegexpPunctuation: a full-width ？ or ［ in a regexp is the
// character a Japanese admin typed, not an operator once NFKC makes it
// ASCII: re:本当？ must not match 日本, re:［広告］ must not match 広報;
// full-width letters still match their ASCII forms, and composed kana
// still compose.
func TestFullWidthRegexpPunctuation(t *testing.T) {
	for _, tc := range []struct {
		pattern, text string
		match         bool
	}{
		{"re:本当？", "日本の本文です", false},
		{"re:本当？", "それは本当?", true},
		{"re:本当？", "それは本当？", true},
		{"re:［広告］", "広報のお知らせ", false},
		{"re:［広告］", "【注意】[広告]のお知らせ", true},
		{"re:（株）", "株式", false},
		{"re:（株）", "㈱テスト", true}, // ㈱ is (株) after NFKC
		{"re:ＦＲＥＥ\\s+ｍｏｎｅｙ", "free   money", true},
		{"re:か\u3099くせい", "がくせい", true}, // a decomposed が still composes
		// A minus in a class is a character, not a range: 杯 lies between
		// 有 and 株. Both JIS minus forms match both, and '-'.
		{"re:[有−株]", "杯", false},
		{"re:[有−株]", "A−B", true},
		{"re:[有－株]", "A-B", true},
		{"re:[株−有]", "有", true}, // a reversed range would not compile
		{"re:[+−*]", "+", true},
	} {
		p, ok, err := parseLine(tc.pattern, 1)
		if err != nil || !ok {
			t.Fatalf("%s: %v", tc.pattern, err)
		}
		if got := p.re.MatchString(normalize(tc.text)); got != tc.match {
			t.Errorf("%s on %q: match %v, want %v (compiled %s)", tc.pattern, tc.text, got, tc.match, p.re)
		}
	}
}

// TestTextPastWalkLimits: text the MIME walker does not reach (nested
// deeper than its limit, or after its last part) is not matched, and the
// result says so with the walker's finding as a tag, for a rule to act on:
// a word hidden 21 levels deep passed untagged.
func TestTextPastWalkLimits(t *testing.T) {
	nested := func(depth int) string {
		var b strings.Builder
		b.WriteString("Subject: s\r\nMIME-Version: 1.0\r\n")
		for i := range depth {
			fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
		}
		b.WriteString("Content-Type: text/plain\r\n\r\nbuy bitcoin now\r\n")
		for i := depth - 1; i >= 0; i-- {
			fmt.Fprintf(&b, "--b%d--\r\n", i)
		}
		return b.String()
	}
	manyParts := func(n int) string {
		var b strings.Builder
		b.WriteString("Subject: s\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"p\"\r\n\r\n")
		for range n {
			b.WriteString("--p\r\nContent-Type: text/plain\r\n\r\nnothing\r\n")
		}
		b.WriteString("--p\r\nContent-Type: text/plain\r\n\r\nbuy bitcoin now\r\n--p--\r\n")
		return b.String()
	}
	for _, tc := range []struct {
		name, msg, want string
		verdict         sdk.Verdict
	}{
		{"depth 5", nested(5), "spam:bitcoin", sdk.VerdictFail},
		{"depth 30", nested(30), "mime.limit.depth", sdk.VerdictPass},
		{"after 600 parts", manyParts(600), "mime.limit.parts", sdk.VerdictPass},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := NewText()
			configure(t, st, "testdata", listConfig1)
			res := check(t, st, sdk.NewBytesMessage([]sdk.HeaderField{{Name: "Subject", Value: "s"}}, []byte(tc.msg)))
			if res.Verdict != tc.verdict || !slices.Contains(res.Tags, tc.want) {
				t.Errorf("verdict %s tags %q, want %s with %s", res.Verdict, res.Tags, tc.verdict, tc.want)
			}
		})
	}
}

// TestRegexpClassNFKC: a class is normalised as a set. NFKC applied to
// each end of a range made the half-width [ｦ-ﾝ] (all JIS X 0201 kana) the
// two characters ヲ and ン, and [ｦ-ﾟ] and [ｰ-ﾝ] reversed ranges that did
// not load. Now a class matches what its members become, and the kana
// its voiced sound marks compose (ｶﾞ is ガ after NFKC) when it holds them.
func TestRegexpClassNFKC(t *testing.T) {
	const text = "ｶﾀｶﾅ ｶﾞｲﾄﾞ ﾊﾟｽﾜｰﾄﾞ ＦＲＥＥ ①⑫ ひらがな"
	for _, tc := range []struct {
		pattern string
		want    []string
	}{
		{"re:[ｦ-ﾝ]{3,}", []string{"カタカナ", "スワー"}}, // without ﾞ and ﾟ, ガ and ド are not in it, as ｶﾞ was not
		{"re:[ｦ-ﾟ]+", []string{"カタカナガイドパスワード"}},   // the space between kana is dropped
		{"re:[ｰ-ﾝ]{3,}", []string{"カタカナ", "スワー"}},
		{"re:[ｦ-ﾝ]", []string{"カ", "タ", "カ", "ナ", "イ", "ス", "ワ", "ー"}},
		{"re:[^ｦ-ﾟ\\s]+", []string{"free", "112", "ひらがな"}},
		{"re:[^ｦ-ﾝ\\s]+", []string{"ガ", "ドパ", "ド", "free", "112", "ひらがな"}},
		{"re:[Ａ-Ｚ]+", []string{"free"}},                   // full-width letters are ASCII after NFKC
		{"re:[①-⑳]+", []string{"112"}},                    // ⑫ is 12, two characters
		{"re:[\\x{FF66}-\\x{FF9D}]{4}", []string{"カタカナ"}}, // escapes are members too
	} {
		p, ok, err := parseLine(tc.pattern, 1)
		if err != nil || !ok {
			t.Errorf("%s: %v", tc.pattern, err)
			continue
		}
		if got := p.re.FindAllString(normalize(text), -1); !slices.Equal(got, tc.want) {
			t.Errorf("%s: matches %q, want %q (compiled %s)", tc.pattern, got, tc.want, p.re)
		}
	}
}

// TestRegexpClassKeepsMembers: no member of a class is lost, whatever
// NFKC makes of it (up to maxClassForms members that become several
// characters); a negated class excludes what its members become.
func TestRegexpClassKeepsMembers(t *testing.T) {
	for _, r := range [][2]rune{{0xff61, 0xffef}, {0xff01, 0xff5e}, {0x2460, 0x2473}, {0x2474, 0x249b}, {0x3220, 0x3243}, {0x3300, 0x3330}, {0xfb00, 0xfb06},
		{0x3041, 0x30ff}, {0xc0, 0x24f}, {0x2100, 0x214f}, {0x1d400, 0x1d7ff}} {
		class := fmt.Sprintf("[\\x{%X}-\\x{%X}]", r[0], r[1])
		pos, err := regexp.Compile("(?i)^(?:" + normRegexp(class) + ")+$")
		if err != nil {
			t.Fatalf("%s: %v", class, err)
		}
		neg, err := regexp.Compile("(?i)" + normRegexp("[^"+class[1:]))
		if err != nil {
			t.Fatalf("[^%s: %v", class[1:], err)
		}
		for c := r[0]; c <= r[1]; c++ {
			// The text is case-folded too, which (?i) stands in for: the
			// NFKC form is what the class must match.
			n := nfkc(string(c))
			if strings.Contains(n, " ") || ignorable([]rune(n)[0]) {
				continue // white space is collapsed and invisibles dropped
			}
			if !pos.MatchString(n) {
				t.Errorf("%s does not match %U as %q", class, c, n)
			}
			if utf8.RuneCountInString(n) == 1 && neg.MatchString(n) {
				t.Errorf("[^%s matches %U as %q", class[1:], c, n)
			}
		}
	}
}

// TestNFKCTableBound: nfkcTables walks code points up to nfkcMaxRune;
// none above it is changed by NFKC or composes.
func TestNFKCTableBound(t *testing.T) {
	var buf [utf8.UTFMax]byte
	for r := rune(nfkcMaxRune + 1); r <= unicode.MaxRune; r++ {
		b := buf[:utf8.EncodeRune(buf[:], r)]
		if !norm.NFKC.IsNormal(b) || !norm.NFD.IsNormal(b) || !norm.NFC.Properties(b).BoundaryBefore() {
			t.Fatalf("%U is changed by NFKC or composes: raise nfkcMaxRune", r)
		}
	}
}
