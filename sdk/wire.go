package sdk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/portcullis-mta/portcullis/sdk/internal/pb"
)

// This file converts between the Go types of this package and the protocol
// messages of sdk/internal/pb, in both directions.

func infoToPB(i Info) *pb.InfoResponse {
	out := &pb.InfoResponse{Name: i.Name, Version: i.Version, ProtocolVersion: ProtocolVersion}
	for _, p := range i.Phases {
		out.Phases = append(out.Phases, string(p))
	}
	return out
}

func infoFromPB(in *pb.InfoResponse) Info {
	out := Info{Name: in.GetName(), Version: in.GetVersion()}
	for _, p := range in.GetPhases() {
		out.Phases = append(out.Phases, Phase(p))
	}
	return out
}

func envToPB(e Env) *pb.Env {
	return &pb.Env{StageName: e.StageName, Hostname: e.Hostname, StatePath: e.StatePath,
		RedisUrl: e.RedisURL, DnsServers: e.DNSServers, ConfigDir: e.ConfigDir}
}

func envFromPB(e *pb.Env) Env {
	return Env{StageName: e.GetStageName(), Hostname: e.GetHostname(), StatePath: e.GetStatePath(),
		RedisURL: e.GetRedisUrl(), DNSServers: e.GetDnsServers(), ConfigDir: e.GetConfigDir()}
}

// encodeConfig turns a stage's config map (as decoded from YAML) into JSON.
func encodeConfig(cfg map[string]any) ([]byte, error) {
	if cfg == nil {
		cfg = map[string]any{}
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("stage config cannot be encoded: %w", err)
	}
	return b, nil
}

// decodeConfig is the inverse of encodeConfig. Numbers come back as they
// came from YAML: int when whole, float64 otherwise, so a stage sees the
// same types in a unit test as in the gateway.
func decodeConfig(b []byte) (map[string]any, error) {
	cfg := map[string]any{}
	if len(b) == 0 {
		return cfg, nil
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("stage config is not a JSON object: %w", err)
	}
	return fixNumbers(cfg).(map[string]any), nil
}

func fixNumbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return int(i)
		}
		f, _ := v.Float64()
		return f
	case map[string]any:
		for k, e := range v {
			v[k] = fixNumbers(e)
		}
	case []any:
		for i, e := range v {
			v[i] = fixNumbers(e)
		}
	}
	return v
}

// wireText is s as a protobuf string field must be: UTF-8. A field the
// client chose (a HELO name, an address, a header) may hold other bytes,
// and one such byte made the whole call fail to marshal, so every stage
// errored (and with on_error: continue, none checked the message). The
// gateway decodes raw 8-bit headers before this; what is left invalid
// here is replaced with U+FFFD (one for each run of bad bytes).
func wireText(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func wireTexts(l []string) []string {
	for i, s := range l {
		if !utf8.ValidString(s) {
			out := slices.Clone(l)
			for j := i; j < len(out); j++ {
				out[j] = wireText(out[j])
			}
			return out
		}
	}
	return l
}

func connToPB(c Conn) *pb.Conn {
	return &pb.Conn{Ip: c.IP, Port: int32(c.Port), Hostname: wireText(c.Hostname), Helo: wireText(c.HELO), Tls: c.TLS,
		Listener: c.Listener, Trusted: c.Trusted, Authenticated: c.Authenticated, User: wireText(c.User),
		Country: c.Country, HostnameError: wireText(c.HostnameError)}
}

func connFromPB(c *pb.Conn) Conn {
	return Conn{IP: c.GetIp(), Port: int(c.GetPort()), Hostname: c.GetHostname(), HELO: c.GetHelo(),
		TLS: c.GetTls(), Listener: c.GetListener(), Trusted: c.GetTrusted(),
		Authenticated: c.GetAuthenticated(), User: c.GetUser(), Country: c.GetCountry(),
		HostnameError: c.GetHostnameError()}
}

func headerToPB(h []HeaderField) []*pb.HeaderField {
	out := make([]*pb.HeaderField, len(h))
	for i, f := range h {
		out[i] = &pb.HeaderField{Name: wireText(f.Name), Value: wireText(f.Value)}
	}
	return out
}

func headerFromPB(h []*pb.HeaderField) []HeaderField {
	out := make([]HeaderField, len(h))
	for i, f := range h {
		out[i] = HeaderField{Name: f.GetName(), Value: f.GetValue()}
	}
	return out
}

// requestToPB converts a request; the message, if any, is described by the
// caller (it needs the host's message source).
func requestToPB(r *Request) *pb.CheckRequest {
	return &pb.CheckRequest{
		Phase: string(r.Phase), SessionId: r.SessionID, QueueId: r.QueueID,
		Conn:     connToPB(r.Conn),
		Envelope: &pb.Envelope{From: wireText(r.Envelope.From), Rcpts: wireTexts(r.Envelope.Rcpts), Rcpt: wireText(r.Envelope.Rcpt)},
		DryRun:   r.DryRun,
	}
}

func requestFromPB(in *pb.CheckRequest) *Request {
	e := in.GetEnvelope()
	return &Request{
		Phase: Phase(in.GetPhase()), SessionID: in.GetSessionId(), QueueID: in.GetQueueId(),
		Conn:     connFromPB(in.GetConn()),
		Envelope: Envelope{From: e.GetFrom(), Rcpts: e.GetRcpts(), Rcpt: e.GetRcpt()},
		DryRun:   in.GetDryRun(),
	}
}

// resultToPB converts a stage's answer in the plugin, refusing what the
// host would refuse, so the stage's own log says what was wrong.
func resultToPB(r *Result) (*pb.CheckResponse, error) {
	if r == nil {
		return &pb.CheckResponse{Verdict: string(VerdictNone)}, nil
	}
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("stage %w", err)
	}
	v, _ := checkVerdictScore(r.Verdict, r.Score)
	out := &pb.CheckResponse{Verdict: string(v), Score: r.Score, Tags: wireTexts(r.Tags), Attrs: r.Attrs, Reason: wireText(r.Reason)}
	for k, a := range r.Attrs {
		if !utf8.ValidString(k) || !utf8.ValidString(a) {
			out.Attrs = make(map[string]string, len(r.Attrs))
			for k, a := range r.Attrs {
				out.Attrs[wireText(k)] = wireText(a)
			}
			break
		}
	}
	for _, h := range r.Headers {
		out.Headers = append(out.Headers, &pb.HeaderEdit{Op: string(h.Op), Name: h.Name, Value: wireText(h.Value)})
	}
	return out, nil
}

