// Package config is the gateway's configuration: one typed struct, defaults
// in one place (Defaults), validated once at load with file:line:col errors.
// The keys are those of shared/design/CONTRACT.md.
package config

import (
	"fmt"
	"net/netip"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole gateway configuration.
type Config struct {
	Hostname  string     `yaml:"hostname"`
	Listeners []Listener `yaml:"listeners"`
	TLS       TLS        `yaml:"tls"`
	Limits    Limits     `yaml:"limits"`
	Relay     Relay      `yaml:"relay"`
	Routes    []Route    `yaml:"routes"`
	DNS       DNS        `yaml:"dns"`
	Queue     Queue      `yaml:"queue"`
	DKIM      DKIM       `yaml:"dkim"`
	State     State      `yaml:"state"`
	Log       Log        `yaml:"log"`
	Metrics   Metrics    `yaml:"metrics"`
	Include   []string   `yaml:"include"` // rule-file globs, relative to the config file

	// Inline rule-file content (the same keys as a rule file), kept as YAML
	// nodes with their line numbers and parsed by package rules.
	Stages yaml.Node `yaml:"stages"`
	Rules  yaml.Node `yaml:"rules"`

	// Filled at load, not from YAML.
	Path string `yaml:"-"` // absolute path of the config file
	Dir  string `yaml:"-"` // its directory; relative paths were resolved from it

	// keyAt holds the line and column of the values that other packages
	// check after loading (a file they read), for their messages.
	keyAt map[string][2]int
}

// Pos returns the line and column in the config file of the value at
// path, for those checked after loading: "include[i]" (a file that does
// not exist), "dkim.sign[i].key" (a key that does not load), "queue.dir"
// and "queue.quarantine_dir" (a directory that could not be made), so that
// their problems read file:line:col; 0, 0 when unknown. A queue key left
// to its default is at the queue: key, or else at the top of the file.
func (c *Config) Pos(path string) (line, col int) {
	p := c.keyAt[path]
	return p[0], p[1]
}

// IncludePos is Pos("include[i]").
func (c *Config) IncludePos(i int) (line, col int) { return c.Pos(fmt.Sprintf("include[%d]", i)) }

// Listener is one SMTP listening socket.
type Listener struct {
	Name           string     `yaml:"name"`
	Address        string     `yaml:"address"`
	TLS            string     `yaml:"tls"`  // none | starttls | implicit
	Auth           string     `yaml:"auth"` // none | optional | required
	ProxyProtocol  bool       `yaml:"proxy_protocol"`
	TrustedProxies []Prefixes `yaml:"trusted_proxies"`
}

// TLS is the server certificate (reloaded on SIGHUP).
type TLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Limits bound what one client may do.
type Limits struct {
	MaxConnections      int      `yaml:"max_connections"` // per listener
	MaxConnectionsPerIP int      `yaml:"max_connections_per_ip"`
	MaxConnectionRate   int      `yaml:"max_connection_rate"` // per client (IPv6: /64) per minute; 0: no limit
	MaxMessageBytes     int64    `yaml:"max_message_bytes"`
	MaxRecipients       int      `yaml:"max_recipients"`
	MaxLineLength       int      `yaml:"max_line_length"`
	MaxBadCommands      int      `yaml:"max_bad_commands"`
	MaxHops             int      `yaml:"max_hops"` // Received fields a message may carry, ours included (loop detection)
	CommandTimeout      Duration `yaml:"command_timeout"`
	DataTimeout         Duration `yaml:"data_timeout"`   // per read inside DATA: a slow but moving upload survives
	AuthFailures        int      `yaml:"auth_failures"`  // failures from one IP before lockout
	AuthLockout         Duration `yaml:"auth_lockout"`   // how long the lockout lasts
	ShutdownGrace       Duration `yaml:"shutdown_grace"` // SIGTERM: how long sessions may finish
	PregreetDelay       Duration `yaml:"pregreet_delay"` // wait before the greeting to catch clients that talk first
}

// Relay says whose mail is accepted and who may relay.
type Relay struct {
	Domains    []string   `yaml:"domains"`
	Networks   []Prefixes `yaml:"networks"`
	UsersFile  string     `yaml:"users_file"`
	Recipients string     `yaml:"recipients"`
}

// Route sends mail for some recipient domains to a next hop.
type Route struct {
	Domains     []string   `yaml:"domains"`  // exact, "*.suffix", or "*"
	NextHop     string     `yaml:"next_hop"` // host:port, or "mx"
	TLS         string     `yaml:"tls"`      // none | opportunistic | required | implicit
	TLSVerify   *bool      `yaml:"tls_verify"`
	Auth        *RouteAuth `yaml:"auth"`
	SkipLocal   bool       `yaml:"skip_local"`
	Concurrency int        `yaml:"concurrency"`
	// VerifyRecipients asks the next hop, at RCPT, whether it takes a
	// recipient in relay.domains (Postfix's reject_unverified_recipient,
	// Exim's verify = recipient/callout); core/verify.
	VerifyRecipients bool `yaml:"verify_recipients"`
	// VerifyTempfail is what a probe that got no answer (4xx, timeout,
	// no connection) makes of the RCPT: "defer" (450 4.1.1, the default,
	// as Postfix's unverified_recipient_tempfail_action) or "accept"
	// (Exim's defer_ok).
	VerifyTempfail string `yaml:"verify_tempfail"`
}

// RouteAuth is SMTP AUTH towards a smarthost.
type RouteAuth struct {
	Username       string `yaml:"username"`
	PasswordFile   string `yaml:"password_file"`
	AllowPlaintext bool   `yaml:"allow_plaintext"` // send credentials without TLS (only if explicitly set)
}

// DNS is the resolver to use.
type DNS struct {
	Servers []string `yaml:"servers"` // host:port; empty: resolv.conf
	Timeout Duration `yaml:"timeout"`
}

// Queue is the spool and the retry policy.
type Queue struct {
	Dir         string     `yaml:"dir"`
	Retry       []Duration `yaml:"retry"`
	MaxAge      Duration   `yaml:"max_age"`
	DelayNotice Duration   `yaml:"delay_notice"`
	Bounce      string     `yaml:"bounce"` // local | all | none
	Workers     int        `yaml:"workers"`
	Quarantine  string     `yaml:"quarantine_dir"`
	// MinFree is the free space (bytes) the spool's file system keeps:
	// MAIL is answered 452 4.3.1 when less than MinFree plus 1.5 times
	// the declared SIZE is free (Postfix's queue_minfree check).
	MinFree int64 `yaml:"min_free"`
}

// DKIM signing at delivery.
type DKIM struct {
	Sign []DKIMKey `yaml:"sign"`
}

// DKIMKey is one signing key.
type DKIMKey struct {
	Domain   string   `yaml:"domain"`
	Selector string   `yaml:"selector"`
	Key      string   `yaml:"key"`
	Headers  []string `yaml:"headers"`
}

// State is where stages keep state.
type State struct {
	Path  string `yaml:"path"`
	Redis string `yaml:"redis"`
}

// Log says how to log.
type Log struct {
	Format string `yaml:"format"` // text | json
	Level  string `yaml:"level"`  // debug | info | warn | error
}

// Metrics is the Prometheus endpoint ("" address: off).
type Metrics struct {
	Address string `yaml:"address"`
}

// Duration is a time.Duration written in Go syntax plus "d" for days ("5m", "120h", "5d").
type Duration time.Duration

// D returns the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Prefixes is one relay.networks / trusted_proxies entry: a CIDR, a bare
// address, or the "address,mask" form ("192.168.1.0,255.255.255.0").
type Prefixes struct {
	Prefix netip.Prefix
	Text   string // as written
}
