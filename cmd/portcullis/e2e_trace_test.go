package main

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	dnstest "github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"
)

// The README promises logs traceable by queue ID: every line of a session
// carries session=, every line about a message queue_id=, from its first
// line to its last. TestE2ETrace runs `portcullis run` through the main
// paths of a message (delivered, tagged, redirected, discarded, learned,
// rejected at data, quarantined then released, deferred then bounced with a
// DSN, bounced and deleted by the queue command, expired), once in the text
// format at info and once in JSON at debug, and checks the property on the
// parsed lines. It also checks that no line carries a password or an AUTH
// response, and that attacker-chosen text cannot forge a line or a field.

// traceRules: the example plugin's stage (plugin-side results, header
// edits) and one rule per action.
//
// The timeouts are generous: the test is about logs, and a stage that
// overran 5s on a loaded CI machine turned a delivered message into a 451.
const traceRules = `stages:
  - {name: hello, plugin: ./plugin-hello, timeout: 30s, on_error: tempfail}
  - {name: bayes, plugin: bayes, timeout: 30s, config: {min_spam: 10, min_ham: 10}}
  - {name: tracelog, plugin: ./tracelogplugin, timeout: 30s}
rules:
  - {name: hello-reject, when: 'results.hello.verdict == "fail"', action: reject, reply: '550 5.7.1 Rejected on request'}
  - {name: hold, when: '"hello:quarantine" in results.hello.tags', action: quarantine}
  - {name: mark, when: '"hello:tag" in results.hello.tags', action: tag, subject_prefix: "[TAGGED]"}
  - {name: drop, when: 'msg.subject contains "[discard-me]"', action: discard}
  - {name: divert, when: 'msg.subject contains "[redirect-me]"', action: redirect, recipients: [diverted@example.test]}
  - {name: teach, when: 'msg.subject contains "[learn-spam]"', action: learn_spam}
`

const traceYAML = `hostname: mx.example.test
listeners:
  - {name: mx, address: "127.0.0.1:0", auth: optional}
relay:
  domains: [example.test]
  networks: ["127.0.0.1/32"]
  users_file: users.txt
routes:
  - {domains: ["*"], next_hop: "%HOP%", tls: none}
dns: {servers: ["%DNS%"]}
queue: {dir: spool, quarantine_dir: quarantine, retry: [1s], max_age: %MAXAGE%, delay_notice: %NOTICE%}
limits: {shutdown_grace: 5s}
log: {format: %FORMAT%, level: %LEVEL%}
include: ["rules*.yaml"]
`

// The password of the AUTH user, and what must never reach a log line.
const (
	tracePassword = "s3cret-Pa55word"
	traceForged   = "FORGEDQUEUEID000"
)

// traceHop is the next hop: it defers "defer-*" recipients (451) always,
// and "later-*" ones at their first attempt, then refuses them (550);
// everything else is accepted and kept.
type traceHop struct {
	*nextHop
	mu   sync.Mutex
	seen map[string]int
}

func startTraceHop(t *testing.T) *traceHop {
	h := &traceHop{nextHop: &nextHop{}, seen: map[string]int{}}
	srv := smtp.NewServer(h)
	srv.Domain = "hop.example.test"
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	srv.ErrorLog = quietLog{}
	h.addr = serveSMTP(t, srv)
	return h
}

func (h *traceHop) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &traceHopSession{hopSession: hopSession{h: h.nextHop}, t: h}, nil
}

type traceHopSession struct {
	hopSession
	t *traceHop
}

func (s *traceHopSession) Rcpt(to string, o *smtp.RcptOptions) error {
	s.t.mu.Lock()
	s.t.seen[to]++
	n := s.t.seen[to]
	s.t.mu.Unlock()
	switch {
	case strings.HasPrefix(to, "defer-"):
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 2, 0}, Message: "mailbox busy, try later"}
	case strings.HasPrefix(to, "later-") && n == 1:
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 2, 0}, Message: "mailbox busy, try later"}
	case strings.HasPrefix(to, "later-"):
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	return s.hopSession.Rcpt(to, o)
}

// traceGW is one gateway run of TestE2ETrace.
type traceGW struct {
	g    *gateway
	cfg  string
	hop  *traceHop
	json bool
}

