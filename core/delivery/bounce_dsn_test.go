package delivery

import (
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/queue"
)

// The DSN of `queue bounce` reports a failure no remote MTA gave: Action
// failed, Status 5.0.0, no Remote-MTA (even after an attempt that reached
// a hop), an X-Portcullis diagnostic as an expiry has, not "smtp;", and
// a human part that says the administrator bounced it.
func TestBounceDSNHasNoRemoteMTA(t *testing.T) {
	cfg := baseConfig(t)
	w := newWorld(t, cfg)
	id := w.enqueue("u@local.test", []string{"b@d.test"}, localSender, plainBody, func(e *queue.Envelope) {
		e.NextAttempt = time.Now().Add(time.Hour)
		e.Attempts = 1
		e.Rcpts[0].LastHop = "127.0.0.1[127.0.0.1]:25"
		e.Rcpts[0].LastReply = "451 4.3.0 try again later"
	})
	if err := Bounce(cfg, w.q, id, time.Now()); err != nil {
		t.Fatal(err)
	}
	d := queuedDSN(t, w)
	status := d.parts[1]
	for _, want := range []string{"Final-Recipient: rfc822; b@d.test\r\n", "Action: failed\r\n", "Status: 5.0.0\r\n",
		"Diagnostic-Code: X-Portcullis; message bounced by the administrator\r\n"} {
		if !strings.Contains(status, want) {
			t.Errorf("delivery-status part lacks %q:\n%s", want, status)
		}
	}
	d.wantNot(t, "Remote-MTA", "smtp;", "127.0.0.1")
	human := d.parts[0]
	for _, want := range []string{"was bounced by the administrator of this\r\nmail system",
		"<b@d.test>: message bounced by the administrator\r\n"} {
		if !strings.Contains(human, want) {
			t.Errorf("human part lacks %q:\n%s", want, human)
		}
	}
	if strings.Contains(human, "554") {
		t.Errorf("human part gives an SMTP reply no server sent:\n%s", human)
	}
}

// A failure a hop did give keeps its Remote-MTA and smtp diagnostic.
func TestFailureDSNKeepsRemoteMTA(t *testing.T) {
	d := &dsn{kind: dsnFailed, hostname: "mx.example.test",
		env:   &queue.Envelope{ID: "Q1", From: "a@x", Received: time.Now()},
		rcpts: []*queue.Recipient{{Addr: "b@y", LastReply: "550 5.1.1 no such user", LastHop: "mx.y[192.0.2.1]:25"}}}
	var b strings.Builder
	if err := d.write(&b, strings.NewReader("Subject: x\r\n\r\nbody\r\n")); err != nil {
		t.Fatal(err)
	}
	p := parseDSN(t, received{data: b.String()})
	for _, want := range []string{"Remote-MTA: dns; mx.y\r\n", "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n", "Status: 5.1.1\r\n"} {
		if !strings.Contains(p.parts[1], want) {
			t.Errorf("delivery-status part lacks %q:\n%s", want, p.parts[1])
		}
	}
	if !strings.Contains(p.parts[0], "could not be delivered") {
		t.Errorf("human part:\n%s", p.parts[0])
	}
}

