// Package dnsutiltest runs an in-process authoritative DNS server on
// 127.0.0.1:0 for tests (STYLE.md habit 4: never the live network). Records
// are written in zone-file syntax; names can be made to SERVFAIL or to time
// out. It answers over UDP and TCP on the same port, and truncates a UDP
// answer larger than the client's buffer (512 octets, or its EDNS0 size) as
// a real server does, so that a client must ask again over TCP.
package dnsutiltest

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Server is a DNS server answering from its records.
type Server struct {
	Addr string // host:port of the UDP and TCP listeners

	mu      sync.Mutex
	rrs     []dns.RR
	fail    map[string]bool // SERVFAIL
	drop    map[string]bool // no answer at all: the client times out
	lame    map[string]bool // a referral to the root: NOERROR, no AA, no RA, no answer
	delay   map[string]time.Duration
	rewrite map[string]func(*dns.Msg)
	queries map[string]int // "name TYPE" -> count
	tcpAsks map[string]int // "name TYPE" -> count over TCP
	srv     *dns.Server
	tcp     *dns.Server
}

// New starts a server with records (zone-file lines, names fully qualified)
// and stops it when the test ends.
func New(t testing.TB, records ...string) *Server {
	t.Helper()
	s := &Server{fail: map[string]bool{}, drop: map[string]bool{}, lame: map[string]bool{}, delay: map[string]time.Duration{}, rewrite: map[string]func(*dns.Msg){}, queries: map[string]int{}, tcpAsks: map[string]int{}}
	for _, r := range records {
		s.Add(t, r)
	}
	pc, ln := listen(t)
	s.srv = &dns.Server{PacketConn: pc, Handler: s}
	s.tcp = &dns.Server{Listener: ln, Handler: s}
	for _, srv := range []*dns.Server{s.srv, s.tcp} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
	}
	s.Addr = pc.LocalAddr().String()
	t.Cleanup(func() {
		s.srv.Shutdown()
		s.tcp.Shutdown()
	})
	return s
}

// listen opens UDP and TCP on one port of 127.0.0.1, as a resolver asks
// both at the same address.
func listen(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	var err error
	for range 20 {
		var pc net.PacketConn
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			break
		}
		var ln net.Listener
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln
		}
		pc.Close() // the TCP port was taken: another pair
	}
	t.Fatalf("dnsutiltest: %v", err)
	return nil, nil
}

// Add adds one record.
func (s *Server) Add(t testing.TB, record string) {
	t.Helper()
	rr, err := dns.NewRR(record)
	if err != nil {
		t.Fatalf("dnsutiltest: bad record %q: %v", record, err)
	}
	s.mu.Lock()
	s.rrs = append(s.rrs, rr)
	s.mu.Unlock()
}

// ServFail makes every query for name answer SERVFAIL.
func (s *Server) ServFail(name string) {
	s.mu.Lock()
	s.fail[dns.Fqdn(strings.ToLower(name))] = true
	s.mu.Unlock()
}

// Drop makes every query for name go unanswered.
func (s *Server) Drop(name string) {
	s.mu.Lock()
	s.drop[dns.Fqdn(strings.ToLower(name))] = true
	s.mu.Unlock()
}

// Lame makes every query for name draw what a server that neither holds
// the zone nor recurses sends (BIND with "recursion no"): NOERROR, not
// authoritative, no recursion available, no answer, and a referral to the
// root servers in the authority section.
func (s *Server) Lame(name string) {
	s.mu.Lock()
	s.lame[dns.Fqdn(strings.ToLower(name))] = true
	s.mu.Unlock()
}

// Rewrite has f change every reply for name just before it is sent: a
// broken server's answer, or a forged one.
func (s *Server) Rewrite(name string, f func(m *dns.Msg)) {
	s.mu.Lock()
	s.rewrite[dns.Fqdn(strings.ToLower(name))] = f
	s.mu.Unlock()
}

// Delay makes every answer for name come d late: a slow but working DNS.
func (s *Server) Delay(name string, d time.Duration) {
	s.mu.Lock()
	s.delay[dns.Fqdn(strings.ToLower(name))] = d
	s.mu.Unlock()
}

// Queries returns how often name was asked for with type qtype ("MX", "A"),
// over UDP and TCP.
func (s *Server) Queries(name, qtype string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[dns.Fqdn(strings.ToLower(name))+" "+qtype]
}

// TCPQueries returns how many of those came over TCP.
func (s *Server) TCPQueries(name, qtype string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tcpAsks[dns.Fqdn(strings.ToLower(name))+" "+qtype]
}

// ServeDNS answers from the records: those of the asked type, else a CNAME
// for the name, else NODATA if the name exists, else NXDOMAIN.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 {
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	s.mu.Lock()
	d := s.delay[name]
	s.mu.Unlock()
	time.Sleep(d) // outside the lock: other names answer meanwhile
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queries[name+" "+dns.TypeToString[q.Qtype]]++
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		s.tcpAsks[name+" "+dns.TypeToString[q.Qtype]]++
	}
	if s.drop[name] {
		return
	}
	m := new(dns.Msg)
	m.SetReply(req)
	if s.lame[name] {
		m.Ns = append(m.Ns, &dns.NS{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 518400}, Ns: "a.root-servers.net."})
		s.write(w, req, name, m)
		return
	}
	m.Authoritative = true
	if s.fail[name] {
		m.Rcode = dns.RcodeServerFailure
		s.write(w, req, name, m)
		return
	}
	exists := false
	var cname dns.RR
	for _, rr := range s.rrs {
		h := rr.Header()
		if !strings.EqualFold(h.Name, name) {
			continue
		}
		exists = true
		switch {
		case h.Rrtype == q.Qtype:
			m.Answer = append(m.Answer, dns.Copy(rr))
		case h.Rrtype == dns.TypeCNAME:
			cname = rr
		}
	}
	if len(m.Answer) == 0 && cname != nil {
		m.Answer = append(m.Answer, dns.Copy(cname))
	}
	if !exists {
		m.Rcode = dns.RcodeNameError
	}
	s.write(w, req, name, m)
}

// write sends m, the reply to req for name, rewritten if so asked; over
// UDP truncated to what the client can take (RFC 1035 4.2.1, RFC 6891
// 6.2.5); s.mu is held.
func (s *Server) write(w dns.ResponseWriter, req *dns.Msg, name string, m *dns.Msg) {
	if f := s.rewrite[name]; f != nil {
		f(m)
	}
	if _, ok := w.RemoteAddr().(*net.UDPAddr); ok {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = max(int(opt.UDPSize()), dns.MinMsgSize)
		}
		m.Truncate(size)
	}
	w.WriteMsg(m)
}
