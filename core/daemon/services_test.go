package daemon

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/pipeline"
	"github.com/portcullis-mta/portcullis/sdk"
	dnstest "github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"

	"github.com/portcullis-mta/portcullis/core/internal/logbuf"
)

// recService records its life cycle.
type recService struct {
	mu     sync.Mutex
	events []string
}

func (r *recService) add(e string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recService) Start(context.Context) error { r.add("start"); return nil }
func (r *recService) Reload(cfg *config.Config) error {
	r.add("reload " + cfg.Hostname)
	return nil
}
func (r *recService) Stop(context.Context) error { r.add("stop"); return nil }

// rejectAll is a runner whose rule rejects every recipient.
type rejectAll struct{}

func (rejectAll) Wants(p sdk.Phase) bool { return p == sdk.PhaseRcpt }
func (rejectAll) Run(context.Context, *sdk.Request, map[string]*sdk.Result) (*pipeline.Decision, error) {
	return &pipeline.Decision{Action: pipeline.Reject, Reply: &pipeline.Reply{Code: 550, Enhanced: "5.7.1", Text: "Nope"}}, nil
}

func TestServicesAndPipelineFactory(t *testing.T) {
	dns := dnstest.New(t)
	dir := t.TempDir()
	path := writeConfig(t, dir, "mx.example.test", dns.Addr)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	logs := &logbuf.Buffer{}
	log, _ := NewLogger(config.Log{}, logs)
	d, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	svc := &recService{}
	d.AddService(svc)
	closed := 0
	fail := false
	d.Pipeline = func(cfg *config.Config) (pipeline.Runner, func(), error) {
		if fail {
			return nil, nil, errors.New("plugin failed to start")
		}
		return rejectAll{}, func() { closed++ }, nil
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := send(t, d, 2, nil, "u@example.test"); err == nil || !strings.Contains(err.Error(), "Nope") {
		t.Fatalf("pipeline not in force: %v", err)
	}
	// A factory failure refuses the reload; the services keep the old config.
	fail = true
	good, _ := os.ReadFile(path)
	os.WriteFile(path, []byte(strings.Replace(string(good), "mx.example.test", "mx2.example.test", 1)), 0o600)
	if err := d.Reload(path); err == nil {
		t.Fatal("reload with a failing pipeline accepted")
	}
	if d.Config().Hostname != "mx.example.test" {
		t.Fatal("config changed despite the refusal")
	}
	fail = false
	if err := d.Reload(path); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(svc.events, ",")
	if got != "start,reload mx2.example.test,stop" {
		t.Fatalf("service events %q", got)
	}
	if closed != 1 { // the runner of the last config; the first one closes after a delay
		t.Fatalf("runner closed %d times", closed)
	}
}
