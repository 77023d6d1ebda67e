package smtpd

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/metrics"
	"github.com/portcullis-mta/portcullis/core/pipeline"
)

// startLoop starts the accept loop of listener name on ln; the caller
// holds s.mu.
func (s *Server) startLoop(name string, ln net.Listener, first *listenerConf) {
	p := new(atomic.Pointer[string])
	p.Store(&name)
	s.loopName[name] = p
	s.loops.Add(1)
	go s.acceptLoop(p, ln, first)
}

// acceptLoop takes raw connections off one listener. Each is admitted in its
// own goroutine so that a slow client (PROXY header, pre-greet wait, DNS)
// never holds up the others. first is the listener's configuration when
// bound; it serves connections still being admitted after a reload removed it.
func (s *Server) acceptLoop(loopName *atomic.Pointer[string], ln net.Listener, first *listenerConf) {
	defer s.loops.Done()
	var delay time.Duration
	for {
		raw, err := ln.Accept()
		name := *loopName.Load() // a reload may have renamed the listener
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off, go on.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed", "listener", name, "err", err)
			time.Sleep(delay)
			continue
		}
		delay = 0
		s.loops.Add(1)
		go func() {
			defer s.loops.Done()
			s.admit(name, first, raw)
		}()
	}
}

// bufConn reads through a bufio.Reader, so that bytes read ahead while
// parsing a PROXY header are not lost.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// admit runs everything that comes before the greeting; then go-smtp
// takes the connection over.
func (s *Server) admit(name string, first *listenerConf, raw net.Conn) {
	g := s.current()
	lc := g.listener(name, first)
	id := newID()
	log := g.log.With("session", id)
	metrics.Active().Connection(name)
	if !s.takeSlot(name) {
		metrics.Active().ConnRefused(metrics.RefusedLimit)
		metrics.Active().Refused("connect", 421)
		s.refuse(raw, replyTooManyConns(g.cfg.Hostname), log.With("listener", name), "too many connections")
		return
	}
	br := bufio.NewReaderSize(raw, readBufSize)
	gc := newGuard(&bufConn{Conn: raw, r: br}, br, g, connInfo{id: id, listener: lc}, log)
	gc.info.ip, gc.info.port = addrPort(raw.RemoteAddr())
	gc.release = func() { s.freeSlot(name, netip.Addr{}) }
	if !s.prelude(gc) {
		gc.release()
		_ = raw.Close()
		return
	}
	ip := gc.info.ip
	if rate := g.cfg.Limits.MaxConnectionRate; rate > 0 && !g.d.Policy.Trusted(ip) && !s.rate.allow(limitKey(ip), rate, g.d.Now()) {
		gc.log.Info("refused", "ip", ip.String(), "reason", "connection rate limit", "reply", replyConnRate(g.cfg.Hostname), "code", 421)
		metrics.Active().ConnRefused(metrics.RefusedLimit)
		gc.countRefusal("connect", 421)
		gc.reply(replyConnRate(g.cfg.Hostname))
		gc.release()
		_ = raw.Close()
		return
	}
	gc.release = func() { s.freeSlot(name, ip) }
	if !s.takeIPSlot(ip) {
		gc.log.Info("refused", "ip", ip.String(), "reason", "too many connections from ip", "reply", replyTooManyFromIP(g.cfg.Hostname), "code", 421)
		metrics.Active().ConnRefused(metrics.RefusedLimit)
		gc.countRefusal("connect", 421)
		gc.reply(replyTooManyFromIP(g.cfg.Hostname))
		s.freeSlot(name, netip.Addr{})
		_ = raw.Close()
		return
	}
	if code, ok := s.welcome(gc); !ok {
		gc.awaitQuit(code)
		_ = gc.Close()
		return
	}
	s.handOver(gc)
}

