package execfilter

import (
	"strconv"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/plugintest"
)

// BenchmarkPeakRSS20MB is the plugin's peak resident memory for 1 and for
// 10 concurrent Check calls of a 20 MB message (a short text and a 15 MB
// binary attachment, base64), called over the protocol from a spool file
// as the gateway calls it: -cpu 1 -bench 'PeakRSS20MB/calls=10$'.
func BenchmarkPeakRSS20MB(b *testing.B) {
	raw := plugintest.AttachmentMessage(15 << 20)
	for _, n := range []int{1, 10} {
		b.Run("calls="+strconv.Itoa(n), func(b *testing.B) {
			c := plugintest.Start(b, New())
			if err := c.Configure(sdk.Env{StageName: "exec"}, map[string]any{
				"limits": map[string]any{"timeout": "30s"}}); err != nil {
				b.Fatal(err)
			}
			plugintest.PeakRSS(b, c, plugintest.FileMessage(b, raw), n)
		})
	}
}
