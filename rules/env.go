package rules

import (
	"maps"
	"slices"
	"strings"

	"github.com/portcullis-mta/portcullis/sdk"
	sdkmime "github.com/portcullis-mta/portcullis/sdk/mime"
)

// Env is the typed environment every expression is compiled against and
// evaluated in (CONTRACT.md "Rule files"). Its expr tags are the names
// rule authors write.
type Env struct {
	Conn    Conn                     `expr:"conn"`
	Mail    Mail                     `expr:"mail"`
	Rcpt    string                   `expr:"rcpt"`
	Rcpts   []string                 `expr:"rcpts"`
	Msg     Msg                      `expr:"msg"`
	Results map[string]StageResult   `expr:"results"`
	Header  func(name string) string `expr:"header"`
}

// Conn is what is known about the client connection.
type Conn struct {
	IP            string `expr:"ip"`
	Port          int    `expr:"port"`
	Hostname      string `expr:"hostname"`
	HostnameError string `expr:"hostname_error"` // why the lookup behind hostname failed; "" if the DNS answered
	HELO          string `expr:"helo"`
	TLS           bool   `expr:"tls"`
	Listener      string `expr:"listener"`
	Trusted       bool   `expr:"trusted"`
	Authenticated bool   `expr:"authenticated"`
	User          string `expr:"user"`
	Country       string `expr:"country"`
	Pregreet      bool   `expr:"pregreet"`
}

// Mail is the MAIL FROM command.
type Mail struct {
	From   string            `expr:"from"`
	Params map[string]string `expr:"params"`
}

// Msg is the message at the data phase.
type Msg struct {
	Size    int64                    `expr:"size"`
	Subject string                   `expr:"subject"` // RFC 2047 decoded to UTF-8
	From    string                   `expr:"from"`    // the From field, decoded
	Header  func(name string) string `expr:"header"`  // first field of that name, decoded; "" if none
}

// StageResult is results.<stage>. A stage that was skipped or has not run
// reads as verdict "none".
type StageResult struct {
	Verdict string            `expr:"verdict"`
	Score   float64           `expr:"score"`
	Tags    []string          `expr:"tags"`
	Attrs   map[string]string `expr:"attrs"`
	Reason  string            `expr:"reason"`
}

// Facts are session facts the sdk.Request does not carry.
type Facts struct {
	Pregreet   bool              // the client talked before the greeting
	MailParams map[string]string // MAIL FROM parameters (SIZE, BODY, ...), upper-case keys
}

// NewEnv builds the environment of one phase from a request and the results
// so far. Every stage of the set has an entry; those without a result read
// as verdict "none".
func (s *Set) NewEnv(req *sdk.Request, results map[string]*sdk.Result, facts Facts) *Env {
	env := &Env{
		Conn: Conn{
			IP: req.Conn.IP, Port: req.Conn.Port, Hostname: req.Conn.Hostname, HostnameError: req.Conn.HostnameError, HELO: req.Conn.HELO,
			TLS: req.Conn.TLS, Listener: req.Conn.Listener, Trusted: req.Conn.Trusted,
			Authenticated: req.Conn.Authenticated, User: req.Conn.User, Country: req.Conn.Country,
			Pregreet: facts.Pregreet,
		},
		Mail:    Mail{From: req.Envelope.From, Params: facts.MailParams},
		Rcpt:    req.Envelope.Rcpt,
		Rcpts:   req.Envelope.Rcpts,
		Results: make(map[string]StageResult, len(s.Stages)),
	}
	m := req.Message
	get := func(string) string { return "" }
	if m != nil {
		get = func(name string) string { return decodeHeader(m.Get(name)) }
		env.Msg = Msg{Size: m.Size, Subject: get("Subject"), From: get("From")}
	}
	env.Msg.Header, env.Header = get, get
	for _, st := range s.Stages {
		env.Results[st.Name] = StageResult{Verdict: string(sdk.VerdictNone)}
	}
	// In rule-file order, not map order: which stage's attrs.country
	// becomes conn.country must not change from one phase to the next.
	for _, st := range s.Stages {
		if r, ok := results[st.Name]; ok {
			env.SetResult(st.Name, r)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(results)) {
		if _, done := env.Results[name]; !done {
			env.SetResult(name, results[name])
		}
	}
	return env
}

// SetResult records one stage's result in the environment. A result's
// attrs.country also sets conn.country when that is still unknown.
func (e *Env) SetResult(name string, r *sdk.Result) {
	if r == nil {
		e.Results[name] = StageResult{Verdict: string(sdk.VerdictNone)}
		return
	}
	v := string(r.Verdict)
	if v == "" {
		v = string(sdk.VerdictNone)
	}
	e.Results[name] = StageResult{Verdict: v, Score: r.Score, Tags: r.Tags, Attrs: r.Attrs, Reason: r.Reason}
	// conn.country: the first ISO code a stage reports in attrs.country
	// (connfilter's delegated-stats lookup), unless the request had one.
	if c := r.Attrs["country"]; c != "" && e.Conn.Country == "" {
		e.Conn.Country = c
	}
}

// decodeHeader is a header value as rules see it: decoded to UTF-8 by the
// same decoder as the subject and text stages (sdk/mime.DecodeHeader), so
// that msg.subject contains "未承諾広告" matches where the subject stage
// does: a character split across encoded words, raw ISO-2022-JP, half-width
// kana in SO/SI, a lying charset label. Go's mime.WordDecoder, used before,
// got all four wrong.
func decodeHeader(v string) string { return sdkmime.DecodeHeader(v) }

// hasTag is has_tag(results.x, "tag"): case-insensitive, as tags are words.
func hasTag(r StageResult, tag string) bool {
	for _, t := range r.Tags {
		if strings.EqualFold(t, tag) {
			return true
		}
	}
	return false
}