// prelude reads a PROXY header where one is expected and does the implicit
// TLS handshake. false: close the connection.
func (s *Server) prelude(gc *guardConn) bool {
	lc, cfg := gc.info.listener, gc.srv.cfg
	if lc.ProxyProtocol {
		if !lc.trustedProxy(gc.info.ip) {
			gc.log.Info("refused", "ip", gc.info.ip.String(), "reason", "PROXY header from untrusted address")
			metrics.Active().ConnRefused(metrics.RefusedProxy)
			return false
		}
		// The proxy sends its header at once; a client that trickles it
		// only holds a slot.
		wait := min(cfg.Limits.CommandTimeout.D(), proxyHeaderTimeout)
		if wait <= 0 {
			wait = proxyHeaderTimeout
		}
		src, err := readProxyHeader(gc.raw, gc.br, wait)
		if err != nil {
			gc.log.Info("refused", "ip", gc.info.ip.String(), "reason", "bad PROXY header", "err", err)
			metrics.Active().ConnRefused(metrics.RefusedProxy)
			return false
		}
		if src.IsValid() {
			gc.info.ip, gc.info.port = src.Addr(), int(src.Port())
		}
	}
	gc.log.Info("connect", "ip", gc.info.ip.String(), "port", gc.info.port, "listener", lc.Name)
	if lc.TLS == "implicit" {
		if err := gc.handshake(tlsServer(gc)); err != nil {
			gc.log.Info("tls handshake failed", "err", err)
			return false
		}
		gc.br = bufio.NewReaderSize(gc.inner, readBufSize)
	}
	return true
}

// welcome runs the pre-greet check, the host name lookup and the connect
// phase. ok false: refused with a reply of code (sent).
//
// A client that talked before the greeting (RFC 5321 3.1: it waits for
// it) has conn.pregreet true in every phase's rules. At connect a rule may
// accept it (an allow list of broken but known clients) or refuse it with
// its own reply; when no connect rule accepts or refuses, it is refused
// with 554 5.5.1, as postscreen's "enforce" does at once.
func (s *Server) welcome(gc *guardConn) (code int, ok bool) {
	gc.pregreet = s.pregreet(gc)
	if gc.pregreet && !readsPregreet(gc.srv.d.Pipeline) {
		// No rule could accept it: refused at once, before the host
		// name lookup and the connect stages (a bot flood costs little).
		gc.log.Info("refused", "reason", "pregreet", "reply", replyPregreet, "code", 554)
		metrics.Active().ConnRefused(metrics.RefusedPregreet)
		gc.countRefusal("connect", 554)
		gc.reply(replyPregreet)
		return 554, false
	}
	var herr error
	gc.info.hostname, herr = LookupHost(gc.srv.d.Resolver, gc.info.ip, gc.srv.cfg.DNS.Timeout.D())
	if herr != nil {
		gc.info.hostnameErr = herr.Error()
		gc.log.Info("reverse DNS lookup failed", "ip", gc.info.ip.String(), "err", herr)
	}
	d, err := connectPhase(gc)
	if err != nil {
		attrs := []any{"phase", "connect", "reply", replyLine(err), "code", err.Code}
		if gc.pregreet {
			attrs = append(attrs, "pregreet", true)
		}
		gc.log.Info("refused", attrs...)
		metrics.Active().ConnRefused(metrics.RefusedRule)
		gc.countRefusal("connect", err.Code)
		gc.reply(replyLine(err))
		return err.Code, false
	}
	if gc.pregreet {
		if d != nil && d.Action == pipeline.Accept {
			gc.log.Info("pregreet accepted", "rule", d.Rule)
			return 0, true
		}
		gc.log.Info("refused", "reason", "pregreet", "reply", replyPregreet, "code", 554)
		metrics.Active().ConnRefused(metrics.RefusedPregreet)
		gc.countRefusal("connect", 554)
		gc.reply(replyPregreet)
		return 554, false
	}
	return 0, true
}

// readsPregreet reports whether p's rules may read conn.pregreet (a
// pipeline that cannot say is taken to).
func readsPregreet(p pipeline.Runner) bool {
	if p == nil {
		return false
	}
	r, ok := p.(interface{ ReadsPregreet() bool })
	return !ok || r.ReadsPregreet()
}

// pregreet waits limits.pregreet_delay and reports whether the client
// talked before our greeting (RFC 5321 3.1: the client waits for it).
func (s *Server) pregreet(gc *guardConn) bool {
	wait := gc.srv.cfg.Limits.PregreetDelay.D()
	wait = max(wait, time.Millisecond)
	_ = gc.inner.SetReadDeadline(time.Now().Add(wait))
	_, err := gc.br.Peek(1)
	_ = gc.inner.SetReadDeadline(time.Time{})
	return err == nil
}

// handOver gives gc to the current go-smtp server.
func (s *Server) handOver(gc *guardConn) {
	s.mu.Lock()
	s.conns[gc] = true
	s.live.Add(1)
	s.mu.Unlock()
	metrics.Active().SessionStarted()
	release := gc.release
	gc.release = func() {
		metrics.Active().SessionEnded()
		release()
		s.mu.Lock()
		delete(s.conns, gc)
		s.mu.Unlock()
		s.live.Done()
	}
	for {
		if gc.srv.ln.offer(gc) {
			return
		}
		// A reload (or shutdown) closed that server meanwhile.
		if s.draining.Load() {
			gc.reply(replyShuttingDown)
			_ = gc.Close()
			return
		}
		gc.srv = s.current()
	}
}

