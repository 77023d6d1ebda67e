package smtpd

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net/netip"
	"testing"
	"testing/iotest"

	proxyproto "github.com/pires/go-proxyproto"
)

// v2Header builds a PROXY v2 header: signature, version|command, family,
// length, then body as given (addresses, TLVs).
func v2Header(cmd, fam byte, body []byte) []byte {
	b := append([]byte(nil), proxyproto.SIGV2...)
	b = append(b, cmd, fam)
	b = binary.BigEndian.AppendUint16(b, uint16(len(body)))
	return append(b, body...)
}

// v2TCP6Body is a TCPv6 address block from src:40000 to 2001:db8::25:25.
func v2TCP6Body(src string) []byte {
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr("2001:db8::25").As16()
	b := append(s[:], d[:]...)
	b = binary.BigEndian.AppendUint16(b, 40000)
	return binary.BigEndian.AppendUint16(b, 25)
}

// Commands, families and TLV types of proxy-protocol.txt 2.2.
const (
	ppLocal, ppProxy                     = 0x20, 0x21
	ppUnspec, ppTCP4, ppUDP4, ppTCP6     = 0x00, 0x11, 0x12, 0x21
	ppUnixStream, ppUnixDgram            = 0x31, 0x32
	ppTLVAuthority, ppTLVUniqueID, ppSSL = 0x02, 0x05, 0x20
)

var (
	v4Body   = []byte{203, 0, 113, 9, 192, 0, 2, 1, 0x9c, 0x40, 0, 25}
	unixBody = append([]byte("/run/client.sock"), make([]byte, 216-16)...)
	tlvs     = []byte{ppTLVAuthority, 0, 16, 'm', 'x', '.', 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 't', 'e', 's', 't', '.',
		ppTLVUniqueID, 0, 3, 1, 2, 3, ppSSL, 0, 5, 0x07, 0, 0, 0, 0}
)

// proxyCases are the headers a proxy listener may meet; ok: accepted,
// want: the client address it yields ("" = the connection's own).
var proxyCases = []struct {
	name string
	in   []byte
	ok   bool
	want string
}{
	{"v1 tcp4", []byte("PROXY TCP4 203.0.113.9 192.0.2.1 40000 25\r\n"), true, "203.0.113.9:40000"},
	{"v1 tcp6", []byte("PROXY TCP6 2001:db8::9 2001:db8::25 40000 25\r\n"), true, "[2001:db8::9]:40000"},
	{"v1 tcp6 v4-mapped", []byte("PROXY TCP6 ::ffff:203.0.113.9 ::ffff:192.0.2.1 40000 25\r\n"), true, "203.0.113.9:40000"},
	{"v1 unknown", []byte("PROXY UNKNOWN ffff:f::1 ffff:f::2 1 2\r\n"), true, ""},
	{"v1 unknown bare", []byte("PROXY UNKNOWN\r\n"), true, ""},
	{"v1 truncated", []byte("PROXY TCP4 203.0.113.9 192.0"), false, ""},
	{"v1 no CR", []byte("PROXY TCP4 203.0.113.9 192.0.2.1 40000 25\n"), false, ""},
	{"v1 too long", append([]byte("PROXY UNKNOWN "), bytes.Repeat([]byte("x"), 120)...), false, ""},
	{"v1 bad address", []byte("PROXY TCP4 203.0.113.999 192.0.2.1 40000 25\r\n"), false, ""},
	{"v1 v6 in tcp4", []byte("PROXY TCP4 2001:db8::9 192.0.2.1 40000 25\r\n"), false, ""},
	{"v1 bad port", []byte("PROXY TCP4 203.0.113.9 192.0.2.1 70000 25\r\n"), false, ""},
	{"v1 extra field", []byte("PROXY TCP4 203.0.113.9 192.0.2.1 40000 25 x\r\n"), false, ""},
	{"v2 tcp4", v2Header(ppProxy, ppTCP4, v4Body), true, "203.0.113.9:40000"},
	{"v2 tcp6 with TLVs", v2Header(ppProxy, ppTCP6, append(v2TCP6Body("2001:db8:1:2::9"), tlvs...)), true, "[2001:db8:1:2::9]:40000"},
	{"v2 tcp6 v4-mapped", v2Header(ppProxy, ppTCP6, v2TCP6Body("::ffff:203.0.113.9")), true, "203.0.113.9:40000"},
	{"v2 local", v2Header(ppLocal, ppUnspec, nil), true, ""},
	{"v2 local with address", v2Header(ppLocal, ppTCP4, v4Body), true, ""},
	{"v2 local with TLVs", v2Header(ppLocal, ppUnspec, tlvs), true, ""},
	{"v2 proxy unspec", v2Header(ppProxy, ppUnspec, nil), false, ""},
	{"v2 unix stream", v2Header(ppProxy, ppUnixStream, unixBody), false, ""},
	{"v2 unix datagram", v2Header(ppProxy, ppUnixDgram, unixBody), false, ""},
	{"v2 udp4", v2Header(ppProxy, ppUDP4, v4Body), false, ""},
	{"v2 short address", v2Header(ppProxy, ppTCP4, v4Body[:8]), false, ""},
	{"v2 truncated", v2Header(ppProxy, ppTCP6, v2TCP6Body("2001:db8::9"))[:30], false, ""},
	// TLVs are not used, so a malformed one does no harm.
	{"v2 bad TLV", v2Header(ppProxy, ppTCP4, append(append([]byte(nil), v4Body...), ppTLVUniqueID, 0, 9, 1)), true, "203.0.113.9:40000"},
	{"v2 huge length", append(v2Header(ppProxy, ppTCP4, nil)[:14], 0xff, 0xff), false, ""},
	{"v2 version 1 byte", v2Header(0x11, ppTCP4, v4Body), false, ""},
	{"v2 unknown command", v2Header(0x22, ppTCP4, v4Body), false, ""},
	{"smtp instead", []byte("EHLO c.example.org\r\n"), false, ""},
	{"empty", nil, false, ""},
}

