package delivery

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/dnsresolve"
	"github.com/portcullis-mta/portcullis/core/queue"
)

// lockstepEHLO is a server without PIPELINING: every reply is read before
// the next command, so a script sees exactly what was sent.
const lockstepEHLO = "250-script.test\r\n250 ENHANCEDSTATUSCODES\r\n"

// nextMXWorld has dom.test served by mx1 (127.0.0.2, a scripted peer
// answering with reply, else as a plain server) and mx2 (127.0.0.3, less
// preferred), mail for local.test going home; one attempt per message.
func nextMXWorld(t *testing.T, reply func(string) string) (w *world, mx1 *scriptPeer, mx2, home *peer) {
	t.Helper()
	mx1 = newScriptPeer(t, func(line string) string {
		if r := reply(line); r != "" {
			return r
		}
		return basicReplies(lockstepEHLO, line)
	})
	mx2, home = newPeer(t), newPeer(t)
	cfg := baseConfig(t)
	cfg.Queue.Workers = 1
	cfg.Queue.Retry = []config.Duration{config.Duration(3600e9)} // one attempt in this test
	cfg.Routes = []config.Route{mkRoute([]string{"local.test"}, home.addr), mkRoute([]string{"*"}, "mx")}
	w = twoMXWorld(t, cfg, mx1.addr, mx2.addr)
	return w, mx1, mx2, home
}

// RFC 5321 5.1 and Postfix (a soft error keeps the recipient for the next
// server): recipients an MX host defers inside the transaction go on to
// the next MX host in the same attempt; those it delivered are not sent
// again, and those it refused with a 5xx fail without going anywhere else.
func TestNextMXAfterTransactionDeferred(t *testing.T) {
	rcptBy := func(by map[string]string) func(string) string {
		return func(line string) string {
			for who, r := range by {
				if strings.HasPrefix(line, "RCPT TO:<"+who+"@") {
					return r
				}
			}
			return ""
		}
	}
	for _, tt := range []struct {
		name   string
		reply  func(line string) string // mx1's, "" for a plain server's
		toMX2  string                   // the recipients mx2 gets, in one transaction
		failed []string
	}{
		{"421 at MAIL", func(l string) string {
			if strings.HasPrefix(l, "MAIL") {
				return "421 4.3.2 too busy, closing\r\n"
			}
			return ""
		}, "a@dom.test,b@dom.test,c@dom.test", nil},
		{"4xx to every RCPT", func(l string) string {
			if strings.HasPrefix(l, "RCPT") {
				return "451 4.3.0 try later\r\n"
			}
			return ""
		}, "a@dom.test,b@dom.test,c@dom.test", nil},
		{"4xx to the final dot", func(l string) string {
			if l == "." {
				return "451 4.3.0 queue full\r\n"
			}
			return ""
		}, "a@dom.test,b@dom.test,c@dom.test", nil},
		{"250, 451 and 550 to RCPT", rcptBy(map[string]string{
			"b": "451 4.2.1 mailbox busy\r\n",
			"c": "550 5.1.1 no such user\r\n",
		}), "b@dom.test", []string{"c@dom.test"}},
		{"550 at MAIL is final", func(l string) string {
			if strings.HasPrefix(l, "MAIL") {
				return "550 5.7.1 sender refused\r\n"
			}
			return ""
		}, "", []string{"a@dom.test", "b@dom.test", "c@dom.test"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w, _, mx2, home := nextMXWorld(t, tt.reply)
			id := w.enqueue("u@local.test", []string{"a@dom.test", "b@dom.test", "c@dom.test"}, localSender, plainBody)
			w.start()
			// With one attempt per message, the message gone says every
			// recipient was settled in the first.
			w.waitFor("the first attempt", func() bool { e, err := w.q.Get(id); return err != nil || e.Attempts == 1 })
			if e, err := w.q.Get(id); err == nil {
				for _, r := range e.Rcpts {
					t.Errorf("%s left %s for a later attempt (%s)", r.Addr, r.Status, r.LastReply)
				}
			}
			logs := w.logs.String()
			for _, r := range []string{"a@dom.test", "b@dom.test", "c@dom.test"} {
				want := "status=sent"
				if slices.Contains(tt.failed, r) {
					want = "status=bounced"
				}
				if !logLine(logs, "queue_id="+id+" rcpt="+r+" ", want) {
					t.Errorf("%s: no log line with %s", r, want)
				}
			}
			var got []string
			for _, m := range mx2.messages() {
				got = append(got, strings.Join(m.rcpts, ","))
			}
			if want := slices.DeleteFunc([]string{tt.toMX2}, func(s string) bool { return s == "" }); !slices.Equal(got, want) {
				t.Errorf("mx2 got transactions for %q, want %q", got, want)
			}
			if len(tt.failed) > 0 {
				w.waitFor("the DSN", func() bool { return len(home.messages()) == 1 })
				d := parseDSN(t, home.messages()[0])
				for _, r := range []string{"a@dom.test", "b@dom.test", "c@dom.test"} {
					if in := strings.Contains(d.parts[1], "rfc822; "+r); in != slices.Contains(tt.failed, r) {
						t.Errorf("DSN mentions %s: %v, want %v", r, in, !in)
					}
				}
			}
		})
	}
}