// awaitQuit ends a connection refused in its greeting as RFC 5321 3.1
// asks: after a 554 the server waits for QUIT and answers any other
// command 503, so the client gets its 221 rather than a hang-up; a 421
// closes the channel by its meaning, and so does a 521 (RFC 7504 3: this
// host accepts no mail, and the server may close at once; the session
// ends on it at every phase, afterReply). The wait is short and the commands
// few (refusedWait, refusedCommands): a refused client, often a bot that
// talks regardless, holds its connection slot no longer than that. A
// shutdown ends the wait at once (Shutdown wakes the read): the refusal
// is said, and Shutdown waits for every connection being admitted.
func (gc *guardConn) awaitQuit(code int) {
	if code == 421 || code == 521 {
		return
	}
	deadline := time.Now().Add(refusedWait)
	_ = gc.inner.SetDeadline(deadline)
	s := gc.srv.srv
	s.mu.Lock()
	s.refused[gc] = true // after the deadline is set: Shutdown's wake must not be undone
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.refused, gc)
		s.mu.Unlock()
	}()
	for range refusedCommands {
		if s.draining.Load() {
			return // woken by Shutdown, or it began before the wait
		}
		line, err := gc.br.ReadSlice('\n')
		if err != nil {
			return // closed, silent past the wait, or a line no command has
		}
		// Written past the guard's write, which would count each 503 as one
		// more refusal: the refusal was the greeting, counted and logged.
		if strings.EqualFold(strings.TrimRight(string(line), " \t\r\n"), "QUIT") {
			_, _ = io.WriteString(gc.inner, replyBye+"\r\n")
			return
		}
		if _, err := io.WriteString(gc.inner, replyBadSequence+"\r\n"); err != nil {
			return
		}
	}
}

// refusedWait and refusedCommands bound awaitQuit.
const (
	refusedWait     = 10 * time.Second
	refusedCommands = 10
)

func (s *Server) refuse(raw net.Conn, reply string, log *slog.Logger, reason string) {
	ip, _ := addrPort(raw.RemoteAddr())
	code, _ := strconv.Atoi(prefix(reply, 3))
	log.Info("refused", "ip", ip.String(), "reason", reason, "reply", reply, "code", code)
	_ = raw.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(raw, reply+"\r\n")
	_ = raw.Close()
}

// takeSlot takes one of listener's max_connections slots. The limit holds
// per listener, as Postfix's process limit holds per service: strangers
// who fill the MX port must not leave the submission port without a slot
// for the site's own users.
func (s *Server) takeSlot(listener string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if max := s.gen.cfg.Limits.MaxConnections; max > 0 && s.perListener[listener] >= max {
		return false
	}
	s.perListener[listener]++
	return true
}

func (s *Server) takeIPSlot(ip netip.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := limitKey(ip)
	if max := s.gen.cfg.Limits.MaxConnectionsPerIP; max > 0 && s.perIP[k] >= max {
		return false
	}
	s.perIP[k]++
	return true
}

// freeSlot gives back listener's connection slot and, for a valid ip, its
// per-IP one.
func (s *Server) freeSlot(listener string, ip netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perListener[listener]--; s.perListener[listener] <= 0 {
		delete(s.perListener, listener)
	}
	if ip.IsValid() {
		k := limitKey(ip)
		if s.perIP[k]--; s.perIP[k] <= 0 {
			delete(s.perIP, k)
		}
	}
}

// limitKey is what max_connections_per_ip counts by: an IPv4 address
// (IPv4-mapped IPv6 included), or the /64 of an IPv6 one. A /64 is the
// smallest block a site is given (RFC 6177), so a client that owns one
// cannot get past the limit by taking a new address per connection; the
// AUTH lockout counts the same way.
func limitKey(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap().WithZone("")
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// addrPort is the client's address as every check sees it: unmapped
// (an IPv4 client on a dual-stack socket is ::ffff:a.b.c.d) and without a
// zone. A link-local client arrives as fe80::1%eth0; the zone names our
// interface, not the client, and kept it would make the address unfit
// for reverse DNS, CIDR matching, SPF and the Received field (RFC 5321
// 4.1.3's IPv6-addr has no zone).
func addrPort(a net.Addr) (netip.Addr, int) {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}, 0
	}
	return ap.Addr().Unmap().WithZone(""), int(ap.Port())
}