// parseAll parses in through r and returns the result and what is left.
func parseAll(r io.Reader) (netip.AddrPort, []byte, error) {
	br := bufio.NewReader(r)
	ap, err := parseProxyHeader(br)
	rest, _ := io.ReadAll(br)
	return ap, rest, err
}

// TestParseProxyHeader: every case gives the same answer whether its bytes
// come at once or one per read, as a header split across TCP segments
// does (proxy-protocol.txt 2.1: be tolerant of partial headers); what
// follows the header is left unread for the SMTP dialog.
func TestParseProxyHeader(t *testing.T) {
	const after = "EHLO c.example.org\r\n"
	for _, tc := range proxyCases {
		t.Run(tc.name, func(t *testing.T) {
			in := append(append([]byte(nil), tc.in...), after...)
			for _, split := range []bool{false, true} {
				var r io.Reader = bytes.NewReader(in)
				if split {
					r = iotest.OneByteReader(r)
				}
				ap, rest, err := parseAll(r)
				if (err == nil) != tc.ok {
					t.Fatalf("split %v: err %v, want ok=%v", split, err, tc.ok)
				}
				if !tc.ok {
					continue
				}
				got := ""
				if ap.IsValid() {
					got = ap.String()
				}
				if got != tc.want || string(rest) != after {
					t.Fatalf("split %v: got %q, rest %q; want %q, rest %q", split, got, rest, tc.want, after)
				}
			}
		})
	}
}

// FuzzProxyHeader: whatever the bytes, parsing them whole and one byte per
// read agree, only the header is consumed, and an address given is a
// plain IPv4 or IPv6 one (IPv4-mapped counts as IPv4).
func FuzzProxyHeader(f *testing.F) {
	for _, tc := range proxyCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		ap1, rest1, err1 := parseAll(bytes.NewReader(in))
		ap2, rest2, err2 := parseAll(iotest.OneByteReader(bytes.NewReader(in)))
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("whole: %v, split: %v", err1, err2)
		}
		if err1 != nil {
			return
		}
		if ap1 != ap2 || !bytes.Equal(rest1, rest2) {
			t.Fatalf("whole: %v %q, split: %v %q", ap1, rest1, ap2, rest2)
		}
		if !bytes.HasSuffix(in, rest1) {
			t.Fatalf("rest %q is not what followed the header in %q", rest1, in)
		}
		if a := ap1.Addr(); ap1.IsValid() && (a.Is4In6() || a.Zone() != "") {
			t.Fatalf("address %v not normalised", a)
		}
	})
}
