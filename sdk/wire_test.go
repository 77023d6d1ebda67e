package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/grpc"

	"github.com/portcullis-mta/portcullis/sdk/internal/pb"
)

func TestResultFromPBRefusesWhatRulesCannotUse(t *testing.T) {
	tests := []struct {
		name    string
		in      *pb.CheckResponse
		wantErr string
	}{
		{"empty verdict is none", &pb.CheckResponse{}, ""},
		{"unknown verdict", &pb.CheckResponse{Verdict: "spam"}, `unknown verdict "spam"`},
		{"unknown op", &pb.CheckResponse{Headers: []*pb.HeaderEdit{{Op: "replace", Name: "X"}}}, "unknown header operation"},
		{"bad name", &pb.CheckResponse{Headers: []*pb.HeaderEdit{{Op: "add", Name: "X Y"}}}, "invalid header field name"},
		{"colon in name", &pb.CheckResponse{Headers: []*pb.HeaderEdit{{Op: "add", Name: "X:"}}}, "invalid header field name"},
		// A name cannot be folded: one near 998 octets broke the header on delivery.
		{"name too long", &pb.CheckResponse{Headers: []*pb.HeaderEdit{{Op: "add", Name: strings.Repeat("N", MaxFieldName+1), Value: "v"}}}, "invalid header field name"},
		{"longest name", &pb.CheckResponse{Verdict: "pass", Headers: []*pb.HeaderEdit{{Op: "add", Name: strings.Repeat("N", MaxFieldName), Value: "v"}}}, ""},
		{"header injection", &pb.CheckResponse{Headers: []*pb.HeaderEdit{{Op: "add", Name: "X", Value: "a\r\nBcc: x"}}}, "line break"},
		{"NaN score", &pb.CheckResponse{Verdict: "fail", Score: math.NaN()}, "score NaN"},
		{"infinite score", &pb.CheckResponse{Verdict: "fail", Score: math.Inf(1)}, "score +Inf"},
		{"good edit", &pb.CheckResponse{Verdict: "fail", Headers: []*pb.HeaderEdit{{Op: "remove", Name: "X-Spam"}}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := resultFromPB(tt.in)
			if tt.wantErr == "" {
				if err != nil || res.Verdict == "" {
					t.Fatalf("got %+v, %v", res, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestResultToPBRefusesWhatRulesCannotUse: the plugin side refuses to send
// what the host would refuse, so the stage's own log says what was wrong.
func TestResultToPBRefusesWhatRulesCannotUse(t *testing.T) {
	tests := []struct {
		name    string
		in      *Result
		wantErr string
	}{
		{"nil is none", nil, ""},
		{"empty verdict is none", &Result{}, ""},
		{"finite score", &Result{Verdict: VerdictFail, Score: -3.5}, ""},
		{"unknown verdict", &Result{Verdict: "spam"}, `unknown verdict "spam"`},
		{"NaN score", &Result{Verdict: VerdictFail, Score: math.NaN()}, "score NaN"},
		{"infinite score", &Result{Verdict: VerdictPass, Score: math.Inf(-1)}, "score -Inf"},
		{"good edits", &Result{Headers: []HeaderEdit{{Op: HeaderAdd, Name: "X-A", Value: "a b"},
			{Op: HeaderRemove, Name: "X-Spam"}}}, ""},
		{"header injection", &Result{Headers: []HeaderEdit{{Op: HeaderAdd, Name: "X", Value: "a\r\nBcc: x"}}}, "line break"},
		{"NUL in value", &Result{Headers: []HeaderEdit{{Op: HeaderAdd, Name: "X", Value: "a\x00"}}}, "line break or NUL"},
		{"bad name", &Result{Headers: []HeaderEdit{{Op: HeaderAdd, Name: "X Y", Value: "v"}}}, "invalid header field name"},
		{"no op", &Result{Headers: []HeaderEdit{{Name: "X", Value: "v"}}}, "unknown header operation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.in != nil {
				if err := tt.in.Validate(); (err == nil) != (tt.wantErr == "") {
					t.Errorf("Validate = %v, want error %q", err, tt.wantErr)
				}
			}
			out, err := resultToPB(tt.in)
			if tt.wantErr == "" {
				if err != nil || out.GetVerdict() == "" {
					t.Fatalf("got %v, %v", out, err)
				}
				if _, err := resultFromPB(out); err != nil {
					t.Fatalf("host refuses what the plugin sent: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestConfigKeepsYAMLTypes(t *testing.T) {
	in := map[string]any{"i": 3, "f": 2.5, "neg": -7, "big": math.MaxInt, "s": "x", "b": true,
		"l": []any{1, 1.5, "z"}, "m": map[string]any{"n": 4}, "nil": nil}
	b, err := encodeConfig(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := decodeConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("config round trip\n got %#v\nwant %#v", out, in)
	}
	if _, err := encodeConfig(map[string]any{"c": make(chan int)}); err == nil {
		t.Error("a config JSON cannot carry was encoded")
	}
	if _, err := decodeConfig([]byte("[1]")); err == nil {
		t.Error("a non-object config was decoded")
	}
}

func TestOpenFallsBackToTheHost(t *testing.T) {
	fetched := func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("from host")), nil }
	tests := []struct {
		name string
		msg  *Message
		want string
		err  bool
	}{
		{"unreadable file, fetch", &Message{path: "/nonexistent/q", Size: 9, fetch: fetched}, "from host", false},
		{"unreadable file, no fetch", &Message{path: "/nonexistent/q", Size: 9}, "", true},
		{"in host memory", &Message{Size: 9, fetch: fetched}, "from host", false},
		{"inline", NewBytesMessage(nil, []byte("inline")), "inline", false},
		{"no bytes at all", &Message{Size: 9}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := tt.msg.Open()
			if tt.err {
				if err == nil {
					t.Fatal("Open succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			b, _ := io.ReadAll(r)
			if string(b) != tt.want {
				t.Errorf("read %q, want %q", b, tt.want)
			}
		})
	}
	var nilMsg *Message
	if _, err := nilMsg.Open(); err == nil || errors.Is(err, io.EOF) {
		t.Errorf("Open of no message = %v", err)
	}
}

// oldPlugin answers Info with another protocol version.
type oldPlugin struct {
	pb.StageClient
	version uint32
}

func (p oldPlugin) Info(context.Context, *pb.InfoRequest, ...grpc.CallOption) (*pb.InfoResponse, error) {
	return &pb.InfoResponse{Name: "old", ProtocolVersion: p.version}, nil
}

func TestInfoRefusesOtherProtocolVersion(t *testing.T) {
	sc := &stageClient{c: oldPlugin{version: ProtocolVersion + 1}}
	_, err := sc.Info(context.Background())
	want := fmt.Sprintf("plugin speaks protocol version %d, this host %d", ProtocolVersion+1, ProtocolVersion)
	if err == nil || err.Error() != want {
		t.Fatalf("Info: %v, want %q", err, want)
	}
	sc.c = oldPlugin{version: ProtocolVersion}
	if info, err := sc.Info(context.Background()); err != nil || info.Name != "old" {
		t.Fatalf("same version: %+v, %v", info, err)
	}
}

// TestConnRoundTrip: every field of Conn crosses the plugin protocol (a
// field added to Conn but not to the wire, as HostnameError could have
// been, reaches no plugin). Each field is set to a value of its own.
func TestConnRoundTrip(t *testing.T) {
	var c Conn
	v := reflect.ValueOf(&c).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString("v" + v.Type().Field(i).Name)
		case reflect.Int:
			f.SetInt(int64(1000 + i))
		case reflect.Bool:
			f.SetBool(true)
		default:
			t.Fatalf("Conn.%s: kind %s not covered by this test", v.Type().Field(i).Name, f.Kind())
		}
	}
	if got := connFromPB(connToPB(c)); got != c {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, c)
	}
}
