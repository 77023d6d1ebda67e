package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The content stages of examples/rules/content.yaml (subject, textfilter,
// execfilter, antivirus) run here through `portcullis run` against a real
// clamd started by ../shared/clamd/start-clamd.sh, with an in-process next
// hop (startNextHop) capturing what is relayed. Fixtures are built in code:
// executables and the EICAR string are never committed.

// contentGW is the gateway under test and what surrounds it.
type contentGW struct {
	g              *gateway
	addr, cfg, dir string // dir holds the config, spool/ and quarantine/
	hop            *nextHop
	clamd          *contentClamd
}

// spooled lists the files under spool/ and quarantine/ (drafts included)
// that hold message id: a refused message must leave none.
func (gw *contentGW) spooled(t *testing.T, id string) []string {
	t.Helper()
	var found []string
	for _, sub := range []string{"spool", "quarantine"} {
		err := filepath.WalkDir(filepath.Join(gw.dir, sub), func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			b, err := os.ReadFile(p)
			if err == nil && bytes.Contains(b, []byte("<"+id+"@client.example.org>")) {
				found = append(found, p)
			}
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
	}
	return found
}

// refused sends msg, wants the reply want, and checks that nothing of it
// was kept or relayed and that the gateway logged the refusal.
func (gw *contentGW) refused(t *testing.T, id, msg, want string) reply {
	t.Helper()
	logged := strings.Count(gw.g.logs(), "msg=refused")
	r := sendOne(gw.addr, "b@example.test", msg)
	if !strings.HasPrefix(r.String(), want) {
		t.Fatalf("reply %v, want %s", r, want)
	}
	// sendOne waited for QUIT's 221, so the DATA handler is done.
	if files := gw.spooled(t, id); len(files) > 0 {
		t.Errorf("refused message %s left files %v", id, files)
	}
	if contentByID(gw.hop.received(), id) != nil {
		t.Errorf("refused message %s reached the next hop", id)
	}
	for i := 0; strings.Count(gw.g.logs(), "msg=refused") == logged; i++ {
		if i == 500 {
			t.Fatalf("no refused line logged for %s:\n%s", id, gw.g.logs())
		}
		time.Sleep(10 * time.Millisecond) // stderr is read by another goroutine
	}
	return r
}

// accepted sends msg and returns the queue ID of its 250 reply.
func (gw *contentGW) accepted(t *testing.T, msg string) string {
	t.Helper()
	r := sendOne(gw.addr, "b@example.test", msg)
	if r.queueID() == "" {
		t.Fatalf("reply %v, want 250 with a queue ID", r)
	}
	return r.queueID()
}

// held checks that `quarantine list` holds queue ID id for rule.
func (gw *contentGW) held(t *testing.T, id, rule string) {
	t.Helper()
	list := portcullisCLI(t, "quarantine", "list", "-c", gw.cfg)
	i := strings.Index(list, id)
	if i < 0 {
		t.Fatalf("quarantine list does not hold %s:\n%s", id, list)
	}
	entry, _, _ := strings.Cut(list[i:], "\n    to:")
	if !strings.Contains(entry, "reason: rule "+rule+"\n") {
		t.Fatalf("quarantine list holds %s without reason rule %s:\n%s", id, rule, list)
	}
}

// TestE2EContent runs `portcullis run` with examples/rules/content.yaml
// (only its clamd socket changed) against a real clamd: executables are
// refused, viruses and spam text are held in the quarantine, clean and
// Japanese mail is relayed, a Japanese subject pattern prefixes an
// ISO-2022-JP subject, and clamd down means 451 with nothing kept until it
// is back.
func TestE2EContent(t *testing.T) {
	clamd := startContentClamd(t)
	hop := startNextHop(t, false)
	cfg, dir := e2eSetup(t, hop, map[string]string{"rules-content.yaml": contentRules(t, clamd.sock)})
	g := startGateway(t, cfg)
	gw := &contentGW{g: g, addr: g.addr, cfg: cfg, dir: dir, hop: hop, clamd: clamd}
	var held int // messages the quarantine must hold

	t.Run("executables and archives refused", gw.executables)
	t.Run("viruses quarantined", func(t *testing.T) { held += gw.viruses(t) })
	t.Run("clean and Japanese mail delivered", gw.clean)
	t.Run("Japanese subject pattern", gw.subjectTag)
	t.Run("encrypted archive tagged", gw.uninspected)
	t.Run("Japanese text quarantined", func(t *testing.T) { held += gw.spamText(t) })
	t.Run("GTUBE quarantined", func(t *testing.T) { held += gw.gtube(t) })
	t.Run("clamd down is 451 and nothing kept", gw.clamdDown)
	t.Log(gw.g.logs())

	// Everything accepted and not held has left the queue for the next hop.
	if out := portcullisCLI(t, "queue", "list", "-c", cfg); !strings.Contains(out, "-- 0 messages") {
		t.Errorf("the delivery queue is not empty at the end:\n%s", out)
	}
	out := portcullisCLI(t, "quarantine", "list", "-c", cfg)
	if want := fmt.Sprintf("-- %d messages held", held); !strings.Contains(out, want) {
		t.Errorf("quarantine list, want %q:\n%s", want, out)
	}
	for _, m := range hop.received() {
		if id := m.header("Message-ID"); strings.HasPrefix(id, "<pe-") || strings.HasPrefix(id, "<eicar-") || strings.HasPrefix(id, "<spam-") || strings.HasPrefix(id, "<gtube") {
			t.Errorf("%s reached the next hop", id)
		}
	}
}

// executables: the example's reject rules give their 554 at the end of
// DATA for a PE named invoice.pdf, a PE in a ZIP, a PE whose name is an
// RFC 2231 Shift_JIS value (which go-message cannot decode), a ZIP past the
// example's max_ratio and an RTF matching its signature.
func (gw *contentGW) executables(t *testing.T) {
	const exe = "554 5.7.1 Executable attachments are not accepted"
	rtf := []byte(`{\rtf1{\object\objemb{\*\objdata 0105}}}`)
	for _, tc := range []struct {
		id, name, want string
		att            []byte
	}{
		{"pe-pdf", "invoice.pdf", exe, contentPE()},
		{"pe-zip", "invoice.zip", exe, contentZip(t, "invoice.exe", contentPE())},
		{"pe-sjis-name", contentRFC2231(t, "Shift_JIS", "請求書.pdf"), exe, contentPE()},
		{"pe-ratio", "zeros.zip", "554 5.7.1 Attachment exceeds the inspection limits", contentZip(t, "zeros.bin", make([]byte, 4<<20))},
		{"pe-rtf", "order.doc", "554 5.7.1 Attachment matches a blocked signature", rtf},
	} {
		t.Run(tc.id, func(t *testing.T) {
			gw.refused(t, tc.id, contentMsg(tc.id, "invoice", contentASCII("see attached"), tc.name, tc.att), tc.want)
		})
	}
}

// viruses: EICAR as the text, in a ZIP and as a base64 attachment is
// accepted (250) and held with the rule's reason and clamd's finding.
func (gw *contentGW) viruses(t *testing.T) int {
	n := 0
	for _, tc := range []struct {
		id, text, attName string
		att               []byte
	}{
		{id: "eicar-plain", text: string(contentEICAR())},
		{id: "eicar-zip", text: "see attached", attName: "report.zip", att: contentZip(t, "report.txt", contentEICAR())},
		{id: "eicar-att", text: "see attached", attName: "readme.txt", att: contentEICAR()},
		// Both the virus and the executable rule match: the first, virus, wins.
		{id: "eicar-in-pe", text: "see attached", attName: "setup.exe", att: append(contentPE(), contentEICAR()...)},
	} {
		t.Run(tc.id, func(t *testing.T) {
			id := gw.accepted(t, contentMsg(tc.id, "files", contentASCII(tc.text), tc.attName, tc.att))
			n++
			gw.held(t, id, "virus")
			// The spool scan that finds nothing of refused messages does
			// find a held one.
			if len(gw.spooled(t, tc.id)) == 0 {
				t.Errorf("no file under quarantine/ holds %s", tc.id)
			}
			show := portcullisCLI(t, "quarantine", "show", id, "-c", gw.cfg)
			if !strings.Contains(show, "Custom.Test.EICAR-NDB.UNOFFICIAL") {
				t.Errorf("quarantine show %s lacks clamd's signature name:\n%s", id, show)
			}
		})
	}
	return n
}

// clean: ASCII mail and Japanese mail in each of its three charsets reach
// the next hop unchanged.
func (gw *contentGW) clean(t *testing.T) {
	const subject, body = "会議のお知らせ", "明日の会議は十時からです。よろしくお願いします。"
	for _, tc := range []struct {
		id, subject string
		text        contentText
	}{
		{"clean-ascii", "quarterly report", contentASCII("Please find the figures below.")},
		{"clean-jis", contentWord(t, "ISO-2022-JP", subject), contentJapanese(t, "ISO-2022-JP", body)},
		{"clean-sjis", contentWord(t, "Shift_JIS", subject), contentJapanese(t, "Shift_JIS", body)},
		{"clean-euc", contentWord(t, "EUC-JP", subject), contentJapanese(t, "EUC-JP", body)},
	} {
		t.Run(tc.id, func(t *testing.T) {
			id := gw.accepted(t, contentMsg(tc.id, tc.subject, tc.text, "", nil))
			m := contentByID(gw.hop.waitFor(t, tc.id, contentHas(tc.id)), tc.id)
			if got := m.header("Subject"); got != tc.subject {
				t.Errorf("Subject relayed as %q, want %q", got, tc.subject)
			}
			if !strings.Contains(m.data, "\r\n\r\n"+tc.text.wire+"\r\n") {
				t.Errorf("body not relayed byte for byte:\n%q", m.data)
			}
			if !strings.Contains(m.data, id) {
				t.Errorf("relayed message lacks its queue ID %s in Received", id)
			}
		})
	}
}

// subjectTag: the example's subject list ("未承諾広告", "viagra" in UTF-8)
// matches encoded Japanese subjects, also in full-width letters, and its
// tag rule's subject_prefix "[SPAM] " goes before the encoded subject (one
// space between them).
func (gw *contentGW) subjectTag(t *testing.T) {
	for _, tc := range []struct {
		id, charset string
		words       []string // one encoded-word each, folded onto lines of their own
	}{
		{"subj-jis", "ISO-2022-JP", []string{"未承諾広告※春のセール"}},
		{"subj-fullwidth", "ISO-2022-JP", []string{"ｖｉａｇｒａ　格安"}},
		{"subj-sjis", "Shift_JIS", []string{"【未承諾広告】ご案内"}},
		// Long subjects come in several words; the pattern straddles two.
		{"subj-folded", "ISO-2022-JP", []string{"【未承", "諾広告】期間限定のご案内"}},
	} {
		t.Run(tc.id, func(t *testing.T) {
			raw := make([]string, len(tc.words))
			for i, w := range tc.words {
				raw[i] = contentWord(t, tc.charset, w)
			}
			gw.accepted(t, contentMsg(tc.id, strings.Join(raw, "\r\n "), contentJapanese(t, tc.charset, "本文です。"), "", nil))
			m := contentByID(gw.hop.waitFor(t, tc.id, contentHas(tc.id)), tc.id)
			got := contentDecodeSubject(t, contentSubject(m))
			if want := "[SPAM] " + strings.Join(tc.words, ""); got != want {
				t.Errorf("subject relayed as %q (raw %q), want %q", got, contentSubject(m), want)
			}
		})
	}
}

// contentSubject is the relayed Subject unfolded (RFC 5322 3.2.2: only the
// CRLF goes); hopMsg.header reads just the first line.
func contentSubject(m *hopMsg) string {
	head, _, _ := strings.Cut(m.data, "\r\n\r\n")
	head = strings.NewReplacer("\r\n ", " ", "\r\n\t", "\t").Replace(head)
	for _, l := range strings.Split(head, "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, "Subject") {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// spamText: three of the example's Japanese spam words (weight 1 each,
// threshold 3) in a body of any Japanese charset get the message held.
func (gw *contentGW) spamText(t *testing.T) int {
	const body = "出会い系サイトに無料登録すれば今すぐ儲かる！"
	n := 0
	for _, cs := range []string{"ISO-2022-JP", "Shift_JIS", "EUC-JP"} {
		t.Run(cs, func(t *testing.T) {
			id := gw.accepted(t, contentMsg("spam-"+cs, contentWord(t, cs, "ご案内"), contentJapanese(t, cs, body), "", nil))
			n++
			gw.held(t, id, "spam_text")
		})
	}
	return n
}

// gtube: SpamAssassin's test string, which admins send to try the spam
// path, gets the message held by the example's text list alone.
func (gw *contentGW) gtube(t *testing.T) int {
	const body = "This is the GTUBE, the Generic Test for Unsolicited Bulk Email.\r\n\r\n" +
		"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n"
	id := gw.accepted(t, contentMsg("gtube", "Test spam mail (GTUBE)", contentASCII(body), "", nil))
	gw.held(t, id, "spam_text")
	return 1
}

// clamdDown: with clamd stopped the av stage's on_error tempfail gives 451
// at the end of DATA and nothing is kept; once clamd is back the sender's
// retry of the same message is accepted and relayed once.
func (gw *contentGW) clamdDown(t *testing.T) {
	msg := contentMsg("retry", "retry me", contentASCII("a clean message sent while clamd is down"), "", nil)
	gw.clamd.stop(t)
	r := gw.refused(t, "retry", msg, "451 4.")
	if strings.Contains(r.text, gw.clamd.sock) || strings.Contains(r.text, "dial") {
		t.Errorf("the 451 leaks the Go error to the client: %v", r)
	}
	gw.clamd.start(t)
	gw.accepted(t, msg)
	gw.hop.waitFor(t, "the retried message", contentHas("retry"))
	n := 0
	for _, m := range gw.hop.received() {
		if contentByID([]hopMsg{m}, "retry") != nil {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the retried message was relayed %d times, want once", n)
	}
}

// uninspected: an encrypted ZIP ("PPAP") cannot be looked into; the
// example's tag rule lets it through with the default tag header.
func (gw *contentGW) uninspected(t *testing.T) {
	ppap := contentEncryptedZip(t, "見積書.xlsx", []byte("PK\x03\x04 stands in for ciphertext"))
	subject := contentWord(t, "ISO-2022-JP", "見積書送付の件")
	gw.accepted(t, contentMsg("ppap", subject, contentJapanese(t, "ISO-2022-JP", "パスワードは別途お送りします。"), "mitsumori.zip", ppap))
	m := contentByID(gw.hop.waitFor(t, "the encrypted archive", contentHas("ppap")), "ppap")
	if got := m.header("X-Portcullis-Tag"); got != "uninspected_archive" {
		t.Errorf("X-Portcullis-Tag %q, want uninspected_archive (the example's rule)", got)
	}
	if got := m.header("Subject"); got != subject {
		t.Errorf("Subject relayed as %q, want it unchanged %q", got, subject)
	}
}

// BenchmarkE2EContent is the price of examples/rules/content.yaml (four
// stages, the last a real clamd) end to end: 20 sessions send a 4 KB
// ISO-2022-JP message with a small ZIP attachment, which every stage
// passes, through a gateway without rule files (the baseline, same run)
// and one with the example. The closing log line gives msgs/s as a ratio
// to the baseline and the CPU per message of the daemon, its plugin
// processes and clamd (from /proc, robust where wall time is not).
func BenchmarkE2EContent(b *testing.B) {
	clamd := startContentClamd(b)
	body := strings.Repeat("四半期の売上報告書を添付いたします。ご確認ください。\r\n", 60)
	att := contentZip(b, "report.csv", []byte(strings.Repeat("2026-10,東京,1200\r\n", 60)))
	msg := contentMsg("bench", contentWord(b, "ISO-2022-JP", "売上報告"), contentJapanese(b, "ISO-2022-JP", body), "report.zip", att)
	type run struct{ rate, daemon, plugins, clamd float64 }
	var runs [2]run
	for i, rules := range []string{"", contentRules(b, clamd.sock)} {
		hop := startNextHop(b, true)
		files := map[string]string{}
		if rules != "" {
			files["rules-content.yaml"] = rules
		}
		cfg, _ := e2eSetup(b, hop, files)
		g := startGateway(b, cfg)
		cpu := func() (d, p, c time.Duration) {
			for _, pid := range pluginPIDs(b, portcullisBinary(b)) {
				if pid != g.cmd.Process.Pid {
					p += procCPU(pid)
				}
			}
			return procCPU(g.cmd.Process.Pid), p, procCPU(clamd.pid(b))
		}
		b.Run(fmt.Sprintf("content=%v", rules != ""), func(b *testing.B) {
			d0, p0, c0 := cpu()
			rate := benchSessions(b, g.addr, hop, msg)
			d1, p1, c1 := cpu()
			us := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(b.N) }
			runs[i] = run{rate, us(d1 - d0), us(p1 - p0), us(c1 - c0)}
			b.ReportMetric(runs[i].daemon, "daemon-cpu-us/msg")
			b.ReportMetric(runs[i].plugins, "plugin-cpu-us/msg")
			b.ReportMetric(runs[i].clamd, "clamd-cpu-us/msg")
		})
		_ = g.cmd.Process.Signal(syscall.SIGTERM)
		<-g.done
	}
	if base, c := runs[0], runs[1]; base.rate > 0 {
		baseCPU, cCPU := base.daemon+base.plugins, c.daemon+c.plugins+c.clamd
		b.Logf("no rules %.0f msgs/s, %.0f us CPU/msg; content.yaml %.0f msgs/s = %.2f of it, %.0f us CPU/msg = %.1fx (daemon %.0f + plugins %.0f + clamd %.0f)",
			base.rate, baseCPU, c.rate, c.rate/base.rate, cCPU, cCPU/baseCPU, c.daemon, c.plugins, c.clamd)
	}
}

// pid is clamd's process ID from the file start-clamd.sh writes.
func (c *contentClamd) pid(tb testing.TB) int {
	b, err := os.ReadFile(filepath.Join(c.state, "clamd.pid"))
	if err != nil {
		tb.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		tb.Fatal(err)
	}
	return pid
}
