package cluster

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/gosty/gosty/cluster/peerlink"
	"github.com/hashicorp/raft"
)

// Raft's own TCP transport carries no credentials and no encryption. Every
// raft connection runs over a peerlink (TLS 1.3 and, with a cluster key,
// the session-bound exchange of the raft purpose's key; see package
// peerlink) before raft sees a byte of it.

// linkStream is raft's stream layer over a peerlink.
type linkStream struct {
	net.Listener // the link's listener: authenticated connections only
	inner        *boundStream
	link         *peerlink.Link
}

func newLinkStream(inner *boundStream, link *peerlink.Link) *linkStream {
	return &linkStream{Listener: link.Listen(inner.Listener), inner: inner, link: link}
}

// Addr is the advertised address.
func (s *linkStream) Addr() net.Addr { return s.inner.Addr() }

// Dial connects to a peer and runs the dialer's side of the link.
func (s *linkStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	raw, err := s.inner.Dial(addr, timeout)
	if err != nil {
		return nil, err
	}
	if timeout <= 0 || timeout > peerlink.DefaultHandshakeTimeout {
		timeout = peerlink.DefaultHandshakeTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := s.link.Wrap(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("raft link to %s: %w", addr, err)
	}
	return c, nil
}
