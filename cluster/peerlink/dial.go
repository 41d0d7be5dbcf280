package peerlink

import (
	"context"
	"net"
	"time"
)

// Dialer returns a DialContext-shaped function (http.Transport's
// DialTLSContext) that connects from local (nil = any) and runs the
// dialer's side. The connection it returns is a *tls.Conn.
func (l *Link) Dialer(local net.Addr) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: l.timeout, KeepAlive: 30 * time.Second, LocalAddr: local}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		raw, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return l.Wrap(ctx, raw)
	}
}

// Wrap runs the dialer's side on raw and closes raw if it fails.
func (l *Link) Wrap(ctx context.Context, raw net.Conn) (net.Conn, error) {
	tc, err := l.Client(ctx, raw)
	if err != nil {
		raw.Close()
		return nil, err
	}
	return tc, nil
}
