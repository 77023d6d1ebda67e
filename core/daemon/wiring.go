package daemon

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/emersion/go-sasl"

	"github.com/portcullis-mta/portcullis/core/auth"
	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/policy"
	"github.com/portcullis-mta/portcullis/core/smtpd"
)

// NewLogger builds the logger of config.Log (text | json; debug, info,
// warn, error). Its level can change: a Daemon given it applies log.level
// at every reload, as an admin who raises it to debug and sends SIGHUP
// expects.
func NewLogger(c config.Log, w io.Writer) (*slog.Logger, error) {
	level, err := parseLevel(c.Level)
	if err != nil {
		return nil, err
	}
	lv := &slog.LevelVar{}
	lv.Set(level)
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler
	switch orDefault(c.Format, "text") {
	case "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("log.format %q: want text or json", c.Format)
	}
	return slog.New(levelHandler{h, lv}), nil
}

func parseLevel(s string) (slog.Level, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.ToUpper(orDefault(s, "info")))); err != nil {
		return 0, fmt.Errorf("log.level %q: %w", s, err)
	}
	return level, nil
}

// levelHandler marks a NewLogger handler, so that reload finds its level.
// Loggers derived with With share the LevelVar through the inner handler.
type levelHandler struct {
	slog.Handler
	level *slog.LevelVar
}

// setLevel applies log.level to a logger made by NewLogger (others keep
// theirs) and reports whether it could.
func setLevel(l *slog.Logger, level string) bool {
	h, ok := l.Handler().(levelHandler)
	if !ok {
		return false
	}
	lv, err := parseLevel(level)
	if err != nil {
		return false // validated at load; keep what is in force
	}
	h.level.Set(lv)
	return true
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// policyAdapter fits core/policy to smtpd.Policy.
type policyAdapter struct{ p *policy.Policy }

func newPolicy(cfg *config.Config, log *slog.Logger) (smtpd.Policy, error) {
	p, err := policy.New(cfg, log)
	if err != nil {
		return nil, fmt.Errorf("daemon: policy: %w", err)
	}
	return policyAdapter{p}, nil
}

func (a policyAdapter) Trusted(ip netip.Addr) bool { return a.p.Trusted(ip) }

func (a policyAdapter) CheckMail(c smtpd.Client, from string) error {
	return a.p.CheckMail(policy.Client(c), from)
}

func (a policyAdapter) CheckRcpt(c smtpd.Client, from, rcpt string) error {
	return a.p.CheckRcpt(policy.Client(c), from, rcpt)
}

// authAdapter fits core/auth's users file and lockout to smtpd.Authenticator.
type authAdapter struct {
	users *auth.Users
	lock  *auth.Lockout
	host  string
}

func newAuth(cfg *config.Config, log *slog.Logger, l *auth.Lockout) (smtpd.Authenticator, error) {
	if cfg.Relay.UsersFile == "" {
		return nil, nil
	}
	u, err := auth.LoadUsers(cfg.Relay.UsersFile)
	if err != nil {
		return nil, fmt.Errorf("daemon: users file: %w", err)
	}
	u.SetLogger(log)
	return &authAdapter{users: u, lock: l, host: cfg.Hostname}, nil
}

func (a *authAdapter) Mechanisms() []string { return a.users.Mechanisms() }

func (a *authAdapter) NewServer(mech string, done func(string, error)) (sasl.Server, error) {
	return a.users.NewServer(mech, a.host, done)
}

func (a *authAdapter) Locked(ip netip.Addr) bool               { return a.lock.Locked(ip) }
func (a *authAdapter) Failure(ip netip.Addr, user string) bool { return a.lock.Fail(ip, user) }
func (a *authAdapter) Success(ip netip.Addr, user string)      { a.lock.Succeed(ip, user) }
