// Package confinetest holds what the confinement tests (of transcoder,
// transcoder/confine and cmd/gosty) share: a TCP listener that counts the
// connections a confined process manages to make. It imports package
// testing, so only tests may import it, and nothing of gosty, so that
// every package's own tests can.
package confinetest

import (
	"net"
	"sync/atomic"
	"testing"
)

// Listener accepts every connection, counts it and closes it at once.
type Listener struct {
	net.Listener
	accepts atomic.Int64
}

// Listen listens on addr (host:port, port 0 for any) until the test ends.
func Listen(t testing.TB, addr string) *Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	l := &Listener{Listener: ln}
	t.Cleanup(func() { ln.Close() })
	go func() { // ends when the listener closes
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.accepts.Add(1)
			c.Close()
		}
	}()
	return l
}

// Accepts is how many connections have been accepted so far.
func (l *Listener) Accepts() int64 { return l.accepts.Load() }
