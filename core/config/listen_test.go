package config

import (
	"net"
	"testing"
)

// TestListenNetwork: every form of listener address binds on the network
// ListenNetwork gives it, an IPv4-mapped one too (a tcp6 socket refuses
// it), and an IPv4 address is not also bound for IPv6.
func TestListenNetwork(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:0": "tcp4", "[::1]:0": "tcp6", "[::ffff:127.0.0.1]:0": "tcp", ":0": "tcp", "localhost:0": "tcp",
	} {
		if got := ListenNetwork(addr); got != want {
			t.Errorf("ListenNetwork(%q) = %s, want %s", addr, got, want)
		}
		ln, err := net.Listen(ListenNetwork(addr), addr)
		if err != nil {
			t.Errorf("%s: %v", addr, err)
			continue
		}
		ln.Close()
	}
}
