package peerlink

import (
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"
)

// listener hands out only connections that passed the handshake.
type listener struct {
	inner net.Listener
	link  *Link
	lim   *limiter
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup

	mu      sync.Mutex
	pending map[net.Conn]struct{} // closed on Close
}

// Listen wraps ln: Accept returns *tls.Conn that passed TLS and the
// exchange; everything else is closed by the listener before anyone reads
// from it. Each handshake runs in its own goroutine, under the Link's
// Limits. Close closes ln and every handshake in progress.
func (l *Link) Listen(ln net.Listener) net.Listener {
	s := &listener{
		inner: ln, link: l, lim: newLimiter(l.limits),
		conns: make(chan net.Conn), done: make(chan struct{}),
		pending: map[net.Conn]struct{}{},
	}
	s.wg.Add(1)
	go s.acceptLoop()
	return s
}

func (s *listener) acceptLoop() {
	defer s.wg.Done()
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
		ip := remoteIP(c)
		if !s.lim.admit(ip) {
			s.link.reject(c, &rejection{ReasonLimit, errors.New("too many handshakes from this address, or in all")})
			continue
		}
		if !s.track(c) {
			s.lim.release(ip)
			c.Close()
			return
		}
		s.wg.Add(1)
		go s.admit(c, ip)
	}
}

// track records a pending connection; false once closed.
func (s *listener) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == nil {
		return false
	}
	s.pending[c] = struct{}{}
	return true
}

func (s *listener) untrack(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pending, c)
}

func (s *listener) admit(c net.Conn, ip string) {
	defer s.wg.Done()
	tc, err := s.link.serverSide(c)
	s.untrack(c)
	s.lim.release(ip)
	if err != nil {
		select {
		case <-s.done:
			c.Close() // closed under us: not the peer's fault
		default:
			s.link.reject(c, err)
		}
		return
	}
	select {
	case s.conns <- &Conn{tc}:
	case <-s.done:
		tc.Close()
	}
}

// Conn is an accepted connection that passed the handshake. It is not a
// *tls.Conn on purpose: net/http's server drops a TLS connection whose
// ALPN protocol it has no handler for, and gosty's protocol names are not
// HTTP's; wrapped, the server reads HTTP/1.1 from it as from any
// connection. ConnectionState is still there.
type Conn struct{ *tls.Conn }

// Accept returns the next authenticated connection (a *Conn).
func (s *listener) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.done:
		return nil, net.ErrClosed
	}
}

func (s *listener) shutdown() {
	s.once.Do(func() {
		close(s.done)
		s.mu.Lock()
		for c := range s.pending {
			c.Close()
		}
		s.pending = nil
		s.mu.Unlock()
	})
}

// Close stops accepting and ends the handshakes in progress.
func (s *listener) Close() error {
	err := s.inner.Close()
	s.shutdown()
	s.wg.Wait()
	return err
}

func (s *listener) Addr() net.Addr { return s.inner.Addr() }