func startTraceGateway(t *testing.T, format, level, maxAge, notice string) *traceGW {
	t.Helper()
	hop := startTraceHop(t)
	dns := dnstest.New(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "portcullis.yaml")
	text := strings.NewReplacer("%HOP%", hop.addr, "%DNS%", dns.Addr, "%FORMAT%", format, "%LEVEL%", level,
		"%MAXAGE%", maxAge, "%NOTICE%", notice).Replace(traceYAML)
	files := map[string]string{
		"portcullis.yaml": text,
		"rules.yaml":      traceRules,
		"users.txt":       "alice:{plain}" + tracePassword + "\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	placePlugin(t, "../../examples/plugin-hello", filepath.Join(dir, "plugin-hello"))
	placePlugin(t, "./testdata/tracelogplugin", filepath.Join(dir, "tracelogplugin"))
	return &traceGW{g: startGateway(t, cfg), cfg: cfg, hop: hop, json: format == "json"}
}

// send sends a message with subject to rcpt and returns the reply.
func (gw *traceGW) send(t *testing.T, rcpt, subject string) reply {
	t.Helper()
	return sendOne(gw.g.addr, rcpt, subjectMsg(subject))
}

// accepted sends and returns the queue ID of the 250.
func (gw *traceGW) accepted(t *testing.T, rcpt, subject string) string {
	t.Helper()
	r := gw.send(t, rcpt, subject)
	if r.queueID() == "" {
		t.Fatalf("%s: reply %v, want 250 with a queue ID", subject, r)
	}
	return r.queueID()
}

// lines parses the log so far.
func (gw *traceGW) lines(t *testing.T) []logLine {
	t.Helper()
	return parseLog(t, gw.g.logs(), gw.json)
}

// waitLine waits for a line with every attribute of want and returns it.
func (gw *traceGW) waitLine(t *testing.T, want ...string) logLine {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, l := range parseLogQuiet(gw.g.logs(), gw.json) {
			if l.has(want...) {
				return l
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %v:\n%s", want, gw.g.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var queueIDRE = regexp.MustCompile(`\b[0-9A-Z]{16}\b`)

// linkKeys are the attributes that name another queue ID than the line's
// own queue_id: a DSN and its original. (A message rewritten or
// quarantined at commit keeps its ID: no link is needed.)
var linkKeys = []string{"dsn_id", "dsn_of"}

// checkTrace checks the property on every line: a line that names a queue
// ID names it as queue_id, or as a link from the queue_id it carries; a
// line about a message in a session (the data phase, the decision, queued,
// quarantined, ...) carries session and queue_id.
func checkTrace(t *testing.T, lines []logLine) {
	t.Helper()
	sessionMsgs := []string{"queued", "quarantined", "discarded", "redirected", "learning"}
	for _, l := range lines {
		qid := l.get("queue_id")
		for _, id := range queueIDRE.FindAllString(l.raw, -1) {
			if id == qid || id == traceForged {
				continue
			}
			linked := slices.ContainsFunc(linkKeys, func(k string) bool { return l.get(k) == id })
			if !linked || qid == "" {
				t.Errorf("line names queue ID %s but its queue_id is %q: %s", id, qid, l)
			}
		}
		dataPhase := l.get("phase") == "data"
		fromSession := l.get("dsn_of") == "" // a DSN is queued by delivery, not by a session
		if fromSession && slices.Contains(sessionMsgs, l.get("msg")) || dataPhase {
			if qid == "" || l.get("session") == "" {
				t.Errorf("line about a message in a session without queue_id or session: %s", l)
			}
		}
		if strings.HasPrefix(l.get("msg"), "delivery") && l.get("queue_id") == "" {
			if l.get("msg") != "delivery: cannot lease from the queue" {
				t.Errorf("delivery line without queue_id: %s", l)
			}
		}
		if (l.get("msg") == "bayes autolearn" || strings.HasPrefix(l.get("msg"), "learning")) && qid == "" {
			t.Errorf("learning line without queue_id: %s", l)
		}
	}
}

// trace returns the lines of a message: those with queue_id id.
func trace(lines []logLine, id string) []logLine {
	ids := map[string]bool{id: true}
	var out []logLine
	for _, l := range lines {
		if ids[l.get("queue_id")] {
			out = append(out, l)
		}
	}
	return out
}

// milestone fails unless the trace of id has a line with every pair of kv.
func milestone(t *testing.T, lines []logLine, id string, kv ...string) logLine {
	t.Helper()
	for _, l := range trace(lines, id) {
		if l.has(kv...) {
			return l
		}
	}
	var got []string
	for _, l := range trace(lines, id) {
		got = append(got, l.raw)
	}
	t.Errorf("trace of %s has no line with %v; it has:\n%s", id, kv, strings.Join(got, "\n"))
	return logLine{}
}

// checkSecrets fails on a line holding the AUTH password or responses,
// message bytes, or a raw control character (which could fake a line break
// or rewrite a terminal).
func checkSecrets(t *testing.T, logs string) {
	t.Helper()
	plain := base64.StdEncoding.EncodeToString([]byte("\x00alice\x00" + tracePassword))
	bad := base64.StdEncoding.EncodeToString([]byte("\x00alice\x00wrong-" + tracePassword))
	for i, r := range logs {
		if r < ' ' && r != '\n' || r == 0x7f || r == '\u2028' || r == '\u2029' || r == '\u0085' {
			t.Errorf("the log holds the raw control character %U at byte %d: %q", r, i, logs[max(0, i-80):i+1])
		}
	}
	for _, secret := range []string{tracePassword, plain, bad, "body of"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds %q (a password, an AUTH response or message bytes)", secret)
		}
	}
}

// authAndForge logs in with a wrong then the right password, and sends a
// message whose envelope and HELO carry text shaped like log fields.
func (gw *traceGW) authAndForge(t *testing.T) string {
	t.Helper()
	c, br := rawSession(t, gw.g.addr)
	say(t, c, br, "EHLO evil.example queue_id="+traceForged+" level=ERROR msg=forged", "250")
	wrong := base64.StdEncoding.EncodeToString([]byte("\x00alice\x00wrong-" + tracePassword))
	say(t, c, br, "AUTH PLAIN "+wrong, "535")
	right := base64.StdEncoding.EncodeToString([]byte("\x00alice\x00" + tracePassword))
	say(t, c, br, "AUTH PLAIN "+right, "235")
	say(t, c, br, `MAIL FROM:<"x\" queue_id=`+traceForged+` msg=\"forged"@example.org>`, "250")
	// Terminal escapes and a Unicode line separator: whatever the reply,
	// a log line must show them escaped.
	say(t, c, br, "RCPT TO:<\"esc\x1b[2K\u2028x\"@example.test>", "")
	say(t, c, br, "RCPT TO:<b@example.test>", "250")
	say(t, c, br, "DATA", "354")
	l := say(t, c, br, subjectMsg("forge queue_id="+traceForged)+".", "250 2.0.0")
	say(t, c, br, "QUIT", "221")
	return strings.Fields(l)[2]
}

func TestE2ETrace(t *testing.T) {
	t.Run("text at info", func(t *testing.T) { traceMainPaths(t, "text", "info") })
	t.Run("json at debug", func(t *testing.T) { traceMainPaths(t, "json", "debug") })
	t.Run("expiry", traceExpiry)
}

// traceMainPaths sends one message down each main path and checks the log.
func traceMainPaths(t *testing.T, format, level string) {
	gw := startTraceGateway(t, format, level, "1h", "1h")
	ids := map[string]string{}
	ids["delivered"] = gw.accepted(t, "b@example.test", "plain")
	ids["tagged"] = gw.accepted(t, "b@example.test", "please [tag-me]")
	ids["redirected"] = gw.accepted(t, "b@example.test", "[redirect-me]")
	ids["discarded"] = gw.accepted(t, "b@example.test", "[discard-me]")
	ids["learned"] = gw.accepted(t, "b@example.test", "[learn-spam] casino jackpot")
	ids["quarantined"] = gw.accepted(t, "b@example.test", "[quarantine-me]")
	ids["bounced"] = gw.accepted(t, "later-1@remote.test", "defer then bounce")
	ids["cli-bounced"] = gw.accepted(t, "defer-1@remote.test", "bounced by the admin")
	ids["cli-deleted"] = gw.accepted(t, "defer-2@remote.test", "deleted by the admin")
	ids["forged"] = gw.authAndForge(t)
	if r := gw.send(t, "b@example.test", "[reject-me]"); r.code != 550 {
		t.Fatalf("reject-me: reply %v, want 550", r)
	}

	gw.hop.waitFor(t, "the plain message", bySubject("plain"))
	gw.waitLine(t, "msg", "bayes autolearn", "queue_id", ids["learned"])
	for _, k := range []string{"bounced", "cli-bounced", "cli-deleted"} {
		gw.waitLine(t, "msg", "delivery", "queue_id", ids[k], "status", "deferred")
	}
	portcullisCLI(t, "queue", "flush", ids["bounced"], "-c", gw.cfg)
	dsn := gw.waitLine(t, "msg", "delivery: DSN queued", "queue_id", ids["bounced"]).get("dsn_id")
	gw.waitLine(t, "msg", "delivery", "queue_id", dsn, "status", "sent")

	out := portcullisCLI(t, "quarantine", "release", ids["quarantined"], "-c", gw.cfg)
	if !strings.Contains(out, ids["quarantined"]+": released") {
		t.Errorf("quarantine release said %q", out)
	}
	gw.waitLine(t, "msg", "delivery", "queue_id", ids["quarantined"], "status", "sent")

	// The queue command's own output names the message (and the DSN).
	waitNotLeased(t, gw.cfg, ids["cli-bounced"])
	out = portcullisCLI(t, "queue", "bounce", ids["cli-bounced"], "-c", gw.cfg)
	m := regexp.MustCompile(`^` + ids["cli-bounced"] + `: bounced; DSN ([0-9A-Z]{16}) queued`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("queue bounce said %q", out)
	}
	// The running daemon picks up the DSN the command queued (queue.Options
	// Notify) and sends it.
	gw.waitLine(t, "msg", "delivery", "queue_id", m[1], "status", "sent")
	waitNotLeased(t, gw.cfg, ids["cli-deleted"])
	if out := portcullisCLI(t, "queue", "delete", ids["cli-deleted"], "-c", gw.cfg); out != ids["cli-deleted"]+": deleted\n" {
		t.Errorf("queue delete said %q", out)
	}
	gw.waitLine(t, "msg", "queue: deleted", "queue_id", ids["cli-deleted"]) // the command's note, picked up by a poll
	for _, k := range []string{"tagged", "redirected", "learned", "forged"} {
		gw.waitLine(t, "msg", "delivery", "queue_id", ids[k], "status", "sent")
	}

	lines := gw.lines(t)
	checkTrace(t, lines)
	checkSecrets(t, gw.g.logs())
	for _, id := range ids {
		milestone(t, lines, id, "msg", "decision", "phase", "data")
	}
	for _, k := range []string{"delivered", "tagged", "redirected", "learned", "bounced", "cli-bounced", "cli-deleted"} {
		milestone(t, lines, ids[k], "msg", "queued", "client", "127.0.0.1", "from", "a@example.org")
	}
	milestone(t, lines, ids["delivered"], "msg", "queued", "message_id", "<plain@client.example.org>")
	// What the queue commands did, from the notes they leave the daemon.
	milestone(t, lines, ids["cli-bounced"], "msg", "queue: bounced", "by", "portcullis queue bounce", "dsn_id", m[1])
	milestone(t, lines, m[1], "msg", "queued", "dsn_of", ids["cli-bounced"])
	milestone(t, lines, ids["cli-deleted"], "msg", "queue: deleted", "by", "portcullis queue delete")
	milestone(t, lines, ids["quarantined"], "msg", "queue: released from the quarantine")
	// In its envelope form, as the client wrote it.
	milestone(t, lines, ids["forged"], "msg", "queued", "from", `"x\" queue_id=`+traceForged+` msg=\"forged"@example.org`)
	for _, k := range []string{"delivered", "tagged", "redirected", "learned", "quarantined", "forged"} {
		milestone(t, lines, ids[k], "msg", "delivery", "status", "sent", "dsn", "2.0.0")
		milestone(t, lines, ids[k], "msg", "removed")
	}
	milestone(t, lines, ids["tagged"], "msg", "decision", "phase", "data", "applied", "tag:mark")
	milestone(t, lines, ids["redirected"], "msg", "decision", "phase", "data", "applied", "redirect:divert")
	milestone(t, lines, ids["redirected"], "msg", "redirected", "rcpts", "diverted@example.test", "orig_rcpts", "b@example.test")
	milestone(t, lines, ids["redirected"], "msg", "delivery", "rcpt", "diverted@example.test")
	// A discarded message was answered 250 with its ID too: the line that
	// ends its trace says who sent it, as a queued one's does.
	milestone(t, lines, ids["discarded"], "msg", "discarded", "client", "127.0.0.1", "from", "a@example.org", "nrcpt", "1")
	milestone(t, lines, ids["learned"], "msg", "decision", "phase", "data", "applied", "learn_spam:teach")
	milestone(t, lines, ids["learned"], "msg", "learning", "learn", "spam")
	milestone(t, lines, ids["learned"], "msg", "bayes autolearn")
	milestone(t, lines, ids["quarantined"], "msg", "decision", "phase", "data", "action", "quarantine", "rule", "hold")
	for _, id := range ids {
		// A plugin's own line, forwarded by the host with its stage name.
		l := milestone(t, lines, id, "msg", "tracelog: checked", "stage", "tracelog")
		if l.get("session") == "" {
			t.Errorf("forwarded plugin line without session: %s", l)
		}
	}
	milestone(t, lines, ids["quarantined"], "msg", "quarantined", "rule", "hold")
	milestone(t, lines, ids["bounced"], "msg", "delivery", "status", "bounced")
	milestone(t, lines, ids["bounced"], "msg", "delivery: DSN queued", "dsn_id", dsn)
	milestone(t, lines, dsn, "msg", "queued", "dsn_of", ids["bounced"])
	milestone(t, lines, dsn, "msg", "delivery", "status", "sent", "rcpt", "a@example.org")
	if level == "debug" {
		milestone(t, lines, ids["delivered"], "msg", "stage", "phase", "data", "stage", "hello")
		milestone(t, lines, ids["delivered"], "msg", "stage", "phase", "data", "stage", "bayes")
	}
	// The rejected message: its refusal carries the session and the ID the
	// data phase ran under, though the client never saw one.
	refused := gw.waitLine(t, "msg", "refused", "phase", "data")
	if refused.get("queue_id") == "" || refused.get("session") == "" || refused.get("rule") != "hello-reject" {
		t.Errorf("refusal at data without queue_id, session or rule: %s", refused)
	}
	checkForgery(t, lines)
}

// checkForgery: the forged text stays inside the values that carried it.
func checkForgery(t *testing.T, lines []logLine) {
	t.Helper()
	carried, escaped := 0, 0
	for _, l := range lines {
		if l.get("queue_id") == traceForged || l.get("msg") == "forged" || l.get("level") == "ERROR" && strings.Contains(l.raw, "forged") {
			t.Errorf("forged field in a log line: %s", l)
		}
		for k, v := range l.attrs {
			if strings.Contains(v, "queue_id="+traceForged) && k != "queue_id" {
				carried++
			}
			if strings.Contains(v, "\x1b[2K\u2028") {
				escaped++ // the raw log holds it escaped: checkSecrets saw no raw byte
			}
		}
	}
	if carried == 0 {
		t.Errorf("no log line carries the forged text in a value (HELO, MAIL FROM): the check saw nothing")
	}
	if escaped == 0 {
		t.Errorf("no log line carries the RCPT with control characters: the check saw nothing")
	}
}

// waitNotLeased waits until the daemon has released its lease on id after
// its attempt (`queue list` marks a leased message with *).
func waitNotLeased(t *testing.T, cfg, id string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := portcullisCLI(t, "queue", "list", "-c", cfg)
		if strings.Contains(out, id) && !strings.Contains(out, id+"*") && !strings.Contains(out, "*"+id) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still leased or gone:\n%s", id, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// traceExpiry: a message deferred until queue.max_age expires, with a
// delay notice first and a failure DSN at the end, all traceable.
func traceExpiry(t *testing.T) {
	gw := startTraceGateway(t, "text", "info", "3s", "1s")
	id := gw.accepted(t, "defer-3@remote.test", "never delivered")
	gw.waitLine(t, "msg", "delivery", "queue_id", id, "status", "expired")
	failed := gw.waitLine(t, "msg", "delivery: DSN queued", "queue_id", id, "action", "failed").get("dsn_id")
	gw.waitLine(t, "msg", "delivery", "queue_id", failed, "status", "sent")
	lines := gw.lines(t)
	checkTrace(t, lines)
	milestone(t, lines, id, "msg", "queued")
	milestone(t, lines, id, "msg", "delivery", "status", "deferred", "rcpt", "defer-3@remote.test")
	delayed := milestone(t, lines, id, "msg", "delivery: DSN queued", "action", "delayed").get("dsn_id")
	milestone(t, lines, delayed, "msg", "queued", "dsn_of", id)
	milestone(t, lines, failed, "msg", "queued", "dsn_of", id)
}
