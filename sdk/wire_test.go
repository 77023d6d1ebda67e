package sdk

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

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
		{"header injection", &pb.CheckResponse{Headers: []*pb.HeaderEdit{{Op: "add", Name: "X", Value: "a\r\nBcc: x"}}}, "line break"},
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

func TestConfigKeepsYAMLTypes(t *testing.T) {
	in := map[string]any{"i": 3, "f": 2.5, "neg": -7, "big": 1 << 40, "s": "x", "b": true,
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
