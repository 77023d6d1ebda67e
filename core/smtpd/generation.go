package smtpd

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/portcullis-mta/portcullis/core/config"
)

// readBufSize is the guard's read buffer: the same as go-smtp's, so that a
// line the guard hands over always fits go-smtp's empty buffer.
const readBufSize = 4096

// generation is one set of Deps with its own go-smtp server. Reload makes a
// new one; connections keep the generation they were accepted under.
type generation struct {
	srv       *Server
	d         Deps
	cfg       *config.Config
	tls       *tls.Config
	listeners map[string]*listenerConf
	smtp      *smtp.Server
	ln        *chanListener
	log       *slog.Logger
}

// listenerConf is one configured listener.
type listenerConf struct {
	config.Listener
}

func (l *listenerConf) trustedProxy(ip netip.Addr) bool {
	for _, p := range l.TrustedProxies {
		if p.Prefix.Contains(ip.Unmap()) {
			return true
		}
	}
	return false
}

func (s *Server) newGeneration(d Deps) (*generation, error) {
	if d.Config == nil || d.Queue == nil || d.Policy == nil {
		return nil, errors.New("smtpd: Config, Queue and Policy are required")
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	tc, err := loadTLS(d.Config)
	if err != nil {
		return nil, err
	}
	g := &generation{srv: s, d: d, cfg: d.Config, tls: tc, log: d.Logger,
		listeners: map[string]*listenerConf{}}
	for _, l := range d.Config.Listeners {
		g.listeners[l.Name] = &listenerConf{Listener: l}
	}
	if len(g.listeners) == 0 {
		return nil, errors.New("smtpd: no listeners configured")
	}
	g.ln = newChanListener()
	g.smtp = g.newSMTP()
	return g, nil
}

func (g *generation) newSMTP() *smtp.Server {
	ss := smtp.NewServer(g)
	ss.Domain = g.cfg.Hostname
	ss.MaxLineLength = g.cfg.Limits.MaxLineLength
	// Our own checks answer SIZE, size and recipient limits with the
	// contract's replies; the guard applies per-read deadlines.
	ss.MaxMessageBytes = 0
	ss.MaxRecipients = 0
	ss.ReadTimeout = 0
	ss.WriteTimeout = 0
	// The guard owns TLS; the session decides where AUTH is offered.
	ss.AllowInsecureAuth = true
	ss.EnableSMTPUTF8 = true
	ss.EnableDSN = true
	ss.ErrorLog = errLog{g.log}
	return ss
}

// startGeneration runs g's go-smtp server. Called with s.mu held.
func (s *Server) startGeneration(g *generation) {
	s.gens[g] = true
	go func() {
		_ = g.smtp.Serve(g.ln)
		s.mu.Lock()
		delete(s.gens, g)
		s.mu.Unlock()
	}()
}

// listener returns the configuration of a bound listener. One removed from
// the config since it was bound keeps its first configuration.
func (g *generation) listener(name string, first *listenerConf) *listenerConf {
	if lc := g.listeners[name]; lc != nil {
		return lc
	}
	return first
}

func (g *generation) draining() bool { return g.srv.draining.Load() }

// errLog sends go-smtp's internal messages to the log: a panic in a
// session (go-smtp recovers it and ends the connection) as an error, the
// rest (mostly clients that went away) at debug.
type errLog struct{ log *slog.Logger }

func (e errLog) Printf(format string, v ...any) { e.write(fmt.Sprintf(format, v...)) }
func (e errLog) Println(v ...any)               { e.write(fmt.Sprint(v...)) }

func (e errLog) write(msg string) {
	if strings.HasPrefix(msg, "panic serving") {
		e.log.Error("smtp session panicked", "detail", msg)
		return
	}
	e.log.Debug(msg)
}

// chanListener feeds admitted connections to a go-smtp server.
type chanListener struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newChanListener() *chanListener {
	return &chanListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// offer hands c to the server; false if the listener is closed.
func (l *chanListener) offer(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4zero} }
