package main

import (
	"net"
	"os"
	"strings"
	"testing"
)

// TestE2ELoopBackToMyself: a route that points back at one of the
// gateway's own listeners (an OB25 admin's likely slip) used to relay a
// message to itself over and over, a new copy each time (thousands in a
// few seconds). Our EHLO reply now names us, delivery sees its own
// hostname in the next hop's greeting and defers the message with 4.4.6:
// one copy, a warning, and mail that a fixed route and a queue flush will
// deliver.
func TestE2ELoopBackToMyself(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	self := ln.Addr().String()
	ln.Close()
	hop := startNextHop(t, false)
	cfg, _ := e2eSetup(t, hop, nil)
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(b), `"127.0.0.1:0"`, `"`+self+`"`)
	text = strings.ReplaceAll(text, hop.addr, self)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, cfg)
	r := sendOne(g.addr, "bob@example.test", subjectMsg("loop"))
	if r.code != 250 {
		t.Fatalf("send: %v", r)
	}
	id := r.queueID()
	waitLog(t, g, "loops back to myself")
	out := portcullisCLI(t, "queue", "list", "-c", cfg)
	if n := strings.Count(out, "bob@example.test"); n != 1 || !strings.Contains(out, id) {
		t.Errorf("queue after the loop, want the one message %s:\n%s", id, out)
	}
	if !strings.Contains(out, "4.4.6") {
		t.Errorf("queue list does not show the 4.4.6 deferral:\n%s", out)
	}
}
