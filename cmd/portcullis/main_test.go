package main

import (
	"os"
	"sync"
	"testing"
)

// buildDirs are the directories the tests built binaries into (the
// gateway, the test plugins); TestMain removes them when the run ends, so
// that a run leaves nothing in the temporary directory.
var buildDirs struct {
	sync.Mutex
	list []string
}

// buildDir makes a directory for this run's builds, removed at its end.
func buildDir(prefix string) (string, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", err
	}
	buildDirs.Lock()
	buildDirs.list = append(buildDirs.list, dir)
	buildDirs.Unlock()
	return dir, nil
}

func TestMain(m *testing.M) {
	code := m.Run()
	buildDirs.Lock()
	for _, d := range buildDirs.list {
		os.RemoveAll(d)
	}
	buildDirs.Unlock()
	os.Exit(code)
}
