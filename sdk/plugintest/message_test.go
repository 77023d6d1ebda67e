package plugintest

import (
	"reflect"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
)

func TestParseHeader(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want []sdk.HeaderField
	}{
		{"crlf", "From: a@b\r\nSubject: hi\r\n\r\nbody: no\r\n",
			[]sdk.HeaderField{{Name: "From", Value: "a@b"}, {Name: "Subject", Value: "hi"}}},
		{"lf and folding", "Subject: one\n\ttwo\n  three\nX: y\n\n",
			[]sdk.HeaderField{{Name: "Subject", Value: "one two three"}, {Name: "X", Value: "y"}}},
		{"order and repeats kept", "Received: 1\r\nReceived: 2\r\n\r\n",
			[]sdk.HeaderField{{Name: "Received", Value: "1"}, {Name: "Received", Value: "2"}}},
		{"no body", "A: 1", []sdk.HeaderField{{Name: "A", Value: "1"}}},
		{"garbage ends the header", "A: 1\r\nnot a field\r\nB: 2\r\n", []sdk.HeaderField{{Name: "A", Value: "1"}}},
		{"leading continuation", " x\r\nA: 1\r\n", nil},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseHeader([]byte(tt.raw)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseHeader(%q) = %q, want %q", tt.raw, got, tt.want)
			}
		})
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add([]byte("From: a@b\r\nSubject: =?ISO-2022-JP?B?GyRCJEYkOSRIGyhC?=\r\n\tcont\r\n\r\nbody"))
	f.Add([]byte("A:\r\n:B\r\n"))
	f.Add([]byte("\x00: \xff\n\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, h := range ParseHeader(raw) {
			if h.Name == "" || strings.ContainsAny(h.Name, ": \t\r\n") {
				t.Fatalf("bad field name %q", h.Name)
			}
			if strings.ContainsAny(h.Value, "\r\n") {
				t.Fatalf("field %s value keeps a line break: %q", h.Name, h.Value)
			}
		}
	})
}
