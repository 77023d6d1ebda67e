package main

import (
	"strings"
	"testing"
)

// An attribute named as one of the result's fields (dnsbl's attrs.reason,
// its TXT record, beside the result's reason) is printed as attrs.NAME:
// a line with two reason= could not be read.
func TestScanTextAttrsNamedLikeResultFields(t *testing.T) {
	r := &scanReport{Message: "m.eml", Action: "reject", Stages: map[string]*stageReport{
		"dnsbl": {Phase: "mail", Verdict: "fail", Score: 1, Tags: []string{"zen.example"},
			Attrs:  map[string]string{"reason": "listed for test", "zone": "zen.example"},
			Reason: "listed at zen.example (weight 1)"},
	}}
	var b strings.Builder
	if err := r.writeText(&b); err != nil {
		t.Fatal(err)
	}
	want := `stage dnsbl (mail): fail score=1 tags=zen.example attrs.reason="listed for test" zone="zen.example" reason="listed at zen.example (weight 1)"`
	if !strings.Contains(b.String(), want+"\n") {
		t.Errorf("got\n%s\nwant a line\n%s", b.String(), want)
	}
}