// checkVerdictScore is the verdict rules see ("" is none), or an error for
// a verdict rules do not know or a score they cannot compare (NaN is
// neither above nor below any threshold; an infinity beats every one).
func checkVerdictScore(v Verdict, score float64) (Verdict, error) {
	switch v {
	case "":
		v = VerdictNone
	case VerdictNone, VerdictPass, VerdictFail, VerdictNeutral, VerdictError:
	default:
		return "", fmt.Errorf("returned unknown verdict %.64q", string(v))
	}
	if math.IsNaN(score) || math.IsInf(score, 0) {
		return "", fmt.Errorf("returned score %v, not a finite number", score)
	}
	return v, nil
}

// resultFromPB converts and checks a plugin's answer: the host must not
// pass on a verdict, score or header operation rules do not know.
func resultFromPB(in *pb.CheckResponse) (*Result, error) {
	v, err := checkVerdictScore(Verdict(in.GetVerdict()), in.GetScore())
	if err != nil {
		return nil, fmt.Errorf("plugin %w", err)
	}
	out := &Result{Verdict: v, Score: in.GetScore(), Tags: in.GetTags(),
		Attrs: in.GetAttrs(), Reason: in.GetReason()}
	for _, h := range in.GetHeaders() {
		e := HeaderEdit{Op: HeaderOp(h.GetOp()), Name: h.GetName(), Value: h.GetValue()}
		if err := e.check(); err != nil {
			return nil, fmt.Errorf("plugin %w", err)
		}
		out.Headers = append(out.Headers, e)
	}
	return out, nil
}

// check reports a header edit the gateway cannot apply: an operation it
// does not know, a name that is not a field name, or a value that would
// end the field (a line break) or carry a NUL.
func (e HeaderEdit) check() error {
	if e.Op != HeaderAdd && e.Op != HeaderRemove {
		return fmt.Errorf("returned unknown header operation %.64q", string(e.Op))
	}
	if !validFieldName(e.Name) {
		return fmt.Errorf("returned invalid header field name %.64q", e.Name)
	}
	if strings.ContainsAny(e.Value, "\r\n\x00") {
		return fmt.Errorf("returned a line break or NUL in header field %s", e.Name)
	}
	return nil
}

// validFieldName: RFC 5322 2.2, printable US-ASCII except colon.
func validFieldName(s string) bool { return ValidFieldName(s) }

// MaxFieldName bounds a header field name that a stage or a rule may add.
// RFC 5322 bounds only the line (998 octets), but a name cannot be folded:
// one near that length was split by the line folding on delivery, and the
// header ended there. No real field name comes near 200 octets.
const MaxFieldName = 200

// ValidFieldName reports an RFC 5322 2.2 field name (printable ASCII but
// the colon, at least one) of at most MaxFieldName octets: what a header
// edit (HeaderAdd, HeaderRemove) and a rule's header may name.
func ValidFieldName(s string) bool {
	if s == "" || len(s) > MaxFieldName {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 || s[i] == ':' {
			return false
		}
	}
	return true
}
