package textfilter

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
)

// plainMessage is a text/plain message with the given header fields
// (name, value pairs) and body.
func plainMessage(body string, fields ...string) *sdk.Message {
	var hdr []sdk.HeaderField
	var b strings.Builder
	for i := 0; i+1 < len(fields); i += 2 {
		hdr = append(hdr, sdk.HeaderField{Name: fields[i], Value: fields[i+1]})
		b.WriteString(fields[i] + ": " + fields[i+1] + "\r\n")
	}
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\n\r\n" + body + "\r\n")
	return sdk.NewBytesMessage(hdr, []byte(b.String()))
}

func textStage(t *testing.T, cfg map[string]any) sdk.Stage {
	t.Helper()
	st := NewText()
	configure(t, st, "", cfg)
	return st
}

func spamList(patterns ...any) []any {
	return []any{map[string]any{"name": "spam", "patterns": patterns}}
}

// TestNoMessage: a check without a message is verdict none.
func TestNoMessage(t *testing.T) {
	res, err := textStage(t, map[string]any{"lists": spamList("x")}).Check(context.Background(), &sdk.Request{Phase: sdk.PhaseData})
	if err != nil || res.Verdict != sdk.VerdictNone {
		t.Errorf("no message: %+v %v, want none", res, err)
	}
}

// TestNoSubject: a message without a Subject still has its body matched.
func TestNoSubject(t *testing.T) {
	res := check(t, textStage(t, map[string]any{"lists": spamList("viagra")}), plainMessage("cheap viagra"))
	if res.Verdict != sdk.VerdictFail {
		t.Errorf("no Subject: %s %q, want fail", res.Verdict, res.Tags)
	}
}

// TestTagsOrderAndCap: tags follow the patterns' order, at most max_tags
// of them, while attrs.matches counts every pattern that matched and the
// reason names the first.
func TestTagsOrderAndCap(t *testing.T) {
	pats := []any{"alpha", "bravo", "charlie", "delta", "echo", "re:fox+trot"}
	msg := plainMessage("echo delta charlie bravo alpha foxtrot", "Subject", "s")
	res := check(t, textStage(t, map[string]any{"lists": spamList(pats...)}), msg)
	want := []string{"spam:alpha", "spam:bravo", "spam:charlie", "spam:delta", "spam:echo", "spam:re:fox+trot"}
	if !slices.Equal(res.Tags, want) || res.Reason != "matched spam:alpha" {
		t.Errorf("tags %q reason %q, want %q", res.Tags, res.Reason, want)
	}
	res = check(t, textStage(t, map[string]any{"lists": spamList(pats...), "max_tags": 2}), msg)
	if !slices.Equal(res.Tags, want[:2]) || res.Attrs["matches"] != "6" || res.Score != 6 {
		t.Errorf("max_tags 2: tags %q attrs %v score %v, want %q, matches 6", res.Tags, res.Attrs, res.Score, want[:2])
	}
}

// TestThresholdNeedsAMatch: threshold 0 does not fail a message nothing
// matched.
func TestThresholdNeedsAMatch(t *testing.T) {
	res := check(t, textStage(t, map[string]any{"lists": spamList("viagra"), "threshold": 0}), plainMessage("hello", "Subject", "hi"))
	if res.Verdict != sdk.VerdictPass {
		t.Errorf("threshold 0, no match: %s, want pass", res.Verdict)
	}
}

// TestHeaderNamesCaseInsensitive: a `headers` entry matches the field
// whatever its case.
func TestHeaderNamesCaseInsensitive(t *testing.T) {
	st := textStage(t, map[string]any{"lists": spamList("spamblaster"), "headers": []any{"x-mailer"}})
	if res := check(t, st, plainMessage("hello", "Subject", "hi", "X-Mailer", "SpamBlaster 3.1")); res.Verdict != sdk.VerdictFail {
		t.Errorf("X-Mailer for headers: [x-mailer]: %s, want fail", res.Verdict)
	}
}

// TestSubjectStageNoTextLimitTag: text.limit.bytes is the textfilter
// stage's tag; the subject stage does not add it.
func TestSubjectStageNoTextLimitTag(t *testing.T) {
	st := NewSubject()
	configure(t, st, "", map[string]any{"lists": spamList("viagra")})
	long := strings.Repeat("a ", 600<<10)
	res := check(t, st, sdk.NewBytesMessage([]sdk.HeaderField{{Name: "Subject", Value: long}}, []byte("Subject: x\r\n\r\nbody\r\n")))
	if slices.Contains(res.Tags, tagTextLimit) {
		t.Errorf("subject stage tagged %q", res.Tags)
	}
}

// TestClipBound: a text one byte over the bound is cut; one at it is not.
func TestClipBound(t *testing.T) {
	texts := []string{strings.Repeat("a", 1024), strings.Repeat("b", 1025)}
	if !clip(texts, 1024) || len(texts[0]) != 1024 || len(texts[1]) != 1024 {
		t.Errorf("lengths %d %d, want 1024 1024", len(texts[0]), len(texts[1]))
	}
	if clip([]string{strings.Repeat("a", 1024)}, 1024) {
		t.Error("a text at the bound was cut")
	}
}

// TestListLineForms: a weight follows the last TAB (a pattern may hold
// one); /x/ with flags other than i is a literal, not an expression; a
// line of invisible characters only is no pattern; a list name with a
// space is refused.
func TestListLineForms(t *testing.T) {
	st := textStage(t, map[string]any{"lists": spamList("buy\tnow\t3", "/etc/passwd", "\u200b\u200d"), "threshold": 3})
	for body, want := range map[string]sdk.Verdict{"buy now": sdk.VerdictFail, "see etc here": sdk.VerdictPass, "hello": sdk.VerdictPass} {
		res := check(t, st, plainMessage(body, "Subject", "s"))
		if body != "buy now" && len(res.Tags) > 0 {
			t.Errorf("%q: tags %q, want none", body, res.Tags)
		}
		if res.Verdict != want {
			t.Errorf("%q: %s %q score %v, want %s", body, res.Verdict, res.Tags, res.Score, want)
		}
	}
	if res := check(t, st, plainMessage("cat /etc/passwd", "Subject", "s")); !slices.Equal(res.Tags, []string{"spam:/etc/passwd"}) {
		t.Errorf("literal /etc/passwd: tags %q", res.Tags)
	}
	err := NewText().Configure(context.Background(), sdk.Env{}, map[string]any{"lists": []any{map[string]any{"name": "my list", "patterns": []any{"x"}}}})
	if err == nil {
		t.Error("list name with a space accepted")
	}
}

// TestNormalizeTrimsLeadingSpace: white space before the first character
// is dropped, so an anchored expression matches an indented line.
func TestNormalizeTrimsLeadingSpace(t *testing.T) {
	if got := normalize("  \t Free"); got != "free" {
		t.Errorf("normalize = %q, want %q", got, "free")
	}
}

// TestMatcherScanOutputLinks: scan reports a pattern that ends inside a
// longer one (he in she) as TestMatcher's acAll does.
func TestMatcherScanOutputLinks(t *testing.T) {
	pats := []string{"he", "she", "his", "hers"}
	m := newMatcher(pats)
	var got []int
	m.scan("ushers", func(id int32) { got = append(got, int(id)) })
	slices.Sort(got)
	if want := []int{0, 1, 3}; !slices.Equal(got, want) {
		t.Errorf("scan found %v, want %v", got, want)
	}
}
