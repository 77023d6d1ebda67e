package pluginhost

import (
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
)

func TestCheckInfo(t *testing.T) {
	tests := []struct {
		name    string
		info    sdk.Info
		wantErr string
	}{
		{"good", sdk.Info{Name: "x", Phases: []sdk.Phase{sdk.PhaseConnect, sdk.PhaseData}}, ""},
		{"no name", sdk.Info{Phases: []sdk.Phase{sdk.PhaseData}}, "did not name itself"},
		{"no phase", sdk.Info{Name: "x"}, "asks for no phase"},
		{"unknown phase", sdk.Info{Name: "x", Phases: []sdk.Phase{"quit"}}, `phase "quit"`},
		{"repeated phase", sdk.Info{Name: "x", Phases: []sdk.Phase{sdk.PhaseRcpt, sdk.PhaseRcpt}}, `phase "rcpt"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkInfo(tt.info)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("checkInfo = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestArgv(t *testing.T) {
	h := New(Options{Self: "/usr/sbin/portcullis", IsBuiltin: func(n string) bool { return n == "dnsbl" }})
	tests := []struct {
		spec Spec
		want string
	}{
		{Spec{Plugin: "dnsbl"}, "/usr/sbin/portcullis plugin dnsbl"},
		{Spec{Plugin: "/opt/p/hello"}, "/opt/p/hello"},
		{Spec{Plugin: "plugins/hello", Env: sdk.Env{ConfigDir: "/etc/portcullis"}}, "/etc/portcullis/plugins/hello"},
	}
	for _, tt := range tests {
		got, err := h.argv(tt.spec)
		if err != nil || strings.Join(got, " ") != tt.want {
			t.Errorf("argv(%q) = %q, %v; want %q", tt.spec.Plugin, got, err, tt.want)
		}
	}
}
