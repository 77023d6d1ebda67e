package msgauth

import (
	"slices"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
)

// padding is about 300 KB of header fields: more than the 256 KiB of
// header the gateway gives stages.
var padding = strings.Repeat("X-Tracking: "+strings.Repeat("a", 200)+"\r\n", 1400)

// cutReq is dataReq with the header cut as the gateway cuts it: the
// stage is given only the fields of its first 256 KiB (here, padding's).
func cutReq(t *testing.T, raw, helo, mailFrom string) *sdk.Request {
	t.Helper()
	req := dataReq(t, raw, helo, mailFrom)
	var cut []sdk.HeaderField
	size := 0
	for _, f := range req.Message.Header {
		if size += len(f.Name) + len(f.Value) + 4; size > 256<<10 {
			break
		}
		cut = append(cut, f)
	}
	req.Message.Header = cut
	return req
}

// A From field below 256 KiB of padding is still the author: the DMARC
// policy of its domain applies (it read as "0 From fields", permerror,
// and the example rules let a p=reject spoof through).
func TestFromBehindBigHeader(t *testing.T) {
	s := newStage(t, dmarcZone(t), 0)
	raw := padding + message("ceo@example.test")
	req := cutReq(t, raw, "h.other.test", "spoofer@other.test")
	if req.Message.Get("From") != "" {
		t.Fatal("the test's cut header holds the From field")
	}
	res := check(t, s, req)
	if res.Attrs["dmarc"] != "fail" || res.Attrs["dmarc_disposition"] != "reject" || res.Verdict != sdk.VerdictFail {
		t.Errorf("dmarc=%s disposition=%s verdict=%s (%s), want a p=reject fail",
			res.Attrs["dmarc"], res.Attrs["dmarc_disposition"], res.Verdict, res.Reason)
	}
	if res.Attrs["dmarc_from"] != "example.test" {
		t.Errorf("dmarc_from = %q", res.Attrs["dmarc_from"])
	}
}

// A forged Authentication-Results field below 256 KiB of padding is
// removed like one on top, and a foreign one there is kept.
func TestForgedAuthResultsBehindBigHeader(t *testing.T) {
	s := newStage(t, dmarcZone(t), 0)
	raw := padding + "Authentication-Results: mx.portcullis.test; dmarc=pass header.from=example.test\r\n" +
		"Authentication-Results: relay.other.test;\r\n dkim=pass header.d=other.test\r\n" + message("a@example.test")
	res := check(t, s, cutReq(t, raw, "h.other.test", "b@other.test"))
	want := []sdk.HeaderEdit{
		{Op: sdk.HeaderRemove, Name: arField},
		{Op: sdk.HeaderAdd, Name: arField},
		{Op: sdk.HeaderAdd, Name: arField, Value: "relay.other.test; dkim=pass header.d=other.test"},
	}
	if len(res.Headers) == 3 {
		want[1].Value = res.Headers[1].Value
	}
	if !slices.Equal(res.Headers, want) || res.Attrs["forged_authres"] != "1" {
		t.Errorf("edits %+v, forged_authres %q; want %+v", res.Headers, res.Attrs["forged_authres"], want)
	}
}

// Foreign fields added back after a forged one is removed stop at
// maxKeptAuthres: the stage's reply to the host must stay small.
func TestKeptAuthResultsBounded(t *testing.T) {
	one := "relay.other.test; spf=pass " + strings.Repeat("x", 1000)
	h := []sdk.HeaderField{{Name: arField, Value: authservID + "; dmarc=pass"}}
	for range 1000 {
		h = append(h, sdk.HeaderField{Name: arField, Value: one})
	}
	edits, forged := headerEdits(h, authservID, "ours")
	size := 0
	for _, e := range edits[2:] {
		size += len(e.Value)
	}
	if forged != 1 || edits[0].Op != sdk.HeaderRemove || size > maxKeptAuthres || size < maxKeptAuthres-len(one) {
		t.Errorf("forged %d, %d edits, %d bytes added back", forged, len(edits), size)
	}
}