// A failure DSN returns the original whole only up to dsnFullLimit, RET=FULL
// or not (Postfix's bounce_size_limit); a larger one comes back as its
// header, so the DSN itself stays small enough to be delivered.
func TestDSNFullLimit(t *testing.T) {
	header := "Subject: s\r\nFrom: a@x\r\n\r\n"
	for _, tc := range []struct {
		ret, body string
		want      string
	}{
		{"", strings.Repeat("small body\r\n", 100), "message/rfc822"},
		{"FULL", strings.Repeat("small body\r\n", 100), "message/rfc822"},
		{"", strings.Repeat("big body line\r\n", 5000), "text/rfc822-headers"},
		{"FULL", strings.Repeat("big body line\r\n", 5000), "text/rfc822-headers"},
		{"", strings.Repeat("x", dsnFullLimit-len(header)), "message/rfc822"},
		{"", strings.Repeat("x", dsnFullLimit-len(header)+1), "text/rfc822-headers"},
	} {
		d := &dsn{kind: dsnFailed, hostname: "gw.test", now: time.Now(),
			env:   &queue.Envelope{ID: "Q1", From: "a@x", DSNRet: tc.ret, Received: time.Now()},
			rcpts: []*queue.Recipient{{Addr: "b@y", LastReply: "550 5.1.1 no"}}}
		var b strings.Builder
		if err := d.write(&b, strings.NewReader(header+tc.body)); err != nil {
			t.Fatal(err)
		}
		p := parseDSN(t, received{data: b.String()})
		if p.types[2] != tc.want {
			t.Errorf("RET=%q, %d-byte original: part %s, want %s", tc.ret, len(header)+len(tc.body), p.types[2], tc.want)
			continue
		}
		if tc.want == "message/rfc822" && p.parts[2] != header+tc.body {
			t.Errorf("RET=%q: the original is not returned whole", tc.ret)
		}
		if tc.want == "text/rfc822-headers" && (!strings.Contains(p.parts[2], "Subject: s") || strings.Contains(p.parts[2], "body")) {
			t.Errorf("RET=%q: headers part %.100q", tc.ret, p.parts[2])
		}
	}
}

// A reply whose enhanced code's class is not the reply's ("550 4.2.2") has
// its enhanced code ignored (RFC 3463 2).
func TestStatusCodeClass(t *testing.T) {
	for reply, want := range map[string]string{
		"550 5.1.1 no such user": "5.1.1",
		"451 4.3.0 later":        "4.3.0",
		"550 4.2.2 mismatched":   "",
		"452 5.2.2 mismatched":   "",
		"550 no such user":       "",
		"5.1.1 no code":          "",
	} {
		if got := statusCode(reply); got != want {
			t.Errorf("statusCode(%q) = %q, want %q", reply, got, want)
		}
	}
}

// A DSN about internationalized mail (RFC 6533): an SMTPUTF8 original or a
// UTF-8 address makes a global DSN (report-type global-delivery-status,
// message/global-delivery-status, message/global or -headers), a UTF-8
// recipient's Final-Recipient is of type utf-8, and our own refusal to send
// to a hop without SMTPUTF8 is no remote diagnostic. ASCII mail keeps the
// RFC 3464 types.
func TestGlobalDSN(t *testing.T) {
	orig := "From: a@x\r\nSubject: caf\xc3\xa9\r\n\r\nbody\r\n"
	for _, tc := range []struct {
		name, ret   string
		env         queue.Envelope
		rcpt        queue.Recipient
		status, ori string
		want        []string
	}{
		{name: "UTF-8 recipient, SMTPUTF8", env: queue.Envelope{From: "a@x", SMTPUTF8: true},
			rcpt:   queue.Recipient{Addr: "ünï@plain.test", LastReply: errNoUTF8.String(), LastHop: "mx.plain.test[192.0.2.1]:25"},
			status: "message/global-delivery-status", ori: "message/global",
			want: []string{"Final-Recipient: utf-8; ünï@plain.test\r\n", "Status: 5.6.7\r\n",
				"Diagnostic-Code: X-Portcullis; 553 5.6.7 next hop does not support SMTPUTF8\r\n"}},
		{name: "SMTPUTF8, headers only", ret: "HDRS", env: queue.Envelope{From: "a@x", SMTPUTF8: true},
			rcpt:   queue.Recipient{Addr: "b@y", LastReply: "550 5.1.1 no"},
			status: "message/global-delivery-status", ori: "message/global-headers",
			want: []string{"Final-Recipient: rfc822; b@y\r\n", "Diagnostic-Code: smtp; 550 5.1.1 no\r\n"}},
		{name: "ASCII", env: queue.Envelope{From: "a@x"}, rcpt: queue.Recipient{Addr: "b@y", LastReply: "550 5.1.1 no"},
			status: "message/delivery-status", ori: "message/rfc822", want: []string{"Final-Recipient: rfc822; b@y\r\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, rcpt := tc.env, tc.rcpt
			env.ID, env.DSNRet, env.Received = "Q1", tc.ret, time.Now()
			d := &dsn{kind: dsnFailed, hostname: "gw.test", now: time.Now(), env: &env, rcpts: []*queue.Recipient{&rcpt}}
			var b strings.Builder
			if err := d.write(&b, strings.NewReader(orig)); err != nil {
				t.Fatal(err)
			}
			p := parseDSN(t, received{data: b.String()})
			if p.types[1] != tc.status || p.types[2] != tc.ori {
				t.Fatalf("parts %q, want %s and %s", p.types, tc.status, tc.ori)
			}
			for _, w := range tc.want {
				if !strings.Contains(p.parts[1], w) {
					t.Errorf("status part lacks %q:\n%s", w, p.parts[1])
				}
			}
		})
	}
}

