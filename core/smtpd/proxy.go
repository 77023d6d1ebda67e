package smtpd

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"net/netip"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// proxyHeaderTimeout bounds the wait for a PROXY header.
const proxyHeaderTimeout = 30 * time.Second

// v1MaxLen is the longest PROXY v1 line, CRLF included (proxy-protocol.txt 2.1).
const v1MaxLen = 107

var (
	errProxyTimeout = errors.New("smtpd: no PROXY header in time")
	errProxyFamily  = errors.New("smtpd: PROXY header for a connection that is not TCP over IPv4 or IPv6")
)

// readProxyHeader reads the PROXY header a trusted proxy sends first,
// within wait: a client that sends nothing, or trickles, holds a slot no
// longer. conn is the socket under br.
func readProxyHeader(conn net.Conn, br *bufio.Reader, wait time.Duration) (netip.AddrPort, error) {
	if wait > 0 {
		_ = conn.SetReadDeadline(time.Now().Add(wait))
		defer func() { _ = conn.SetReadDeadline(time.Time{}) }()
	}
	ap, err := parseProxyHeader(br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		err = errProxyTimeout
	}
	return ap, err
}

// parseProxyHeader reads a HAProxy PROXY v1 or v2 header from br and
// leaves br at the first byte after it. It returns the client's address,
// or the zero AddrPort when the connection's own address stands (LOCAL,
// v1 UNKNOWN: the proxy's own connections, such as health checks;
// proxy-protocol.txt 2.1 and 2.2).
//
// Only TCP over IPv4 or IPv6 is accepted as a PROXY source: a UNIX or UDP
// source carries no client address to apply limits, rules and the
// Received field to. v2 TLVs are skipped; nothing here uses them.
func parseProxyHeader(br *bufio.Reader) (netip.AddrPort, error) {
	b, err := br.Peek(1)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if b[0] == proxyproto.SIGV1[0] {
		// proxy-protocol.txt 2.1 recommends tolerating a header split
		// across segments; the library refuses one unless it is already
		// buffered whole. Our deadline bounds the wait.
		if err := bufferLine(br, v1MaxLen); err != nil {
			return netip.AddrPort{}, err
		}
	}
	h, err := proxyproto.Read(br)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if h.Command.IsLocal() {
		return netip.AddrPort{}, nil
	}
	src, _, ok := h.TCPAddrs()
	if !ok {
		return netip.AddrPort{}, errProxyFamily
	}
	ip, ok := netip.AddrFromSlice(src.IP)
	if !ok || src.Port < 0 || src.Port > 65535 {
		return netip.AddrPort{}, proxyproto.ErrInvalidAddress
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(src.Port)), nil
}

// bufferLine peeks until br holds a LF within its first limit bytes, or
// limit bytes without one. Each wait is for one more byte than is
// buffered, so it never waits for bytes the sender has no reason to send.
func bufferLine(br *bufio.Reader, limit int) error {
	for {
		n := min(br.Buffered(), limit)
		b, _ := br.Peek(n)
		if bytes.IndexByte(b, '\n') >= 0 || n >= limit {
			return nil
		}
		if _, err := br.Peek(n + 1); err != nil {
			return err
		}
	}
}
