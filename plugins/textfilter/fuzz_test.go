package textfilter

import (
	"strings"
	"testing"
)

// FuzzParseList feeds arbitrary list files through the parser and the
// matcher: a list edited by hand must never crash the stage.
func FuzzParseList(f *testing.F) {
	f.Add("# c\nspam\nre:free\\s+money\n/viag(ra|gra)/i\nbitcoin\t5\n", "free money viagra")
	f.Add("\ufeff未承諾広告\r\nｶﾀｶﾅ\r\n", "カタカナ")
	f.Add("re:([\n", "x")
	f.Add("//\n/\n\t\t3\n", "")
	f.Add("re:[ｦ-ﾟ]+\nre:[^ｦ-ﾝ\\s]\nre:[]ｶ-ﾝ[:^alpha:]\\]]\nre:\\Q[ｦ-ﾝ\\E[①-⑳]{3,}\nre:[ｶ\n", "ｶﾞｲﾄﾞ ⑫")
	f.Fuzz(func(t *testing.T, list, text string) {
		ps, err := parseList("f", strings.NewReader(list), 1)
		if err != nil {
			return
		}
		var keys []string
		for _, p := range ps {
			if p.re == nil {
				keys = append(keys, normalize(p.text))
			}
		}
		m := newMatcher(keys)
		n := normalize(text)
		m.scan(n, func(id int32) {
			if !strings.Contains(n, keys[id]) {
				t.Fatalf("reported %q not in %q", keys[id], n)
			}
		})
	})
}
