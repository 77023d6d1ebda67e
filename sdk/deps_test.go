package sdk_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/portcullis-mta/portcullis"

// TestImportsOnlySDK enforces the dependency rule of STYLE.md: sdk and the
// example third-party plugin import nothing of Portcullis outside sdk/.
func TestImportsOnlySDK(t *testing.T) {
	for _, root := range []string{".", "../examples/plugin-hello"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
				return err
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
			if err != nil {
				return err
			}
			for _, im := range f.Imports {
				p, _ := strconv.Unquote(im.Path.Value)
				if strings.HasPrefix(p, module+"/") && !strings.HasPrefix(p, module+"/sdk") {
					t.Errorf("%s imports %s: sdk and plugins may import only sdk/", path, p)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
