package smtpd

import (
	"io"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/core/pipeline"
	"github.com/portcullis-mta/portcullis/sdk"
	sdkmime "github.com/portcullis-mta/portcullis/sdk/mime"
)

// What the edits of the data phase leave in the queued message: at most
// one of each field RFC 5322 3.6 allows once (an added one replaces the
// message's own, the last added wins), and a tag's subject prefix on the
// Subject the message ends with, or on a Subject of its own when it ends
// with none.
func TestHeaderEditsQueued(t *testing.T) {
	add := func(name, value string) sdk.HeaderEdit {
		return sdk.HeaderEdit{Op: sdk.HeaderAdd, Name: name, Value: value}
	}
	remove := func(name string) sdk.HeaderEdit { return sdk.HeaderEdit{Op: sdk.HeaderRemove, Name: name} }
	const msg = "From: a@example.org\r\nTo: b@example.test\r\nSubject: original\r\n\r\nHello.\r\n"
	const noSubject = "From: a@example.org\r\nTo: b@example.test\r\n\r\nHello.\r\n"
	cases := []struct {
		name   string
		msg    string
		edits  []sdk.HeaderEdit
		prefix string
		want   map[string][]string // lower-case field name -> its values, in order
	}{
		{"added subject replaces the message's", msg, []sdk.HeaderEdit{add("Subject", "new")}, "",
			map[string][]string{"subject": {"new"}, "from": {"a@example.org"}}},
		{"two stages replace the subject: the last wins", msg,
			[]sdk.HeaderEdit{remove("Subject"), add("Subject", "first"), remove("subject"), add("SUBJECT", "second")}, "",
			map[string][]string{"subject": {"second"}}},
		{"from and to too, other fields add up", msg,
			[]sdk.HeaderEdit{add("From", "c@example.org"), add("X-Note", "1"), add("To", "d@example.test"), add("X-Note", "2")}, "",
			map[string][]string{"from": {"c@example.org"}, "to": {"d@example.test"}, "x-note": {"1", "2"}, "subject": {"original"}}},
		{"prefix on the replaced subject", msg, []sdk.HeaderEdit{remove("Subject"), add("Subject", "clean")}, "[SPAM] ",
			map[string][]string{"subject": {"[SPAM] clean"}}},
		{"encoded prefix on an added subject", msg, []sdk.HeaderEdit{add("Subject", "テスト")}, "[迷惑]",
			map[string][]string{"subject": {"[迷惑] テスト"}}},
		{"prefix after the subject was removed", msg, []sdk.HeaderEdit{remove("Subject")}, "[SPAM]",
			map[string][]string{"subject": {"[SPAM]"}}},
		{"prefix on a message without a subject", noSubject, nil, "[SPAM] ",
			map[string][]string{"subject": {"[SPAM]"}, "to": {"b@example.test"}}},
		{"prefix on the message's subject", msg, []sdk.HeaderEdit{add("X-Note", "1")}, "[SPAM]",
			map[string][]string{"subject": {"[SPAM] original"}, "x-note": {"1"}}},
	}
	byCase := map[string]int{}
	for i, tc := range cases {
		byCase[tc.name] = i
	}
	run := &ruleRunner{rules: map[sdk.Phase]func(*sdk.Request) *pipeline.Decision{
		sdk.PhaseData: func(r *sdk.Request) *pipeline.Decision {
			tc := cases[byCase[r.Message.Get("X-Case")]]
			return &pipeline.Decision{Action: pipeline.Accept, Headers: tc.edits, SubjectPrefix: tc.prefix}
		},
	}}
	ts := startServer(t, testConfig(t), func(d *Deps) { d.Pipeline = run })
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r.cmd("MAIL FROM:<a@example.org>", "250")
			r.cmd("RCPT TO:<bob@example.test>", "250")
			r.cmd("DATA", "354")
			r.send("X-Case: " + tc.name + "\r\n" + tc.msg + ".\r\n")
			id := strings.Fields(r.expect("250 2.0.0"))[2]
			rc, err := ts.q.Open(id)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(rc)
			rc.Close()
			header, body, _ := strings.Cut(string(b), "\r\n\r\n")
			if body != "Hello.\r\n" {
				t.Errorf("body %q", body)
			}
			got := map[string][]string{}
			for _, f := range HeaderFields(b) {
				got[strings.ToLower(f.Name)] = append(got[strings.ToLower(f.Name)], sdkmime.DecodeHeader(f.Value))
			}
			for name, want := range tc.want {
				if strings.Join(got[name], "\n") != strings.Join(want, "\n") {
					t.Errorf("%s: %q, want %q in\n%s", name, got[name], want, header)
				}
			}
			if len(got["received"]) != 1 {
				t.Errorf("received: %q", got["received"])
			}
		})
	}
}
