package queue

import (
	"strings"
	"testing"
)

// NewDraftAs copies an open draft under its own ID, into the same Dir (a
// rewrite at commit) or another (the quarantine), with or without the
// intake log and for messages small and large (the intake's drafts spill
// to a file over 256 KiB): the copy commits as that ID, the original is
// aborted, and nothing is left over.
func TestNewDraftAs(t *testing.T) {
	big := strings.Repeat("0123456789abcdef\r\n", 20000) // 360 KB
	for _, intake := range []bool{false, true} {
		for _, body := range []string{"small body\r\n", big} {
			for _, other := range []bool{false, true} {
				name := map[bool]string{false: "file", true: "intake"}[intake] + map[bool]string{false: "/same", true: "/other"}[other]
				if len(body) > 100 {
					name += "/large"
				}
				t.Run(name, func(t *testing.T) {
					qdir := t.TempDir()
					src := openDirOpts(t, qdir, nil, Options{Poll: -1, Intake: intake})
					dst := src
					if other {
						dst = openDirOpts(t, t.TempDir(), nil, Options{Poll: -1})
					}
					orig, err := src.NewDraft()
					if err != nil {
						t.Fatal(err)
					}
					orig.Write([]byte("Subject: original\r\n\r\n" + body))
					cp, err := dst.NewDraftAs(orig.ID())
					if err != nil {
						t.Fatal(err)
					}
					cp.Write([]byte("Subject: [tag] original\r\n\r\n" + body))
					if err := cp.Commit(testEnv("a@x.test"), nil); err != nil {
						t.Fatal(err)
					}
					if err := orig.Abort(); err != nil {
						t.Fatal(err)
					}
					if cp.ID() != orig.ID() {
						t.Fatalf("copy has ID %s, original %s", cp.ID(), orig.ID())
					}
					if got := readAll(t, dst, orig.ID()); got != "Subject: [tag] original\r\n\r\n"+body {
						t.Fatalf("stored %d bytes, not the copy", len(got))
					}
					if other {
						if envs, _ := src.List(); len(envs) != 0 {
							t.Errorf("the source holds %d messages", len(envs))
						}
					}
					for _, n := range dirNames(t, qdir) {
						if strings.HasSuffix(n, tmpExt) {
							t.Errorf("left over: %s", n)
						}
					}
				})
			}
		}
	}
	if _, err := openDirOpts(t, t.TempDir(), nil, Options{Poll: -1}).NewDraftAs("../../etc"); err == nil {
		t.Error("NewDraftAs took a path for an ID")
	}
}
