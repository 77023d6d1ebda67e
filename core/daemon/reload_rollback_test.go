package daemon

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/pipeline"
)

// hostModel is a pipeline factory with a plugin host's side effect: each
// call applies the stage configs of cfg (here: its hostname) at once, as
// pluginhost.Host.Reload does, before the daemon decides on the reload.
type hostModel struct {
	mu      sync.Mutex
	applied string
}

func (h *hostModel) factory(cfg *config.Config) (pipeline.Runner, func(), error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.applied = cfg.Hostname
	return rejectAll{}, nil, nil
}

func (h *hostModel) current() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.applied
}

// TestReloadRefusedRollsBack: whatever step refuses a reload, the pipeline
// and the services that had already taken the new config are given the old
// one back, so that "keeping the old config" is true of all of them.
func TestReloadRefusedRollsBack(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	tests := []struct {
		name      string
		oldnew    []string
		refuse    bool   // the second service refuses
		wantFirst string // events of the service before the refusing one
	}{
		{name: "service refuses", refuse: true,
			wantFirst: "start,reload mx2.example.test,reload mx.example.test"},
		{name: "address in use", oldnew: withSub(taken.Addr().String()), wantFirst: "start"},
		{name: "users file bad", oldnew: []string{"users_file: users.txt", "users_file: bad.txt"}, wantFirst: "start"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			host := &hostModel{}
			first := &recService{}
			second := &failingService{fail: tc.refuse}
			d, path, logs := startDaemonWith(t, func(d *Daemon) {
				d.Pipeline = host.factory
				d.AddService(first)
				d.AddService(second)
			})
			good, _ := os.ReadFile(path)
			if err := os.WriteFile(filepath.Join(filepath.Dir(path), "bad.txt"), []byte("alice:$2y$not-a-hash\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			rewrite(t, path, good, append(tc.oldnew, "hostname: mx.example.test", "hostname: mx2.example.test")...)
			if err := d.Reload(path); err == nil {
				t.Fatal("reload accepted")
			}
			if got := d.Config().Hostname; got != "mx.example.test" {
				t.Fatalf("config in force %q", got)
			}
			if got := host.current(); got != "mx.example.test" {
				t.Errorf("pipeline left on the refused config (%q): plugins run new stage configs behind the old rules", got)
			}
			if got := strings.Join(first.events, ","); got != tc.wantFirst {
				t.Errorf("first service events %q, want %q", got, tc.wantFirst)
			}
			if !strings.Contains(logs.String(), "rolled back") {
				t.Errorf("the log does not say the refused reload was rolled back:\n%s", logs.String())
			}
			// The rebuilt runner is in force: its rule still rejects.
			if _, err := send(t, d, 2, nil, "u@example.test"); err == nil || !strings.Contains(err.Error(), "Nope") {
				t.Fatalf("pipeline after the rollback: %v", err)
			}
		})
	}
}