func newID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// NewResolver is the resolver for client host names: dns.servers when
// set, else the system's (which reads /etc/hosts and nsswitch.conf as
// the host's other programs do).
func NewResolver(c config.DNS) Resolver {
	if len(c.Servers) == 0 {
		return net.DefaultResolver
	}
	timeout := c.Timeout.D()
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return newDNSResolver(c.Servers, timeout)
}

// maxPTRNames bounds the PTR names tried for a forward confirmation, as
// the rdns stage's max_names (5) does.
const maxPTRNames = 5

// confirmGrace is how long a PTR name still being looked up may keep a
// later name that confirmed waiting. Names that answer about as fast give
// the same conn.hostname on every connection (the first in PTR order), and
// a name whose zone does not answer delays the greeting by no more.
const confirmGrace = 200 * time.Millisecond

// LookupHost returns the forward-confirmed reverse DNS name of ip (the
// first of at most maxPTRNames PTR names whose A or AAAA records hold ip),
// or "". The error says the DNS could not answer (a timeout, SERVFAIL) when
// no name was confirmed: the PTR lookup failed, or a forward lookup did
// and no other name confirmed. A name that does not exist (NXDOMAIN, no
// record) is no error: the client has no name. Used by the sessions and by
// `portcullis scan`, so that both see conn.hostname alike.
func LookupHost(r Resolver, ip netip.Addr, timeout time.Duration) (string, error) {
	if r == nil {
		return "", nil
	}
	ip = ip.Unmap().WithZone("")
	ctx, cancel := context.WithTimeout(context.Background(), max(timeout, time.Second))
	defer cancel()
	names, err := r.LookupAddr(ctx, ip.String())
	if err != nil {
		if notFound(err) {
			return "", nil
		}
		return "", fmt.Errorf("PTR %s: %s", ip, dnsErrText(err))
	}
	return confirmName(ctx, r, ip, names[:min(len(names), maxPTRNames)])
}

// confirmName returns the first of names, in PTR order, whose addresses
// hold ip. The names are looked up in parallel, as the rdns stage does: one
// after another, a name whose zone does not answer used up the deadline
// and a later name that would confirm was never asked.
func confirmName(ctx context.Context, r Resolver, ip netip.Addr, names []string) (string, error) {
	network := "ip6"
	if ip.Is4() {
		network = "ip4"
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the lookups still running
	type outcome struct {
		i   int
		ok  bool
		err error
	}
	out := make(chan outcome, len(names)) // buffered: no sender waits after we return
	for i, name := range names {
		go func() {
			addrs, err := r.LookupNetIP(ctx, network, name)
			o := outcome{i: i, err: err}
			if notFound(err) {
				o.err = nil
			}
			for _, a := range addrs {
				o.ok = o.ok || a.Unmap() == ip
			}
			out <- o
		}()
	}
	done := make([]*outcome, len(names))
	best := len(names) // the first confirmed name in PTR order so far
	// settled: a name confirmed and every name before it is known.
	settled := func() bool {
		return best < len(names) && !slices.Contains(done[:best], nil)
	}
	var grace <-chan time.Time
	for left := len(names); left > 0 && !settled(); {
		select {
		case o := <-out:
			left--
			done[o.i] = &o
			if o.ok && o.i < best {
				best = o.i
				if grace == nil {
					t := time.NewTimer(confirmGrace)
					defer t.Stop()
					grace = t.C
				}
			}
		case <-grace:
			left = 0 // the names before best are too slow
		}
	}
	if best < len(names) {
		return strings.TrimSuffix(names[best], "."), nil
	}
	for i, o := range done {
		if o != nil && o.err != nil {
			return "", fmt.Errorf("%s: %s", strings.TrimSuffix(names[i], "."), dnsErrText(o.err))
		}
	}
	return "", nil
}

// dnsErrText is what went wrong in a lookup, without Go's "on SERVER"
// (resolv.conf's server): hostname_error reads the same whether the
// system resolver or dns.servers answered, and never suggests that
// dns.servers was ignored.
func dnsErrText(err error) string {
	var de *net.DNSError
	if errors.As(err, &de) {
		return de.Err
	}
	return err.Error()
}

// notFound reports a DNS answer that the name or record does not exist.
func notFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}
