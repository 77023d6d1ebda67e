package pluginhost

import (
	"slices"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk/hostrpc"
)

func TestPluginEnv(t *testing.T) {
	pid := hostrpc.HostPIDEnv + "=42"
	tests := []struct {
		name       string
		base, host []string
		want       []string
	}{
		{"one P by default", []string{"PLUGIN_X=1"}, []string{"PATH=/bin"},
			[]string{"PATH=/bin", "PLUGIN_X=1", pid, "GOMAXPROCS=1"}},
		{"the admin's GOMAXPROCS stays", []string{"PLUGIN_X=1"}, []string{"GOMAXPROCS=4", "PATH=/bin"},
			[]string{"GOMAXPROCS=4", "PATH=/bin", "PLUGIN_X=1", pid}},
		{"the host's secrets stay out",
			[]string{"PLUGIN_X=1"},
			[]string{"PATH=/bin", "AWS_SECRET_ACCESS_KEY=k", "SMARTHOST_PASSWORD=p", "CREDENTIALS_DIRECTORY=/run/c",
				"LC_ALL=C.UTF-8", "TZ=UTC", "HOME=/var/lib/portcullis", "GOMEMLIMIT=1GiB", "not a variable"},
			[]string{"PATH=/bin", "LC_ALL=C.UTF-8", "TZ=UTC", "HOME=/var/lib/portcullis", "GOMEMLIMIT=1GiB",
				"PLUGIN_X=1", pid, "GOMAXPROCS=1"}},
		{"the admin names more", nil,
			[]string{"PATH=/bin", "SAVI_LICENSE=/etc/savi", "HTTPS_PROXY=http://p:3128", "SECRET=s",
				"PORTCULLIS_PLUGIN_ENV=SAVI_LICENSE, HTTPS_PROXY"},
			[]string{"PATH=/bin", "SAVI_LICENSE=/etc/savi", "HTTPS_PROXY=http://p:3128", pid, "GOMAXPROCS=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, host := slices.Clone(tt.base), slices.Clone(tt.host)
			if got := pluginEnv(base, host, 42); !slices.Equal(got, tt.want) {
				t.Errorf("pluginEnv(%q, %q) = %q, want %q", tt.base, tt.host, got, tt.want)
			}
			if !slices.Equal(base, tt.base) || !slices.Equal(host, tt.host) {
				t.Errorf("pluginEnv changed its input: %q %q", base, host)
			}
		})
	}
}
