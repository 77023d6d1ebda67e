package plugintest

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

// ConfigCase is one stage config for CheckConfigs.
type ConfigCase struct {
	Name   string
	Env    func(sdk.Env) sdk.Env // changes to the base Env; nil: none
	Config map[string]any
	Want   string // "": accepted; else CheckConfig's error contains it
}

// CheckConfigs tests a stage's sdk.ConfigChecker on each case, with an Env
// whose ConfigDir is dir and whose StatePath is dir/state.st.db (put the
// files the configs name in dir first). For every case CheckConfig must
// leave no goroutine running and change nothing under dir (a state file
// is not even created). Then Configure, on a new stage (closed after),
// must agree: a config CheckConfig accepts, Configure accepts too, and one
// CheckConfig refuses with an error containing Want, Configure refuses in
// the very same words, so that `portcullis check` says what `run` would.
// An accepted case's Configure runs for real: it may open the state file
// and must not need a server that the test does not provide.
func CheckConfigs(t *testing.T, newStage func() sdk.Stage, dir string, cases []ConfigCase) {
	t.Helper()
	base := sdk.Env{StageName: "st", Hostname: "mx.example.test", ConfigDir: dir,
		StatePath: filepath.Join(dir, "state.st.db"), DNSServers: []string{"127.0.0.1:53"}}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			env := base
			if tc.Env != nil {
				env = tc.Env(base)
			}
			checker, ok := newStage().(sdk.ConfigChecker)
			if !ok {
				t.Fatal("the stage does not implement sdk.ConfigChecker")
			}
			files := listDir(t, dir)
			before := runtime.NumGoroutine()
			err := checker.CheckConfig(context.Background(), env, tc.Config)
			if !goroutinesBack(before) {
				t.Errorf("CheckConfig left goroutines: %d before, %d after", before, runtime.NumGoroutine())
			}
			if got := listDir(t, dir); !slices.Equal(got, files) {
				t.Errorf("CheckConfig changed %s: %v, was %v", dir, got, files)
			}
			if tc.Want == "" {
				if err != nil {
					t.Fatalf("CheckConfig: %v", err)
				}
				// Else `check` says ok and `run` refuses the config.
				if cerr := configure(newStage(), env, tc.Config); cerr != nil {
					t.Fatalf("CheckConfig accepts the config, Configure refuses it: %v", cerr)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.Want) {
				t.Fatalf("CheckConfig: %v, want an error containing %q", err, tc.Want)
			}
			if cerr := configure(newStage(), env, tc.Config); cerr == nil || cerr.Error() != err.Error() {
				t.Errorf("Configure: %v; CheckConfig: %v", cerr, err)
			}
		})
	}
}

// configure is st's Configure of config, st closed after.
func configure(st sdk.Stage, env sdk.Env, config map[string]any) error {
	err := st.Configure(context.Background(), env, config)
	if c, ok := st.(sdk.Closer); ok {
		c.Close()
	}
	return err
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

// Case makes a ConfigCase, for tables that list many: c := plugintest.Case.
func Case(name string, env func(sdk.Env) sdk.Env, config map[string]any, want string) ConfigCase {
	return ConfigCase{Name: name, Env: env, Config: config, Want: want}
}

// ConfigDir makes a temporary config directory holding files (path
// relative to it -> text), for the list files a stage's config names; it
// is removed when the test ends.
func ConfigDir(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
