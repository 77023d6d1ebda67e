package textfilter

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/plugintest"
)

// TestOverProtocol runs both stages through the plugin protocol, with the
// config encoded as the host encodes it and the message read from a spool file.
func TestOverProtocol(t *testing.T) {
	dir, _ := filepath.Abs("testdata")
	raw, err := os.ReadFile(filepath.Join(dir, "sjis_mislabelled.eml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []sdk.Stage{NewText(), NewSubject()} {
		c := plugintest.Start(t, st)
		if err := c.Configure(sdk.Env{StageName: "t", ConfigDir: dir}, map[string]any{
			"lists": []any{map[string]any{"name": "spam", "file": "spam.txt"}}}); err != nil {
			t.Fatal(err)
		}
		for name, msg := range map[string]*sdk.Message{"file": plugintest.FileMessage(t, raw), "inline": plugintest.Message(raw)} {
			res, err := c.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseData, Message: msg})
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"spam:お支払い"}
			if st.Info().Name == "subject" {
				want = nil
			}
			if !slices.Equal(res.Tags, want) {
				t.Errorf("%s/%s: tags %q, want %q", st.Info().Name, name, res.Tags, want)
			}
		}
	}
}