// A sender whose local part needed quoting is quoted in the DSN's To: as on
// the wire (RFC 5322 3.4.1): unquoted, `"x>, Bcc: <victim@evil.test>, <y"@…`
// made the DSN's To: three addresses, one an outsider's choosing.
func TestDSNToQuoted(t *testing.T) {
	w, home, _ := mixedRepliesWorld(t)
	from := "x>, Bcc: <victim@evil.test>, <y@local.test" // as the queue keeps it: quoting removed
	w.enqueue(from, []string{"gone@d.test"}, localSender, plainBody)
	w.start()
	w.waitFor("the DSN", func() bool { return len(home.messages()) == 1 })
	dsn := home.messages()[0]
	if got := dsn.rcpts; len(got) != 1 || got[0] != from { // as the peer's go-smtp unquotes it
		t.Errorf("DSN envelope recipients %q", got)
	}
	msg, err := mail.ReadMessage(strings.NewReader(dsn.data))
	if err != nil {
		t.Fatal(err)
	}
	to, err := msg.Header.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Address != `"x>, Bcc: <victim@evil.test>, <y"@local.test` && to[0].Address != from {
		t.Errorf("To: %q parses as %v %v, want the one sender", msg.Header.Get("To"), to, err)
	}
}

// A DSN's message/delivery-status part is 7bit (RFC 3464 6.2): a hop's
// reply in UTF-8 has its non-ASCII characters replaced, as Postfix does.
// Its returned original is labelled 8bit when its bytes are, declared or
// not, and the DSN's own body type follows its bytes (RFC 6152 3), not the
// original's BODY=.
func TestDSNEightBit(t *testing.T) {
	cfg := baseConfig(t)
	for _, tc := range []struct {
		name, body, bodyType string
		wantType, wantCTE    string
	}{
		{"8-bit body not declared", "Subject: s\r\n\r\nbody \xc3\xbc\r\n", "", "8BITMIME", "8bit"},
		{"declared but ASCII", "Subject: s\r\n\r\nbody\r\n", "8BITMIME", "7BIT", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, cfg)
			id := w.enqueue("u@local.test", []string{"b@d.test"}, localSender, tc.body, func(e *queue.Envelope) {
				e.BodyType = tc.bodyType
				e.NextAttempt = time.Now().Add(time.Hour)
				e.Attempts = 1
				e.Rcpts[0].LastHop = "mx.d.test[192.0.2.1]:25"
			})
			if err := Bounce(cfg, w.q, id, time.Now()); err != nil {
				t.Fatal(err)
			}
			envs, _ := w.q.List()
			if len(envs) != 1 || envs[0].BodyType != tc.wantType {
				t.Fatalf("DSN envelope %+v, want body type %s", envs, tc.wantType)
			}
			d := queuedDSN(t, w)
			if got := strings.Contains(d.all, "Content-Transfer-Encoding: 8bit\r\nContent-Type: message/rfc822\r\n"); got != (tc.wantCTE == "8bit") {
				t.Errorf("original part labelled 8bit: %v, want %v:\n%s", got, tc.wantCTE == "8bit", d.all)
			}
		})
	}

	d := &dsn{kind: dsnFailed, hostname: "mx.example.test", now: time.Now(),
		env:   &queue.Envelope{ID: "Q1", From: "a@x", Received: time.Now()},
		rcpts: []*queue.Recipient{{Addr: "b@y", LastReply: "550 5.7.1 Absender ung\xc3\xbcltig \xe2\x80\x93 abgelehnt", LastHop: "mx.y[192.0.2.1]:25"}}}
	var b strings.Builder
	if err := d.write(&b, strings.NewReader("Subject: x\r\n\r\nbody\r\n")); err != nil {
		t.Fatal(err)
	}
	p := parseDSN(t, received{data: b.String()})
	if !strings.Contains(p.parts[1], "Diagnostic-Code: smtp; 550 5.7.1 Absender ung?ltig ? abgelehnt\r\n") || !isASCII(p.parts[1]) {
		t.Errorf("delivery-status part is not 7bit:\n%s", p.parts[1])
	}
}

