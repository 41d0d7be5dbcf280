package cluster

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Raft's own TCP transport carries no credentials, so anyone who could
// reach the raft port could append to the job log. With a cluster key every
// raft connection starts with a mutual challenge-response before raft sees
// a byte of it:
//
//	dialer   → acceptor: "GOSTYRAFT1" + 32-byte nonce c
//	acceptor → dialer:   32-byte nonce s + HMAC(k, "acceptor" | c | s)
//	dialer   → acceptor: HMAC(k, "dialer" | c | s)
//
// where k = HMAC-SHA256(cluster key, "gosty raft transport v1"). Fresh
// nonces on both sides make a recorded handshake useless, and neither side
// ever sends the key. The stream is authenticated, not encrypted: keep the
// raft port on a private network (it binds --bind-addr only).

const (
	raftAuthMagic   = "GOSTYRAFT1"
	raftAuthNonce   = 32
	raftAuthTimeout = 5 * time.Second
	// raftAuthPending bounds handshakes in progress; more are dropped at
	// once so that idle connections cannot pile up.
	raftAuthPending = 64
)

// raftAuthKey derives the transport key from the cluster key.
func raftAuthKey(clusterKey string) []byte {
	m := hmac.New(sha256.New, []byte(clusterKey))
	m.Write([]byte("gosty raft transport v1"))
	return m.Sum(nil)
}

func raftAuthMAC(key []byte, role string, c, s []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(role))
	m.Write(c)
	m.Write(s)
	return m.Sum(nil)
}

// authStream wraps a raft stream layer with the handshake.
type authStream struct {
	inner raft.StreamLayer
	key   []byte
	log   *slog.Logger

	conns   chan net.Conn
	pending chan struct{}
	done    chan struct{}
	once    sync.Once
}

func newAuthStream(inner raft.StreamLayer, clusterKey string, log *slog.Logger) *authStream {
	s := &authStream{
		inner:   inner,
		key:     raftAuthKey(clusterKey),
		log:     log,
		conns:   make(chan net.Conn),
		pending: make(chan struct{}, raftAuthPending),
		done:    make(chan struct{}),
	}
	go s.acceptLoop()
	return s
}

func (s *authStream) acceptLoop() {
	for {
		c, err := s.inner.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				s.shutdown()
				return
			}
			// Temporary trouble (out of file descriptors): back off.
			select {
			case <-s.done:
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		select {
		case s.pending <- struct{}{}:
			go s.admit(c)
		default:
			c.Close()
		}
	}
}

// admit runs the acceptor's side of the handshake and hands an
// authenticated connection to raft.
func (s *authStream) admit(c net.Conn) {
	defer func() { <-s.pending }()
	if err := s.accept(c); err != nil {
		c.Close()
		s.log.Warn("raft connection refused", "remote", c.RemoteAddr().String(), "err", err)
		return
	}
	select {
	case s.conns <- c:
	case <-s.done:
		c.Close()
	}
}

func (s *authStream) accept(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(raftAuthTimeout))
	hello := make([]byte, len(raftAuthMagic)+raftAuthNonce)
	if _, err := io.ReadFull(c, hello); err != nil {
		return fmt.Errorf("reading the handshake: %w", err)
	}
	if string(hello[:len(raftAuthMagic)]) != raftAuthMagic {
		return errors.New("not a gosty raft handshake (a peer without a cluster key, or not a peer)")
	}
	cn := hello[len(raftAuthMagic):]
	sn := make([]byte, raftAuthNonce)
	if _, err := rand.Read(sn); err != nil {
		return err
	}
	if _, err := c.Write(append(sn, raftAuthMAC(s.key, "acceptor", cn, sn)...)); err != nil {
		return fmt.Errorf("writing the handshake: %w", err)
	}
	got := make([]byte, sha256.Size)
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("reading the handshake (a peer with another cluster key?): %w", err)
	}
	if !hmac.Equal(got, raftAuthMAC(s.key, "dialer", cn, sn)) {
		return errors.New("wrong cluster key")
	}
	return c.SetDeadline(time.Time{})
}

// Accept returns the next authenticated connection.
func (s *authStream) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.done:
		return nil, net.ErrClosed
	}
}

func (s *authStream) shutdown() { s.once.Do(func() { close(s.done) }) }

// Close stops accepting.
func (s *authStream) Close() error {
	err := s.inner.Close()
	s.shutdown()
	return err
}

func (s *authStream) Addr() net.Addr { return s.inner.Addr() }

// Dial connects to a peer and runs the dialer's side of the handshake.
func (s *authStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := s.inner.Dial(addr, timeout)
	if err != nil {
		return nil, err
	}
	if err := s.dial(c, timeout); err != nil {
		c.Close()
		return nil, fmt.Errorf("raft handshake with %s: %w", addr, err)
	}
	return c, nil
}

func (s *authStream) dial(c net.Conn, timeout time.Duration) error {
	if timeout <= 0 || timeout > raftAuthTimeout {
		timeout = raftAuthTimeout
	}
	_ = c.SetDeadline(time.Now().Add(timeout))
	hello := make([]byte, len(raftAuthMagic)+raftAuthNonce)
	copy(hello, raftAuthMagic)
	cn := hello[len(raftAuthMagic):]
	if _, err := rand.Read(cn); err != nil {
		return err
	}
	if _, err := c.Write(hello); err != nil {
		return err
	}
	reply := make([]byte, raftAuthNonce+sha256.Size)
	if _, err := io.ReadFull(c, reply); err != nil {
		return fmt.Errorf("no handshake reply (a peer without a cluster key, or another key?): %w", err)
	}
	sn, mac := reply[:raftAuthNonce], reply[raftAuthNonce:]
	if !hmac.Equal(mac, raftAuthMAC(s.key, "acceptor", cn, sn)) {
		return errors.New("the peer has another cluster key")
	}
	if _, err := c.Write(raftAuthMAC(s.key, "dialer", cn, sn)); err != nil {
		return err
	}
	return c.SetDeadline(time.Time{})
}
