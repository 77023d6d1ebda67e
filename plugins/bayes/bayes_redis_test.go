package bayes

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
)

// No Redis token store exists: state.redis without a state.path is refused
// at load rather than silently ignored; with both, the local file is used.
func TestConfigureRedis(t *testing.T) {
	s := NewStage()
	err := s.Configure(context.Background(), sdk.Env{StageName: "bayes", RedisURL: "redis://127.0.0.1:6379/0"}, nil)
	if err == nil || !strings.Contains(err.Error(), "state.redis") {
		t.Fatalf("Configure with only state.redis = %v, want a refusal naming state.redis", err)
	}
	path := filepath.Join(t.TempDir(), "state.bayes.db")
	s = NewStage()
	if err := s.Configure(context.Background(), sdk.Env{StageName: "bayes", StatePath: path, RedisURL: "redis://127.0.0.1:6379/0"}, nil); err != nil {
		t.Fatalf("Configure with state.path and state.redis: %v", err)
	}
	defer s.Close()
	if got := s.storePath(); got != path {
		t.Errorf("store at %q, want the state.path file %q", got, path)
	}
}
