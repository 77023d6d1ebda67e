package sdk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ProtocolVersion is the plugin protocol version. The host refuses a plugin
// that speaks another one.
const ProtocolVersion = 1

// Phase is an SMTP phase at which a stage may be called.
type Phase string

// The phases, in the order a transaction passes them.
const (
	PhaseConnect Phase = "connect"
	PhaseHelo    Phase = "helo"
	PhaseMail    Phase = "mail"
	PhaseRcpt    Phase = "rcpt"
	PhaseData    Phase = "data"
)

// Phases lists every phase in transaction order.
var Phases = []Phase{PhaseConnect, PhaseHelo, PhaseMail, PhaseRcpt, PhaseData}

// Verdict is what a stage concluded.
type Verdict string

// The verdicts. VerdictNone means the stage has no opinion (or was skipped).
const (
	VerdictNone    Verdict = "none"
	VerdictPass    Verdict = "pass"
	VerdictFail    Verdict = "fail"
	VerdictNeutral Verdict = "neutral"
	VerdictError   Verdict = "error"
)

// Info describes a stage to the host.
type Info struct {
	Name    string  // plugin name, e.g. "dnsbl"
	Version string  // the plugin's own version
	Phases  []Phase // the phases at which the stage wants to be called
}

// Validate reports an Info the host refuses at load, before Configure:
// no Name, no Phases, or a phase that is not one of Phases or is repeated
// (they are lower case: "data", not "DATA"). sdk/plugintest checks it too,
// so that a stage the gateway would not load fails its own tests.
func (i Info) Validate() error {
	if i.Name == "" {
		return errors.New("plugin did not name itself (Info.Name is empty)")
	}
	if len(i.Phases) == 0 {
		return fmt.Errorf("plugin %s asks for no phase", i.Name)
	}
	seen := map[Phase]bool{}
	for _, p := range i.Phases {
		if !slices.Contains(Phases, p) || seen[p] {
			return fmt.Errorf("plugin %s asks for unknown or repeated phase %s", i.Name, strconv.Quote(string(p)))
		}
		seen[p] = true
	}
	return nil
}

// Env is what the host tells a stage about its surroundings at Configure.
type Env struct {
	StageName  string   // the configured stage name (results.<StageName> in rules)
	Hostname   string   // the gateway's hostname
	StatePath  string   // a file this stage may own, state.<stage>.db beside state.path (StageStatePath); "" if none; see the package doc
	RedisURL   string   // state.redis, when state is shared by several gateways
	DNSServers []string // host:port of the resolvers to use; empty means the system's
	ConfigDir  string   // directory of the gateway config; relative paths in stage config resolve from it
}

// Stage is what a plugin implements.
type Stage interface {
	// Info names the stage and the phases it wants.
	Info() Info
	// Configure validates and applies the stage's config (the `config:` map
	// of its rule-file entry, as decoded from YAML). It is called once at
	// load and again on every reload; an error refuses the config.
	//
	// Configure must return before ctx is done, and should take seconds at
	// most: a load or reload gives all the stages together one minute,
	// starts included, and a start with no other deadline (a restart
	// after a crash, `portcullis scan`) 30 seconds for the start and
	// Configure. A Configure that overruns is not a refusal: the load or
	// reload fails with "Configure timed out after Ns", and as the call
	// might still apply the config later, the gateway kills the process; a
	// running stage's is restarted and configured with the config in
	// force. See Config in the package doc.
	Configure(ctx context.Context, env Env, config map[string]any) error
	// Check examines one phase of one transaction.
	Check(ctx context.Context, req *Request) (*Result, error)
}

// Closer is an optional ability: a stage that holds resources releases them.
type Closer interface {
	Close() error
}

// Conn is what is known about the client connection.
type Conn struct {
	IP       string // client address, after a trusted PROXY header
	Port     int
	Hostname string // forward-confirmed reverse DNS name, "" if unknown
	// HostnameError says why Hostname is unknown when the lookup failed
	// (a timeout, SERVFAIL) rather than found no name: a stage matching
	// host names cannot tell then. "" when the DNS answered.
	HostnameError string
	HELO          string
	TLS           bool
	Listener      string
	Trusted       bool // in relay.networks
	Authenticated bool
	User          string
	Country       string // ISO code when a stage has set it
}

// Envelope is the SMTP envelope so far.
type Envelope struct {
	From  string   // reverse-path without brackets; "" is the null sender <>
	Rcpts []string // accepted recipients so far
	Rcpt  string   // at the rcpt phase: the recipient being decided
}

