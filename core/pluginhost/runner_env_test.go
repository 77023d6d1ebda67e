package pluginhost

import (
	"slices"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk/hostrpc"
)

func TestPluginEnv(t *testing.T) {
	tests := []struct {
		name string
		base []string
		want []string
	}{
		{"one P by default", []string{"PATH=/bin"},
			[]string{"PATH=/bin", hostrpc.HostPIDEnv + "=42", "GOMAXPROCS=1"}},
		{"the admin's GOMAXPROCS stays", []string{"GOMAXPROCS=4", "PATH=/bin"},
			[]string{"GOMAXPROCS=4", "PATH=/bin", hostrpc.HostPIDEnv + "=42"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := slices.Clone(tt.base)
			if got := pluginEnv(base, 42); !slices.Equal(got, tt.want) {
				t.Errorf("pluginEnv(%q) = %q, want %q", tt.base, got, tt.want)
			}
			if !slices.Equal(base, tt.base) {
				t.Errorf("pluginEnv changed its input: %q", base)
			}
		})
	}
}
