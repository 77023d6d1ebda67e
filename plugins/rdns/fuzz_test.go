package rdns

import (
	"net/netip"
	"testing"
)

// FuzzDynamic: any PTR name and address (the name comes from the network)
// is classified without a panic, and a name that spells the IPv4 address
// with hyphens under an ISP domain is always generic.
func FuzzDynamic(f *testing.F) {
	f.Add("dhcp-203-0-113-7.pool.isp.example", []byte{203, 0, 113, 7})
	f.Add("mx.example.com", []byte{192, 0, 2, 1})
	f.Add("kd106180005200.au-net.ne.jp", []byte{106, 180, 5, 200})
	f.Add("..\x00.ÿ", []byte{0x20, 0x01, 0x0d, 0xb8, 15: 1})
	st := &state{}
	f.Fuzz(func(t *testing.T, name string, raw []byte) {
		ip, ok := netip.AddrFromSlice(raw)
		if !ok {
			return
		}
		st.isDynamic(name, ip)
		if ip.Is4() {
			a := ip.As4()
			spelled := itoa(a[0]) + "-" + itoa(a[1]) + "-" + itoa(a[2]) + "-" + itoa(a[3]) + ".isp.example"
			if !st.isDynamic(spelled, ip) {
				t.Fatalf("%s not generic for %s", spelled, ip)
			}
		}
	})
}

func itoa(b byte) string { return netip.AddrFrom4([4]byte{0, 0, 0, b}).String()[6:] }
