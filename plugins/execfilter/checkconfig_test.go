package execfilter

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
		{"ok", nil, map[string]any{"extensions": []any{"exe"}, "limits": map[string]any{"timeout": "2s"}}, ""},
		{"unknown key", nil, map[string]any{"limitz": 1},
			`unknown key "limitz" (want extensions, content_types, signatures, limits) (did you mean "limits"?)`},
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
