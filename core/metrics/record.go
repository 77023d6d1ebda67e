package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Reason is why a connection was refused at connect.
type Reason int

// The refusal reasons (label values in refusalReasons).
const (
	RefusedLimit    Reason = iota // max_connections, max_connections_per_ip or max_connection_rate
	RefusedPregreet               // the client talked before the greeting
	RefusedProxy                  // PROXY header missing, malformed or untrusted
	RefusedRule                   // the connect-phase rules refused
	numReasons
)

var refusalReasons = [numReasons]string{"limit", "pregreet", "proxy", "rule"}

// The SMTP phases replies are counted by; anything else counts as "other"
// (commands refused outside a phase, such as an unknown verb).
var phaseNames = [...]string{"connect", "helo", "mail", "rcpt", "data", "other"}

const numPhases = len(phaseNames)

func phaseIndex(p string) int {
	for i, n := range phaseNames[:numPhases-1] {
		if n == p {
			return i
		}
	}
	return numPhases - 1
}

// The message actions (pipeline.Action values; "continue" counts as accept).
var actionNames = [...]string{"accept", "reject", "tempfail", "discard", "quarantine"}

const numActions = len(actionNames)

// Status is the outcome of one delivery attempt for one recipient.
type Status int

// The delivery statuses (label values in statusNames).
const (
	Sent     Status = iota // the next hop took it
	Deferred               // 4xx or no connection: retried later
	Bounced                // 5xx: a DSN may follow
	numStatuses
)

var statusNames = [numStatuses]string{"sent", "deferred", "bounced"}

// The results of recipient verification (core/verify).
var verifyResults = [...]string{"deliverable", "undeliverable", "unverified"}

const numVerifyResults = len(verifyResults)

// Verification counts one recipient verified at RCPT: result is
// deliverable, undeliverable or unverified (another is not counted);
// cached says the answer came from the cache rather than a probe.
func (m *Metrics) Verification(result string, cached bool) {
	if m == nil {
		return
	}
	src := 0
	if cached {
		src = 1
	}
	for i, r := range verifyResults {
		if r == result {
			m.verified[i][src].Inc()
			return
		}
	}
}

// Expired counts a recipient given up at queue.max_age (no attempt of its
// own: its last attempt was counted as deferred).
func (m *Metrics) Expired() {
	if m != nil {
		m.expired.Inc()
	}
}

// The DSN actions of RFC 3464 2.3.3 the gateway sends.
var dsnKinds = [...]string{"failed", "delayed", "relayed"}

const numDSNKinds = len(dsnKinds)

// Connection counts a connection accepted on listener.
func (m *Metrics) Connection(listener string) {
	if m != nil {
		m.listener(listener).conns.Inc()
	}
}

// SessionStarted and SessionEnded track the sessions in progress.
func (m *Metrics) SessionStarted() {
	if m != nil {
		m.sessions.Inc()
	}
}

// SessionEnded: see SessionStarted.
func (m *Metrics) SessionEnded() {
	if m != nil {
		m.sessions.Dec()
	}
}

// ConnRefused counts a connection refused before the session began.
func (m *Metrics) ConnRefused(r Reason) {
	if m != nil && r >= 0 && r < numReasons {
		m.connRefused[r].Inc()
	}
}

// Accepted counts a message answered 250 on listener, of size bytes.
func (m *Metrics) Accepted(listener string, size int64) {
	if m == nil {
		return
	}
	l := m.listener(listener)
	l.accepted.Inc()
	l.bytes.Add(float64(size))
}

// Refused counts a 4xx or 5xx reply in phase (connect, helo, mail, rcpt,
// data; anything else is "other"); other codes are not counted.
func (m *Metrics) Refused(phase string, code int) {
	if m == nil || code < 400 || code > 599 {
		return
	}
	m.refused[code/100-4][phaseIndex(phase)].Inc()
}