// A DSN that returns only the header returns at most dsnFullLimit bytes of
// it, whole fields, and nothing that is no header field: a message without
// a blank line, or a header of megabytes, does not come back whole.
func TestDSNHeaderBounded(t *testing.T) {
	for _, tc := range []struct{ name, msg, want string }{
		{"no blank line", "From: a@x\r\nSubject: s\r\n" + strings.Repeat(strings.Repeat("z", 76)+"\r\n", 40000),
			"From: a@x\r\nSubject: s\r\n"},
		{"huge header", "From: a@x\r\n" + strings.Repeat("X-Filler: "+strings.Repeat("f", 890)+"\r\n", 2000) + "\r\nbody\r\n", ""},
		{"folded field", "From: a@x\r\nSubject: one\r\n two\r\n\r\n" + strings.Repeat("body line\r\n", 6000),
			"From: a@x\r\nSubject: one\r\n two\r\n"},
		// RFC 5322 4.5.3 (white space before the colon) and 4.2 (a
		// continuation of white space only): obsolete, still fields.
		{"obsolete syntax", "Received: x\r\nSubject : hello\r\nTo: a@b,\r\n \r\n c@d\r\n\r\n" + strings.Repeat("body line\r\n", 6000),
			"Received: x\r\nSubject : hello\r\nTo: a@b,\r\n \r\n c@d\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &dsn{kind: dsnFailed, hostname: "gw.test", now: time.Now(),
				env:   &queue.Envelope{ID: "Q1", From: "a@x", Received: time.Now()},
				rcpts: []*queue.Recipient{{Addr: "b@y", LastReply: "550 5.1.1 no"}}}
			var b strings.Builder
			if err := d.write(&b, strings.NewReader(tc.msg)); err != nil {
				t.Fatal(err)
			}
			p := parseDSN(t, received{data: b.String()})
			if p.types[2] != "text/rfc822-headers" {
				t.Fatalf("part %s", p.types[2])
			}
			got := p.parts[2]
			switch {
			case len(got) > dsnFullLimit:
				t.Errorf("headers part of %d bytes", len(got))
			case tc.want != "" && got != tc.want:
				t.Errorf("headers part %.200q, want %q", got, tc.want)
			case tc.want == "" && (!strings.HasPrefix(got, "From: a@x\r\nX-Filler: ") || !strings.HasSuffix(got, "f\r\n")):
				t.Errorf("headers part does not end with a whole field: %.100q...%q", got, got[max(0, len(got)-40):])
			}
		})
	}
}
