package bayes

import (
	"slices"
	"testing"
)

// TestWithoutOwnTrace: the Received fields a Portcullis gateway added are
// taken out wherever they stand in the header (on top as the stage sees
// the message, further down in a maildir copy), folded lines and all;
// nothing else changes, and a message without one is not copied.
func TestWithoutOwnTrace(t *testing.T) {
	const orig = "Received: from a.example (a.example [192.0.2.1])\r\n\tby b.example; Mon, 1 Jan 2024 00:00:00 +0000\r\n" +
		"From: x@a.example\r\nSubject: hi\r\n\r\nbody says (Portcullis) with nothing\r\n"
	const own = "Received: from c.example (unknown [192.0.2.9])\r\n\tby mx.example.test (Portcullis) with ESMTP id DN6X;\r\n" +
		"\tMon, 1 Jan 2024 00:00:01 +0000\r\n"
	const down = "Received: from mx.example.test by store.example.test; Mon, 1 Jan 2024 00:00:02 +0000\r\n"
	for name, in := range map[string]string{
		"on top":                 own + orig,
		"below the next server":  down + own + orig,
		"two gateways":           own + own + orig,
		"mbox From line":         "From x@a.example Mon Jan  1 00:00:00 2024\n" + own + orig,
		"received field, no own": orig,
	} {
		want := orig
		switch name {
		case "below the next server":
			want = down + orig
		case "mbox From line":
			want = "From x@a.example Mon Jan  1 00:00:00 2024\n" + orig
		}
		if got := string(withoutOwnTrace([]byte(in))); got != want {
			t.Errorf("%s: got\n%q\nwant\n%q", name, got, want)
		}
	}
	raw := []byte(orig)
	if got := withoutOwnTrace(raw); &got[0] != &raw[0] {
		t.Error("a message without our field was copied")
	}
	s := newTestStage(t, nil)
	a, b := s.Prepare([]byte(orig), true), s.Prepare([]byte(own+orig), true)
	if !slices.Equal(a.Grams, b.Grams) || !slices.Equal(a.Keys, b.Keys) || a.Hash != b.Hash {
		t.Error("learning from the message with our Received differs from learning it without")
	}
}
