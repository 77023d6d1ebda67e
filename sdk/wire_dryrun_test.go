package sdk

import "testing"

// TestDryRunCrossesTheWire: Request.DryRun reaches the plugin, and a
// request without it arrives without it.
func TestDryRunCrossesTheWire(t *testing.T) {
	for _, dry := range []bool{false, true} {
		in := &Request{Phase: PhaseRcpt, SessionID: "s", DryRun: dry}
		if got := requestFromPB(requestToPB(in)); got.DryRun != dry {
			t.Errorf("DryRun %v arrived as %v", dry, got.DryRun)
		}
	}
}
