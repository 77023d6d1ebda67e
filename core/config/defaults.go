package config

import (
	"os"
	"reflect"
	"time"
)

// Defaults returns a Config holding every default of the gateway. Each
// choice is explained next to its value; the file overrides any of them.
func Defaults() Config {
	host, _ := os.Hostname() // "" fails validation with a clear message
	return Config{
		Hostname: host,
		Limits: Limits{
			MaxConnections:      100, // per listener: Postfix's default process limit is 100 per service
			MaxConnectionsPerIP: 20,  // a busy sending MTA opens a handful; 20 leaves room, stops one host hogging
			// Off, as Postfix's smtpd_client_connection_rate_limit: a
			// site behind NAT or a busy partner opens many; set it to
			// slow down a single prober (a few dozen a minute is usual).
			MaxConnectionRate: 0,
			MaxMessageBytes:   26214400, // 25 MiB, what large providers accept
			MaxRecipients:     100,      // RFC 5321 4.5.3.1.8: must accept at least 100
			// RFC 5321 4.5.3.1.6 says 1000 octets; real mail (long
			// HTML lines from mass mailers) exceeds it and Postfix allows 2048.
			MaxLineLength:  4096,
			MaxBadCommands: 20,  // Postfix smtpd_hard_error_limit is 20
			MaxHops:        100, // RFC 5321 6.3: count Received fields, reject at "normally at least 100" (Postfix: 50)
			// RFC 5321 4.5.3.2.7: server timeout of at least 5 minutes.
			CommandTimeout: Duration(5 * time.Minute),
			// Per read inside DATA; RFC 5321 4.5.3.2.6 asks 3 minutes per data block, we give more.
			DataTimeout:   Duration(10 * time.Minute),
			AuthFailures:  5,                          // a typo or two is fine, a guesser is not
			AuthLockout:   Duration(15 * time.Minute), // long enough to make guessing pointless
			ShutdownGrace: Duration(30 * time.Second), // a typical message finishes well within it
			PregreetDelay: 0,                          // off: it delays every legitimate client
		},
		Queue: Queue{
			Dir:        "spool",
			Quarantine: "quarantine",
			// Room for a few messages of the default maximum, and for the
			// DSNs and logs that a full disk would make fail.
			MinFree: 100 << 20,
			// Quick first retries catch greylisting (typically 1-5 minutes),
			// then back off; the last interval repeats until max_age.
			Retry: []Duration{
				Duration(time.Minute), Duration(5 * time.Minute), Duration(15 * time.Minute),
				Duration(30 * time.Minute), Duration(time.Hour), Duration(2 * time.Hour), Duration(4 * time.Hour),
			},
			MaxAge:      Duration(120 * time.Hour), // 5 days, Postfix maximal_queue_lifetime
			DelayNotice: Duration(4 * time.Hour),   // Postfix delay_warning_time when enabled; RFC 5321 4.5.4.1
			// Bounce only to senders in relay.domains or from trusted clients:
			// bouncing to forged outside senders is backscatter.
			Bounce:  "local",
			Workers: 50, // concurrent deliveries; routes cap per next hop
		},
		State: State{Path: "state.db"},
		Log:   Log{Format: "text", Level: "info"},
		DNS:   DNS{Timeout: Duration(5 * time.Second)}, // resolv.conf's default per-try timeout
	}
}

// Per-item defaults, applied to each listener and route before its keys are read.
const (
	DefaultListenerTLS  = "none"          // TLS needs a certificate; ask for it explicitly
	DefaultListenerAuth = "none"          // AUTH only where a users_file and a listener say so
	DefaultRouteTLS     = "opportunistic" // STARTTLS when offered, like any MTA (RFC 3207)
	DefaultConcurrency  = 20              // connections per route; enough without tripping receivers' limits
	// A recipient that could not be verified (the server behind did not
	// answer, or said 4xx) is deferred, as Postfix's
	// unverified_recipient_tempfail_action: accepting it would bring back
	// the backscatter verification is there to stop.
	DefaultVerifyTempfail = "defer"
)

// setItemDefaults fills a fresh slice element with its per-item defaults.
func setItemDefaults(v reflect.Value) {
	switch p := v.Addr().Interface().(type) {
	case *Listener:
		p.TLS, p.Auth = DefaultListenerTLS, DefaultListenerAuth
	case *Route:
		p.TLS, p.Concurrency, p.VerifyTempfail = DefaultRouteTLS, DefaultConcurrency, DefaultVerifyTempfail
	}
}
