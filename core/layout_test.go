// Package core_test holds checks about the shape of the whole module.
package core_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/portcullis-mta/portcullis"

// allowed says which top-level parts of the module each part may import
// (STYLE.md): cmd -> core, rules, plugins, sdk, examples (for the embedded
// quickstart config); core -> rules, sdk; rules -> sdk; plugins and
// examples -> sdk only (and their own subpackages); sdk -> nothing of ours.
var allowed = map[string][]string{
	"cmd":      {"cmd", "core", "rules", "plugins", "sdk", "examples"},
	"core":     {"core", "rules", "sdk"},
	"rules":    {"rules", "sdk"},
	"plugins":  {"sdk"},
	"examples": {"sdk"},
	"sdk":      {"sdk"},
}

func TestImportRule(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found above core/: %v", err)
	}
	checked := 0
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == "testdata" || strings.HasPrefix(n, ".") && path != root {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		top := strings.SplitN(filepath.ToSlash(rel), "/", 2)[0]
		ok, known := allowed[top]
		if !known {
			t.Errorf("%s: Go file outside the fixed layout (core, plugins, rules, sdk, cmd, examples)", rel)
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		checked++
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if !strings.HasPrefix(p, module+"/") {
				continue
			}
			target := strings.SplitN(strings.TrimPrefix(p, module+"/"), "/", 2)[0]
			if !contains(ok, target) && !samePlugin(rel, p) {
				t.Errorf("%s imports %s: %s/ may import only %v of ours", rel, p, top, ok)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 5 {
		t.Fatalf("only %d Go files checked: the walk went wrong", checked)
	}
}

// samePlugin allows a plugin (or example) to import its own subpackages:
// plugins/bayes may import plugins/bayes/msgsrc, not plugins/dnsbl.
func samePlugin(rel, importPath string) bool {
	parts := strings.SplitN(filepath.ToSlash(rel), "/", 3)
	if len(parts) < 3 || (parts[0] != "plugins" && parts[0] != "examples") {
		return false
	}
	own := module + "/" + parts[0] + "/" + parts[1]
	return importPath == own || strings.HasPrefix(importPath, own+"/")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