// Decision counts what became of a message; action is a pipeline.Action
// ("continue" is accept; an unknown one is not counted).
func (m *Metrics) Decision(action string) {
	if m == nil {
		return
	}
	if action == "continue" {
		action = "accept"
	}
	for i, a := range actionNames {
		if a == action {
			m.decisions[i].Inc()
			return
		}
	}
}

// StageCall counts one stage call and its latency. outcome is the verdict,
// "error" or "timeout"; a verdict outside the SDK's set counts as "other".
func (m *Metrics) StageCall(stage, outcome string, took time.Duration) {
	if m == nil {
		return
	}
	s := m.stage(stage)
	s.latency.Observe(took.Seconds())
	for i, o := range outcomeNames {
		if o == outcome {
			s.calls[i].Inc()
			return
		}
	}
	s.calls[len(outcomeNames)-1].Inc()
}

// PluginRestart counts a restart of stage's plugin process.
func (m *Metrics) PluginRestart(stage string) {
	if m != nil {
		m.stage(stage).restarts.Inc()
	}
}

// Delivery counts one recipient's delivery attempt.
func (m *Metrics) Delivery(s Status) {
	if m != nil && s >= 0 && s < numStatuses {
		m.deliveries[s].Inc()
	}
}

// DeliveryTook records the latency of one delivery transaction.
func (m *Metrics) DeliveryTook(d time.Duration) {
	if m != nil {
		m.deliverTime.Observe(d.Seconds())
	}
}

// WithheldReason says why a failure DSN was not sent (dsns_withheld_total).
type WithheldReason int

// The reasons (label values in withheldNames).
const (
	WithheldNullSender WithheldReason = iota // the sender is <> (a DSN never gets a DSN)
	WithheldPolicy                           // queue.bounce (none, or local and an outside sender)
	numWithheld
)

var withheldNames = [numWithheld]string{"null_sender", "policy"}

// DSNWithheld counts a failure DSN the gateway owed but did not send.
func (m *Metrics) DSNWithheld(r WithheldReason) {
	if m != nil && r >= 0 && r < numWithheld {
		m.withheld[r].Inc()
	}
}

// DSN counts a DSN queued; action is failed, delayed or relayed.
func (m *Metrics) DSN(action string) {
	if m == nil {
		return
	}
	for i, k := range dsnKinds {
		if k == action {
			m.dsns[i].Inc()
			return
		}
	}
}

// The stage call outcomes: the SDK's verdicts, then error, timeout, other.
var outcomeNames = [...]string{"pass", "fail", "neutral", "none", "error", "timeout", "other"}

// listenerSet is one listener's resolved children.
type listenerSet struct{ conns, accepted, bytes prometheus.Counter }

// stageSet is one stage's resolved children.
type stageSet struct {
	latency  prometheus.Observer
	calls    [len(outcomeNames)]prometheus.Counter
	restarts prometheus.Counter
}

// listener returns name's children, resolving them on first use. Reads
// are a map lookup in an immutable map: no lock, no allocation.
func (m *Metrics) listener(name string) *listenerSet {
	if l := (*m.listeners.Load())[name]; l != nil {
		return l
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.listeners.Load()
	if l := old[name]; l != nil {
		return l
	}
	l := &listenerSet{m.conns.WithLabelValues(name), m.accepted.WithLabelValues(name), m.bytes.WithLabelValues(name)}
	next := make(map[string]*listenerSet, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[name] = l
	m.listeners.Store(&next)
	return l
}

// stage returns name's children, resolving them on first use.
func (m *Metrics) stage(name string) *stageSet {
	if s := (*m.stages.Load())[name]; s != nil {
		return s
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.stages.Load()
	if s := old[name]; s != nil {
		return s
	}
	s := &stageSet{latency: m.stageTime.WithLabelValues(name), restarts: m.restarts.WithLabelValues(name)}
	for i, o := range outcomeNames {
		s.calls[i] = m.stageCalls.WithLabelValues(name, o)
	}
	next := make(map[string]*stageSet, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[name] = s
	m.stages.Store(&next)
	return s
}