// Request is one call to a stage.
type Request struct {
	Phase     Phase
	SessionID string
	QueueID   string // set from the data phase on
	Conn      Conn
	Envelope  Envelope
	Message   *Message // data phase only

	// DryRun marks a test call (portcullis scan): decide as usual but
	// change no state: no learning, no counters, no records. A stage that
	// keeps state reads it and answers as it would, writing nothing.
	DryRun bool
}

// HeaderField is one header field of a message, value unfolded but not
// decoded: sdk/mime's DecodeHeader turns RFC 2047 words into UTF-8.
type HeaderField struct {
	Name  string
	Value string
}

// Message gives a stage access to the message at the data phase. The bytes
// are read from the host's spool file on the same machine, so they are not
// copied through the protocol once per stage. It is valid only during the
// Check call it came with.
type Message struct {
	Header []HeaderField // top-level header fields in order, the gateway's Received first
	Size   int64         // bytes of the whole message (header and body)

	path   string // spool file holding the message
	offset int64  // where the message starts in that file
	data   []byte // the message itself when it was sent inline

	// fetch reads the message from the host, in a plugin, when the file
	// cannot be opened or the host holds the message in memory.
	fetch func() (io.ReadCloser, error)

	// hold is the Check call's share of the message budget (ReadAll),
	// given back when the call returns; nil outside Serve.
	hold *hold
}

// NewFileMessage describes a message stored in file path from offset for size bytes.
func NewFileMessage(header []HeaderField, path string, offset, size int64) *Message {
	return &Message{Header: header, Size: size, path: path, offset: offset}
}

// NewBytesMessage describes a message held in memory (tests, inline transport).
func NewBytesMessage(header []HeaderField, data []byte) *Message {
	return &Message{Header: header, Size: int64(len(data)), data: data}
}

// Location reports the spool file, offset and size, or "" when the message is in memory.
func (m *Message) Location() (path string, offset, size int64) {
	return m.path, m.offset, m.Size
}

// Bytes returns the message held in memory, or nil when it lives in a file.
func (m *Message) Bytes() []byte { return m.data }

