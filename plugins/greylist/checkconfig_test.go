package greylist

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
)

// TestCheckConfig: CheckConfig refuses what Configure refuses, with the
// same words, and leaves nothing behind: no goroutine, no file (the
// state file of a running gateway is not even opened).
func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	base := sdk.Env{StageName: "st", Hostname: "mx.example.test", ConfigDir: dir,
		StatePath: filepath.Join(dir, "state.st.db"), DNSServers: []string{"127.0.0.1:53"}}
	for _, tt := range []struct {
		name string
		env  func(sdk.Env) sdk.Env // nil: base
		cfg  map[string]any
		want string // "": accepted; else the error contains it
	}{
		{"ok", nil, nil, ""},
		{"redis not asked", func(e sdk.Env) sdk.Env { e.RedisURL = "redis://127.0.0.1:1/0"; return e }, nil, ""},
		{"bad redis url", func(e sdk.Env) sdk.Env { e.RedisURL = "ftp://127.0.0.1/0"; return e }, nil, "greylist: state.redis"},
		{"no state", func(e sdk.Env) sdk.Env { e.StatePath = ""; return e }, nil, "greylist: no state file"},
		{"unknown key", nil, map[string]any{"dealy": "1m"},
			`unknown key "dealy" (want delay, retry_window, pass_lifetime, auto_allow_after, ipv4_prefix, ipv6_prefix) (did you mean "delay"?)`},
		{"bad prefix", nil, map[string]any{"ipv4_prefix": 33}, "ipv4_prefix: want a whole number from 8 to 32, got 33"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := base
			if tt.env != nil {
				env = tt.env(base)
			}
			files := listDir(t, dir)
			before := runtime.NumGoroutine()
			err := New().(sdk.ConfigChecker).CheckConfig(context.Background(), env, tt.cfg)
			if !goroutinesBack(before) {
				t.Errorf("CheckConfig left goroutines: %d before, %d after", before, runtime.NumGoroutine())
			}
			if got := listDir(t, dir); !slices.Equal(got, files) {
				t.Errorf("CheckConfig changed %s: %v, was %v", dir, got, files)
			}
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckConfig: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("CheckConfig: %v, want an error containing %q", err, tt.want)
			}
			st := New()
			if cerr := st.Configure(context.Background(), env, tt.cfg); cerr == nil || cerr.Error() != err.Error() {
				t.Errorf("Configure: %v; CheckConfig: %v", cerr, err)
			}
			if c, ok := st.(sdk.Closer); ok {
				c.Close()
			}
		})
	}
}

// goroutinesBack reports whether the number of goroutines is back to n
// within a second (the runtime's own may take a moment to end).
func goroutinesBack(n int) bool {
	for range 100 {
		if runtime.NumGoroutine() <= n {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// listDir names every file under dir.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		out = append(out, p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
