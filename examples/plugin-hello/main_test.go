package main

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/plugintest"
)

func TestConfigure(t *testing.T) {
	tests := []struct {
		name    string
		cfg     map[string]any
		wantErr string
	}{
		{"default", nil, ""},
		{"greeting", map[string]any{"greeting": "hi"}, ""},
		{"empty", map[string]any{"greeting": " "}, "non-empty"},
		{"not a string", map[string]any{"greeting": 5}, "greeting: want a string, got 5"},
		{"line break", map[string]any{"greeting": "a\nb"}, "single-line"},
		{"unknown key", map[string]any{"greting": "hi"}, `unknown key "greting" (want greeting) (did you mean "greeting"?)`},
	}
	c := plugintest.Start(t, &hello{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// `portcullis check` asks CheckConfig, `run` Configure: both
			// must give the same answer.
			for _, call := range []struct {
				name string
				f    func(sdk.Env, map[string]any) error
			}{{"Configure", c.Configure}, {"CheckConfig", c.CheckConfig}} {
				err := call.f(sdk.Env{StageName: "hello"}, tt.cfg)
				if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
					t.Fatalf("%s(%v) = %v, want error containing %q", call.name, tt.cfg, err, tt.wantErr)
				}
			}
		})
	}
}

// CheckConfig applies nothing: the greeting in force stays.
func TestCheckConfigAppliesNothing(t *testing.T) {
	c := plugintest.Start(t, &hello{})
	if err := c.Configure(sdk.Env{StageName: "hello"}, map[string]any{"greeting": "in force"}); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckConfig(sdk.Env{StageName: "hello"}, map[string]any{"greeting": "only checked"}); err != nil {
		t.Fatal(err)
	}
	res, err := c.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseData,
		Message: plugintest.Message([]byte("Subject: x\r\n\r\nbody\r\n"))})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Attrs["greeting"]; got != "in force" {
		t.Fatalf("greeting after CheckConfig = %q, want %q", got, "in force")
	}
}

func TestCheck(t *testing.T) {
	c := plugintest.Start(t, &hello{})
	if err := c.Configure(sdk.Env{StageName: "hello"}, map[string]any{"greeting": "good day"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		subject string
		verdict sdk.Verdict
		tags    []string
	}{
		{"plain", sdk.VerdictPass, nil},
		{"please [reject-me] now", sdk.VerdictFail, []string{"hello:reject"}},
		{"[tag-me]", sdk.VerdictPass, []string{"hello:tag"}},
		{"[quarantine-me] and [tag-me]", sdk.VerdictPass, []string{"hello:tag", "hello:quarantine"}},
		{"=?UTF-8?B?W3RhZy1tZV0g44GT44KT44Gr44Gh44Gv?=", sdk.VerdictPass, []string{"hello:tag"}},
		// Japanese mail: ISO-2022-JP, and Shift_JIS, which the standard
		// library's decoder does not know.
		{"=?ISO-2022-JP?B?GyRCJDMkcyRLJEEkTxsoQlt0YWctbWVd?=", sdk.VerdictPass, []string{"hello:tag"}},
		{"=?Shift_JIS?B?W3JlamVjdC1tZV0ggrGC8Q==?=", sdk.VerdictFail, []string{"hello:reject"}},
	}
	for _, tt := range tests {
		t.Run(tt.subject, func(t *testing.T) {
			raw := []byte("From: a@example.test\r\nSubject: " + tt.subject + "\r\n\r\nbody line\r\n")
			for _, msg := range []*sdk.Message{plugintest.Message(raw), plugintest.FileMessage(t, raw)} {
				res, err := c.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseData, Message: msg})
				if err != nil {
					t.Fatal(err)
				}
				if res.Verdict != tt.verdict || !reflect.DeepEqual(res.Tags, tt.tags) {
					t.Errorf("verdict %s tags %v, want %s %v", res.Verdict, res.Tags, tt.verdict, tt.tags)
				}
				wantAttrs := map[string]string{"greeting": "good day", "body_bytes": "11"}
				if !reflect.DeepEqual(res.Attrs, wantAttrs) {
					t.Errorf("attrs %v, want %v", res.Attrs, wantAttrs)
				}
				wantEdit := []sdk.HeaderEdit{{Op: sdk.HeaderAdd, Name: "X-Hello", Value: "good day"}}
				if !reflect.DeepEqual(res.Headers, wantEdit) {
					t.Errorf("header edits %v, want %v", res.Headers, wantEdit)
				}
			}
		})
	}
}

// A greeting that is not ASCII reaches the attrs as it is and the header
// encoded (RFC 2047): the gateway writes header values as they come.
func TestGreetingNotASCII(t *testing.T) {
	c := plugintest.Start(t, &hello{})
	if err := c.Configure(sdk.Env{StageName: "hello"}, map[string]any{"greeting": "こんにちは"}); err != nil {
		t.Fatal(err)
	}
	raw := []byte("Subject: hi\r\n\r\nbody\r\n")
	res, err := c.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseData, Message: plugintest.Message(raw)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Attrs["greeting"] != "こんにちは" {
		t.Errorf("attr greeting = %q", res.Attrs["greeting"])
	}
	want := []sdk.HeaderEdit{{Op: sdk.HeaderAdd, Name: "X-Hello", Value: "=?utf-8?q?=E3=81=93=E3=82=93=E3=81=AB=E3=81=A1=E3=81=AF?="}}
	if !reflect.DeepEqual(res.Headers, want) {
		t.Errorf("header edits %q, want %q", res.Headers, want)
	}
}

// The gateway calls Check from every session at once and Configure again
// at a reload while calls are in flight. Run with -race, this fails on a
// stage that keeps its config in a plain field.
func TestReloadDuringChecks(t *testing.T) {
	c := plugintest.Start(t, &hello{})
	if err := c.Configure(sdk.Env{StageName: "hello"}, map[string]any{"greeting": "g0"}); err != nil {
		t.Fatal(err)
	}
	raw := []byte("Subject: hi\r\n\r\nbody\r\n")
	var wg sync.WaitGroup
	errs := make(chan error, 8*20)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				res, err := c.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseData, Message: plugintest.Message(raw)})
				if err == nil && !strings.HasPrefix(res.Attrs["greeting"], "g") {
					err = fmt.Errorf("greeting %q is none of those configured", res.Attrs["greeting"])
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := range 20 {
		if err := c.Configure(sdk.Env{StageName: "hello"}, map[string]any{"greeting": fmt.Sprint("g", i+1)}); err != nil {
			t.Error(err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