// The fall-back also follows a deferral on a pooled connection: the second
// message reuses the session with mx1, which defers its recipient.
func TestNextMXAfterPooledSessionDeferred(t *testing.T) {
	w, mx1, mx2, _ := nextMXWorld(t, func(l string) string {
		if strings.HasPrefix(l, "RCPT TO:<late@") {
			return "451 4.2.1 mailbox busy\r\n"
		}
		return ""
	})
	w.enqueue("u@local.test", []string{"x@dom.test"}, localSender, plainBody)
	w.start()
	w.waitFor("the first message", func() bool { return w.queueEmpty() })
	id := w.enqueue("u@local.test", []string{"late@dom.test"}, localSender, plainBody)
	w.waitFor("the second attempt", func() bool { return w.queueEmpty() || w.get(id).Attempts == 1 })
	if m := mx2.messages(); len(m) != 1 || strings.Join(m[0].rcpts, ",") != "late@dom.test" {
		t.Errorf("mx2 got %+v, want one message for late@dom.test", m)
	}
	var ehlo int
	for _, c := range mx1.commands() {
		if strings.HasPrefix(c, "EHLO") {
			ehlo++
		}
	}
	if ehlo != 1 {
		t.Errorf("%d sessions with mx1, want 1 (the second message on the pooled one)", ehlo)
	}
}

// Postfix's smtp_mx_address_limit: an attempt tries at most maxHops
// addresses, however many the MX hosts have and however each defers.
func TestNextMXAddressLimit(t *testing.T) {
	mx := newScriptPeer(t, func(line string) string {
		if strings.HasPrefix(line, "MAIL") {
			return "451 4.3.0 try later\r\n"
		}
		return basicReplies(lockstepEHLO, line)
	})
	cfg := baseConfig(t)
	cfg.Queue.Retry = []config.Duration{config.Duration(3600e9)} // one attempt in this test
	records := []string{"many.test. 60 IN MX 10 mx1.many.test.", "many.test. 60 IN MX 20 mx2.many.test."}
	for i, a := range []string{"127.0.0.21", "127.0.0.22", "127.0.0.23", "127.0.0.24", "127.0.0.25", "127.0.0.26", "127.0.0.27"} {
		host := "mx1"
		if i >= 4 {
			host = "mx2"
		}
		records = append(records, host+".many.test. 60 IN A "+a)
	}
	w := newWorld(t, cfg, records...)
	for i := 21; i <= 27; i++ {
		w.mapAddr(fmt.Sprintf("127.0.0.%d:25", i), mx.addr)
	}
	id := w.enqueue("u@local.test", []string{"x@many.test"}, localSender, plainBody)
	w.start()
	w.waitFor("the first attempt", func() bool { return w.get(id).Attempts == 1 })
	var mail int
	for _, c := range mx.commands() {
		if strings.HasPrefix(c, "MAIL") {
			mail++
		}
	}
	if mail != maxHops {
		t.Errorf("%d transactions in one attempt, want %d", mail, maxHops)
	}
	if r := w.get(id).Rcpts[0]; r.Status != queue.RcptPending || !strings.HasPrefix(r.LastReply, "451 4.3.0") {
		t.Errorf("recipient %s %q, want pending with the last host's 451", r.Status, r.LastReply)
	}
}

// logLine reports whether one line of logs has every one of subs.
func logLine(logs string, subs ...string) bool {
	for _, l := range strings.Split(logs, "\n") {
		if !slices.ContainsFunc(subs, func(s string) bool { return !strings.Contains(l, s) }) {
			return true
		}
	}
	return false
}

// mxResolver answers with its MX list as given, in that order (the real
// resolver shuffles hosts of equal preference), and one address per host.
type mxResolver []dnsresolve.MX

func (r mxResolver) LookupMX(context.Context, string) ([]dnsresolve.MX, error) {
	return slices.Clone(r), nil
}

func (r mxResolver) LookupIP(_ context.Context, host string) ([]netip.Addr, error) {
	for i, mx := range r {
		if mx.Host == host {
			return []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 1, byte(i)})}, nil
		}
	}
	return nil, &dnsresolve.Error{Name: host, NotFound: true}
}

