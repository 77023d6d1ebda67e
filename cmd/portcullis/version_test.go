package main

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestVersion(t *testing.T) {
	saved := version
	t.Cleanup(func() { version = saved })
	version = "1.2.3"
	commit, _ := vcsInfo(debug.ReadBuildInfo)
	code, out, _ := run("version")
	want := "portcullis 1.2.3\ncommit " + commit + "\n" + runtime.Version() + "\n"
	if code != 0 || out != want {
		t.Errorf("got %d %q, want 0 %q", code, out, want)
	}
	if code, _, _ := run("version", "extra"); code != 2 {
		t.Errorf("extra argument: exit %d, want 2", code)
	}
}

func TestVCSInfo(t *testing.T) {
	cases := []struct {
		name     string
		info     *debug.BuildInfo
		ok       bool
		commit   string
		modified bool
	}{
		{"no build info", nil, false, "unknown", false},
		{"no vcs", &debug.BuildInfo{}, true, "unknown", false},
		{"clean", &debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "false"}}}, true, "abc123", false},
		{"dirty", &debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "true"}}}, true, "abc123", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			commit, mod := vcsInfo(func() (*debug.BuildInfo, bool) { return c.info, c.ok })
			if commit != c.commit || mod != c.modified {
				t.Errorf("got %q %v, want %q %v", commit, mod, c.commit, c.modified)
			}
		})
	}
}