// Get returns the first value of header field name (case-insensitive), or
// "", undecoded (see HeaderField).
func (m *Message) Get(name string) string {
	for _, f := range m.Header {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// Open returns a reader over the whole message (header and body) from its
// first byte; each call returns a new reader, so a stage may read the
// message more than once. Close it when done. In a plugin it works only
// while the Check call runs.
func (m *Message) Open() (io.ReadCloser, error) {
	if m == nil {
		return nil, errors.New("sdk: no message at this phase")
	}
	if m.path == "" {
		if m.data == nil && m.fetch != nil {
			return m.fetch()
		}
		if m.data == nil && m.Size > 0 {
			return nil, errors.New("sdk: the message bytes are not available")
		}
		return io.NopCloser(bytes.NewReader(m.data)), nil
	}
	f, err := os.Open(m.path)
	if err != nil {
		if m.fetch != nil {
			return m.fetch()
		}
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, m.offset, m.Size), f}, nil
}

// ReadAll returns the whole message, header and body, in one buffer
// allocated at its size, or its first limit bytes when it is larger
// (limit <= 0: no limit). A message held in memory (NewBytesMessage) is
// returned as it is, not copied: only read it.
//
// In a plugin (under Serve, and sdk/plugintest), ReadAll first takes the
// bytes it returns from the plugin's message budget (SetMessageBudget),
// waiting in line behind the calls before it while they hold the budget;
// when ctx is done first it returns ctx's error wrapped, and the gateway
// applies the stage's on_error as for any timeout. The share is given back
// when the Check call returns; nothing is left for the stage to release.
//
// Read a message whole only to walk it (sdk/mime's ParseMessage does);
// a stage that can stream it, or needs a part of it, should Open it.
func (m *Message) ReadAll(ctx context.Context, limit int64) ([]byte, error) {
	if m == nil {
		return nil, errors.New("sdk: no message at this phase")
	}
	n := m.Size
	if limit > 0 && n > limit {
		n = limit
	}
	if m.hold != nil {
		if err := m.hold.take(ctx, max(n, 0)); err != nil {
			return nil, err
		}
	}
	if m.path == "" && m.data != nil {
		return m.data[:min(int64(len(m.data)), max(n, 0))], nil
	}
	rc, err := m.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if n <= 0 {
		// A size the host did not give: read it all, as io.ReadAll does.
		if limit > 0 {
			return io.ReadAll(io.LimitReader(rc, limit))
		}
		return io.ReadAll(rc)
	}
	buf := make([]byte, n)
	if k, err := io.ReadFull(rc, buf); err != nil {
		if err == io.ErrUnexpectedEOF {
			err = fmt.Errorf("the message ended after %d of its %d bytes", k, m.Size)
		}
		return nil, fmt.Errorf("sdk: reading the message: %w", err)
	}
	return buf, nil
}

// HeaderEdit is a change a data-phase stage asks for. The gateway applies
// the edits of every stage when the message is queued; edits returned at
// another phase are dropped. A removal of a trace field (Received,
// Return-Path) is refused with a warning in the log, as RFC 5321 4.4
// requires; the stage's other edits apply. A message holds at most one
// Date, From, Sender, Reply-To, To, Cc, Bcc, Message-ID, In-Reply-To,
// References and Subject (RFC 5322 3.6): adding one of them replaces the
// message's own, and when several stages add the same one the last edit,
// in stage order, wins. A rule's subject_prefix goes on the Subject the
// message ends with, after the stages' edits.
type HeaderEdit struct {
	Op    HeaderOp
	Name  string // a field name (RFC 5322 2.2: printable ASCII, no colon)
	Value string // for HeaderAdd: no line break; plain UTF-8 is fine (the gateway RFC 2047-encodes text that is not ASCII and folds a long value), an encoded value goes in as it is
}

// HeaderOp says what a HeaderEdit does.
type HeaderOp string

// Header operations: add a field at the top, or remove every field of a name.
const (
	HeaderAdd    HeaderOp = "add"
	HeaderRemove HeaderOp = "remove"
)

// Result is what a stage reports: facts, never SMTP codes. Rules read it as
// results.<stage>; see the package doc for VerdictError against an error.
// Its strings are UTF-8: invalid bytes in a tag, attribute or reason reach
// the gateway as U+FFFD (protobuf strings are UTF-8), so a tag with them
// never matches the one a rule names.
type Result struct {
	Verdict Verdict           // "" is VerdictNone
	Score   float64           // compared by rules; any finite number, on a scale the stage documents
	Tags    []string          // tested with "tag" in results.<stage>.tags or has_tag
	Attrs   map[string]string // results.<stage>.attrs.<key>, also in reply templates
	Reason  string            // for logs and templates
	Headers []HeaderEdit      // data phase only
}

// Validate reports a result rules cannot use: a verdict they do not know
// ("" counts as none), a score that is not a finite number (NaN is
// neither above nor below any threshold; an infinity beats every one), or
// a header edit the gateway cannot apply (an unknown Op, a Name that is not
// a field name, a line break or NUL in Value), or one over MaxResultBytes.
// The host refuses such a result from a plugin, and the pipeline from any
// stage; Serve refuses it in the plugin too, so that the stage's own log
// says why, and sdk/plugintest's Check as the gateway would.
func (r *Result) Validate() error {
	if _, err := checkVerdictScore(r.Verdict, r.Score); err != nil {
		return err
	}
	if n := r.size(); n > MaxResultBytes {
		return fmt.Errorf("result of %d bytes (tags, attributes, reason and header edits), over %d", n, MaxResultBytes)
	}
	for _, h := range r.Headers {
		if err := h.check(); err != nil {
			return err
		}
	}
	return nil
}

// MaxResultBytes bounds the tags, attributes, reason and header edits of
// one result. A stage that returns more is broken: its result would sit in
// every session's memory, logs and rule templates.
const MaxResultBytes = 1 << 20

// size is what MaxResultBytes bounds.
func (r *Result) size() int {
	n := len(r.Reason)
	for _, t := range r.Tags {
		n += len(t)
	}
	for k, v := range r.Attrs {
		n += len(k) + len(v)
	}
	for _, h := range r.Headers {
		n += len(h.Name) + len(h.Value)
	}
	return n
}

// StageStatePath is the bbolt file a stage named stage owns, derived from
// the gateway's state.path: "state.db" and "bayes" give "state.bayes.db".
// The host passes it in Env.StatePath; CLI tools find the same file with it.
func StageStatePath(statePath, stage string) string {
	if statePath == "" {
		return ""
	}
	ext := filepath.Ext(statePath)
	return strings.TrimSuffix(statePath, ext) + "." + stage + ext
}
