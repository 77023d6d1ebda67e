package smtpc

import (
	"net"
	"sync/atomic"
	"time"
)

// deadlineConn pushes the deadline forward before every read and write, so
// the timeout bounds each step (a slow but moving transfer survives, a
// stalled peer does not).
type deadlineConn struct {
	net.Conn
	timeout atomic.Int64 // time.Duration
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(time.Duration(c.timeout.Load())))
	return c.Conn.Read(p)
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(time.Duration(c.timeout.Load())))
	return c.Conn.Write(p)
}
