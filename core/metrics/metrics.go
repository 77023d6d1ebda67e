// Package metrics holds the gateway's Prometheus metrics (portcullis_*) and
// the registry /metrics serves, with the Go runtime and process collectors.
//
// The instrumented packages (smtpd, pipeline, pluginhost, delivery) call
// Active(), which is nil until `portcullis run` enables a set: every method
// of *Metrics is nil-safe, so a package under test or a command that never
// enables metrics pays one atomic load and a nil check, and none of those
// packages has to carry a metrics field through its Deps. Labels are bounded
// by construction: fixed enumerations (phase, class, action, status, reason)
// are resolved to their children once at New; listener and stage names come
// from the config and are cached per name, so a hot-path call neither
// allocates nor hashes label values. No label ever holds an address, a
// host name or a queue ID.
package metrics

import (
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// active is the set the instrumented packages report to; nil: none.
var active atomic.Pointer[Metrics]

// Active returns the enabled set, or nil (whose methods do nothing).
func Active() *Metrics { return active.Load() }

// Enable makes m the set Active returns; nil disables metrics.
func Enable(m *Metrics) { active.Store(m) }

// Metrics is one registry and the gateway's metrics in it.
type Metrics struct {
	reg *prometheus.Registry

	conns       *prometheus.CounterVec
	sessions    prometheus.Gauge
	connRefused [numReasons]prometheus.Counter
	accepted    *prometheus.CounterVec
	bytes       *prometheus.CounterVec
	refused     [2][numPhases]prometheus.Counter // [0] 4xx, [1] 5xx
	decisions   [numActions]prometheus.Counter
	stageTime   *prometheus.HistogramVec
	stageCalls  *prometheus.CounterVec
	restarts    *prometheus.CounterVec
	deliveries  [numStatuses]prometheus.Counter
	deliverTime prometheus.Histogram
	dsns        [numDSNKinds]prometheus.Counter
	withheld    [numWithheld]prometheus.Counter
	expired     prometheus.Counter
	verified    [numVerifyResults][2]prometheus.Counter // [result][0 probe, 1 cache]
	queueLen    atomic.Pointer[func() int]

	mu        sync.Mutex // serialises the copy-on-write caches below
	listeners atomic.Pointer[map[string]*listenerSet]
	stages    atomic.Pointer[map[string]*stageSet]
}

// New builds a registry with the Go and process collectors and every
// gateway metric, each with its HELP text.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := factory{m.reg}
	m.conns = f.counterVec("smtp_connections_total", "SMTP connections accepted by a listener (before any refusal).", "listener")
	m.sessions = f.gauge("smtp_sessions_in_progress", "SMTP sessions handed to the protocol handler and not yet closed.")
	refused := f.counterVec("smtp_connections_refused_total",
		"Connections refused before or at the greeting, by reason: limit (max_connections, per IP), pregreet (client talked first), proxy (PROXY header missing, bad or untrusted), rule (connect-phase rules).", "reason")
	for i, r := range refusalReasons {
		m.connRefused[i] = refused.WithLabelValues(r)
	}
	m.accepted = f.counterVec("smtp_messages_accepted_total", "Messages answered 250 after DATA (queued, quarantined or discarded; see portcullis_message_decisions_total).", "listener")
	m.bytes = f.counterVec("smtp_message_bytes_total", "Bytes of the messages counted by portcullis_smtp_messages_accepted_total, Received header included.", "listener")
	replies := f.counterVec("smtp_replies_refused_total", "4xx and 5xx replies to the client, by class and SMTP phase (connect, helo, mail, rcpt, data; other: a command refused outside them, such as an unknown verb).", "class", "phase")
	for i, c := range [2]string{"4xx", "5xx"} {
		for j, p := range phaseNames {
			m.refused[i][j] = replies.WithLabelValues(c, p)
		}
	}
	decisions := f.counterVec("message_decisions_total", "What became of messages at the end of DATA, by action.", "action")
	for i, a := range actionNames {
		m.decisions[i] = decisions.WithLabelValues(a)
	}
	m.stageTime = f.histogramVec("stage_call_duration_seconds", "Latency of stage (plugin) calls, by stage.",
		prometheus.ExponentialBuckets(0.0001, 4, 9), "stage")
	m.stageCalls = f.counterVec("stage_calls_total", "Stage calls by stage and outcome: the verdict (pass, fail, neutral, none), error or timeout.", "stage", "outcome")
	m.restarts = f.counterVec("plugin_restarts_total", "Plugin processes restarted after dying or hanging, by stage.", "stage")
	attempts := f.counterVec("delivery_attempts_total", "Delivery attempts per recipient, by status: sent, deferred (4xx or no connection) or bounced (5xx).", "status")
	for i, s := range statusNames {
		m.deliveries[i] = attempts.WithLabelValues(s)
	}
	m.deliverTime = f.histogram("delivery_duration_seconds", "Latency of one delivery transaction (connection, or pooled one, to the end of DATA).",
		prometheus.ExponentialBuckets(0.01, 3, 10))
	dsns := f.counterVec("dsns_sent_total", "Delivery status notifications queued for the sender (RFC 3464), by action.", "action")
	for i, k := range dsnKinds {
		m.dsns[i] = dsns.WithLabelValues(k)
	}
	m.expired = f.counter("recipients_expired_total", "Recipients given up at queue.max_age (a failure DSN may follow).")
	verified := f.counterVec("recipient_verifications_total", "Recipients verified at RCPT with the server behind the gateway (routes[].verify_recipients), by result (deliverable, undeliverable, unverified: no answer either way) and source (probe, or cache).", "result", "source")
	for i, r := range verifyResults {
		for j, src := range [2]string{"probe", "cache"} {
			m.verified[i][j] = verified.WithLabelValues(r, src)
		}
	}
	withheld := f.counterVec("dsns_withheld_total", "Failure DSNs owed but not sent, by reason: null_sender (a DSN never gets a DSN) or policy (queue.bounce).", "reason")
	for i, r := range withheldNames {
		m.withheld[i] = withheld.WithLabelValues(r)
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "portcullis_queue_messages", Help: "Messages in the delivery queue.",
	}, m.queueSize))
	m.listeners.Store(&map[string]*listenerSet{})
	m.stages.Store(&map[string]*stageSet{})
	return m
}

// Registry is where the metrics live (for tests and extra collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// SetQueueLen makes portcullis_queue_messages report n() at each scrape.
func (m *Metrics) SetQueueLen(n func() int) {
	if m != nil {
		m.queueLen.Store(&n)
	}
}

func (m *Metrics) queueSize() float64 {
	if n := m.queueLen.Load(); n != nil {
		return float64((*n)())
	}
	return 0
}

// factory registers metrics under the portcullis_ namespace.
type factory struct{ reg prometheus.Registerer }

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "portcullis", Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: "portcullis", Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "portcullis", Name: name, Help: help})
	f.reg.MustRegister(g)
	return g
}

func (f factory) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "portcullis", Name: name, Help: help, Buckets: buckets})
	f.reg.MustRegister(h)
	return h
}

func (f factory) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "portcullis", Name: name, Help: help, Buckets: buckets}, labels)
	f.reg.MustRegister(h)
	return h
}
