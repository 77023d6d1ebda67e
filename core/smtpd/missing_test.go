package smtpd

import (
	"regexp"
	"strings"
	"testing"
)

// A message from our own users (relay.networks, or authenticated) that
// lacks a Message-ID or a Date gets them at commit, as Postfix adds them
// for its local clients: a copier's mail without a Message-ID is refused
// by large mailbox providers. Mail from the internet is passed on as it
// came; fields the message has are not doubled.
func TestMissingFieldsAddedForOwnUsers(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	send := func(from int, msg string) string {
		r := newRaw(t, ts.addr(), from)
		if from == 3 { // authenticated, from outside relay.networks
			r.hello()
			r.cmd("AUTH PLAIN "+b64("\x00alice\x00secret"), "235")
			r.cmd("MAIL FROM:<a@example.org>", "250")
			r.cmd("RCPT TO:<bob@example.test>", "250")
			r.cmd("DATA", "354")
		} else {
			r.toData()
		}
		r.send(msg + ".\r\n")
		reply := r.expect("250")
		id := strings.Fields(reply)[2]
		r.cmd("QUIT", "221")
		return ts.messageBody(t, id)
	}
	count := func(msg, name string) int {
		header, _, _ := strings.Cut(msg, "\r\n\r\n")
		return len(regexp.MustCompile(`(?im)^`+name+`:`).FindAllString(header, -1))
	}
	bare := "From: copier@example.test\r\nTo: bob@example.test\r\nSubject: scan\r\n\r\nHello.\r\n"

	own := send(1, bare) // 127.0.0.1 is in relay.networks here
	m := regexp.MustCompile(`(?m)^Message-ID: <\d{14}\.([0-9A-Za-z]+)@mx\.example\.test>\r$`).FindStringSubmatch(own)
	if m == nil || count(own, "Message-ID") != 1 || count(own, "Date") != 1 {
		t.Fatalf("a trusted client's message lacks an added Message-ID or Date:\n%s", own)
	}
	if !strings.Contains(own, " id "+m[1]) {
		t.Errorf("the added Message-ID does not hold the queue ID %s:\n%s", m[1], own)
	}
	if want := `queue_id=` + m[1] + ` client=127.0.0.1 from=a@example.org message_id=<`; !strings.Contains(ts.logs.String(), want) {
		t.Errorf("the queued line does not name the added Message-ID:\n%s", ts.logs.String())
	}

	if got := send(3, bare); count(got, "Message-ID") != 1 || count(got, "Date") != 1 {
		t.Errorf("an authenticated user's message lacks an added Message-ID or Date:\n%s", got)
	}

	full := "Message-ID: <x@example.org>\r\nDate: Sat, 28 Nov 2026 08:00:00 +0000\r\n" + bare
	if got := send(1, full); count(got, "Message-ID") != 1 || count(got, "Date") != 1 || !strings.Contains(got, "<x@example.org>") {
		t.Errorf("fields the message had were added again:\n%s", got)
	}

	// RFC 5322 4.5: the obsolete syntax allows blanks before the colon.
	obs := "Message-ID : <y@example.org>\r\nDate\t: Sat, 28 Nov 2026 08:00:00 +0000\r\n" + bare
	if got := send(1, obs); count(got, "Message-ID") != 0 || count(got, "Date") != 0 || !strings.Contains(ts.logs.String(), "message_id=<y@example.org>") {
		t.Errorf("fields written with a blank before the colon were not seen:\n%s", got)
	}

	if got := send(2, bare); count(got, "Message-ID") != 0 || count(got, "Date") != 0 { // 127.0.0.2: the internet
		t.Errorf("a stranger's message was changed:\n%s", got)
	}
}