// RFC 5321 5.1: when we are in the MX list, every host with our preference
// or a worse one is discarded, whatever order the shuffle put hosts of
// equal preference in; if none is left, the mail would loop (5.4.6).
func TestMXAtOurPreferenceDiscarded(t *testing.T) {
	for _, tt := range []struct {
		name string
		mxs  string // "pref host, ..." in the order the resolver gives
		want string // the hosts kept, or the reply
	}{
		{"peer of equal preference shuffled ahead of us",
			"10 primary.test, 20 peer.test, 20 gw.test, 30 worse.test", "primary.test"},
		{"us shuffled ahead of our peer", "10 primary.test, 20 gw.test, 20 peer.test", "primary.test"},
		{"only peers of our preference", "10 peer.test, 10 GW.test", "554 5.4.6 mail for dom.test loops back to myself"},
		{"not in the list", "10 a.test, 10 b.test, 20 c.test", "a.test b.test c.test"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var r mxResolver
			for _, mx := range strings.Split(tt.mxs, ", ") {
				var pref uint16
				var host string
				fmt.Sscan(mx, &pref, &host)
				r = append(r, dnsresolve.MX{Host: host, Pref: pref})
			}
			s := &settings{resolver: r, hostname: "gw.test"}
			hops, why := (&Manager{}).hops(context.Background(), s, defaultRoute, "dom.test")
			var got []string
			for _, h := range hops {
				got = append(got, h.host)
			}
			if why != nil {
				got = append(got, why.String())
			}
			if g := strings.Join(got, " "); g != tt.want {
				t.Errorf("got %q, want %q", g, tt.want)
			}
		})
	}
}

// A refusal before any transaction (a 5xx greeting, a 5xx to EHLO, or to
// EHLO and HELO) says the host will not talk to us now, not that the
// recipients do not exist: with the only MX host answering so, the
// recipients wait with 4.4.0 for a later attempt (or another host) instead
// of bouncing for good.
// Postfix likewise does not bounce on a 5xx greeting (smtp_skip_5xx_greeting,
// yes by default).
func TestSessionRefusalBeforeTransactionDefers(t *testing.T) {
	for _, tt := range []struct {
		name     string
		greeting string
		reply    func(line string) string
		said     string // the host's reply, quoted in ours
	}{
		{"554 greeting", "554 5.7.1 mx.dom.test no service for you\r\n", func(l string) string {
			return basicReplies(lockstepEHLO, l)
		}, "554 5.7.1 mx.dom.test no service for you"},
		{"550 to EHLO", "220 mx.dom.test ESMTP\r\n", func(l string) string {
			if strings.HasPrefix(l, "EHLO") {
				return "550 5.7.1 not from your network\r\n"
			}
			return basicReplies(lockstepEHLO, l)
		}, "550 5.7.1 not from your network"},
		{"554 to EHLO and HELO", "220 mx.dom.test ESMTP\r\n", func(l string) string {
			if strings.HasPrefix(l, "EHLO") || strings.HasPrefix(l, "HELO") {
				return "554 5.7.1 go away\r\n"
			}
			return basicReplies(lockstepEHLO, l)
		}, "554 5.7.1 go away"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mx := newScriptPeerGreeting(t, tt.greeting, tt.reply)
			home := newPeer(t)
			cfg := baseConfig(t)
			cfg.Queue.Retry = []config.Duration{config.Duration(3600e9)} // one attempt in this test
			cfg.Routes = []config.Route{mkRoute([]string{"local.test"}, home.addr), mkRoute([]string{"*"}, "mx")}
			w := newWorld(t, cfg, "dom.test. 60 IN MX 10 mx.dom.test.", "mx.dom.test. 60 IN A 127.0.0.2")
			w.mapAddr("127.0.0.2:25", mx.addr)
			id := w.enqueue("u@local.test", []string{"a@dom.test", "b@dom.test"}, localSender, plainBody)
			w.start()
			var env *queue.Envelope
			var err error
			w.waitFor("an attempt", func() bool {
				env, err = w.q.Get(id)
				return err != nil || env.Attempts >= 1
			})
			if err != nil {
				t.Fatalf("the message left the queue after one attempt (its recipients bounced?): %v", err)
			}
			for _, r := range env.Rcpts {
				if r.Status != queue.RcptPending || !strings.HasPrefix(r.LastReply, "451 4.4.0 ") ||
					!strings.Contains(r.LastReply, tt.said) {
					t.Errorf("%s: %s %q, want pending with 451 4.4.0 quoting %q", r.Addr, r.Status, r.LastReply, tt.said)
				}
			}
			if n := len(mx.messages()); n != 0 {
				t.Errorf("%d messages sent to a host that refused the session", n)
			}
			// RFC 5321 3.1: a server refusing in its greeting waits for
			// QUIT; any refusal before a transaction ends with one.
			w.waitFor("QUIT", mx.quitLast)
			if n := len(home.messages()); n != 0 || strings.Contains(w.logs.String(), "DSN queued") {
				t.Errorf("a DSN for a refusal before any transaction (%d sent)", n)
			}
		})
	}
}
