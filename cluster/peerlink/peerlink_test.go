package peerlink

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

var quiet = slog.New(slog.DiscardHandler)

func newLink(t *testing.T, p Purpose, clusterKey string, mod func(*Config)) *Link {
	t.Helper()
	cfg := Config{Purpose: p, Key: DeriveKey(clusterKey, p), Logger: quiet, Rejected: RejectedCounter(), HandshakeTimeout: 2 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// serve listens on 127.0.0.1 through l and echoes one line per accepted
// connection; it returns the address and how many connections got through.
func serve(t *testing.T, l *Link) (string, *atomic.Int32) {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := l.Listen(raw)
	var accepted atomic.Int32
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return raw.Addr().String(), &accepted
}

func rejected(t *testing.T, l *Link, reason string) float64 {
	t.Helper()
	var m dto.Metric
	if err := l.metrics.WithLabelValues(string(l.purpose), reason).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cut reports whether the server ends c without sending anything.
func cut(t *testing.T, c net.Conn) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the server kept the connection open")
	}
	return b
}

func TestExchange(t *testing.T) {
	srv := newLink(t, Internal, "secret", nil)
	addr, accepted := serve(t, srv)
	cli := newLink(t, Internal, "secret", nil)
	c, err := cli.Dialer(nil)(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatalf("dial with the right key: %v", err)
	}
	defer c.Close()
	if cs := c.(*tls.Conn).ConnectionState(); cs.Version != tls.VersionTLS13 || cs.NegotiatedProtocol != "gosty-internal/1+mac" {
		t.Fatalf("version %x, protocol %q", cs.Version, cs.NegotiatedProtocol)
	}
	if _, err := c.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping\n" {
		t.Fatalf("echo %q %v", buf, err)
	}
	if accepted.Load() != 1 {
		t.Fatalf("accepted %d", accepted.Load())
	}
}

// TestWrongKeyCutBothWays: a dialer with another key is refused by the
// acceptor, and never gets to the application; the dialer sees no proof.
func TestWrongKeyCutBothWays(t *testing.T) {
	srv := newLink(t, Internal, "secret", nil)
	addr, accepted := serve(t, srv)
	cli := newLink(t, Internal, "other", nil)
	if c, err := cli.Dialer(nil)(context.Background(), "tcp", addr); err == nil {
		c.Close()
		t.Fatal("dial with another key succeeded")
	}
	waitFor(t, "the mac rejection", func() bool { return rejected(t, srv, ReasonMAC) == 1 })
	if accepted.Load() != 0 {
		t.Fatal("a connection with another key was accepted")
	}
	// The other way round: a server with another key never proves itself
	// to this dialer (it refuses the dialer's proof first).
	srv2 := newLink(t, Internal, "other", nil)
	addr2, _ := serve(t, srv2)
	good := newLink(t, Internal, "secret", nil)
	if c, err := good.Dialer(nil)(context.Background(), "tcp", addr2); err == nil {
		c.Close()
		t.Fatal("a server with another key was accepted")
	} else if !strings.Contains(err.Error(), "another cluster key") {
		t.Errorf("error %v", err)
	}
}

// TestRaftKeyOnInternalPort: the raft purpose's key does not open the
// internal port (and the exchange itself fails if the ALPN is bypassed).
func TestRaftKeyOnInternalPort(t *testing.T) {
	srv := newLink(t, Internal, "secret", nil)
	addr, accepted := serve(t, srv)
	// A raft link speaks another protocol name: refused in TLS.
	raftLink := newLink(t, Raft, "secret", nil)
	if c, err := raftLink.Dialer(nil)(context.Background(), "tcp", addr); err == nil {
		c.Close()
		t.Fatal("raft link accepted on the internal port")
	}
	// An internal link holding the raft key: refused by the MAC.
	forged := newLink(t, Internal, "", func(c *Config) { c.Key = DeriveKey("secret", Raft) })
	if c, err := forged.Dialer(nil)(context.Background(), "tcp", addr); err == nil {
		c.Close()
		t.Fatal("raft key accepted on the internal port")
	}
	waitFor(t, "both rejections", func() bool {
		return rejected(t, srv, ReasonTLS) == 1 && rejected(t, srv, ReasonMAC) == 1
	})
	if accepted.Load() != 0 {
		t.Fatal("accepted")
	}
}

// TestPlainHTTPGetsNoAnswer: an HTTP server behind the listener never
// answers a plain-HTTP request, and its handler never runs.
func TestPlainHTTPGetsNoAnswer(t *testing.T) {
	srv := newLink(t, Internal, "secret", nil)
	calls, addr := httpServer(t, srv)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /internal/v1/raft/status HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if b := cut(t, c); bytes.Contains(b, []byte("HTTP/")) {
		t.Fatalf("plain HTTP got an HTTP answer: %q", b)
	}
	waitFor(t, "not_tls", func() bool { return rejected(t, srv, ReasonNotTLS) == 1 })
	if calls.Load() != 0 {
		t.Fatal("the handler ran")
	}
}

func httpServer(t *testing.T, l *Link) (*atomic.Int32, string) {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		io.WriteString(w, "ok")
	})}
	ln := l.Listen(raw)
	done := make(chan struct{})
	go func() { defer close(done); _ = hs.Serve(ln) }()
	t.Cleanup(func() { hs.Close(); <-done })
	return &calls, raw.Addr().String()
}

// TestTLSWithoutSecretIsCut: a client that completes TLS but sends a
// request, or nothing, instead of the proof is cut before the handler.
func TestTLSWithoutSecretIsCut(t *testing.T) {
	srv := newLink(t, Internal, "secret", func(c *Config) { c.HandshakeTimeout = 300 * time.Millisecond })
	calls, addr := httpServer(t, srv)
	cfg := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, NextProtos: []string{"gosty-internal/1+mac"}}

	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatalf("tls: %v", err)
	}
	if _, err := io.WriteString(c, "GET /internal/v1/raft/status HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if b := cut(t, c); len(b) != 0 {
		t.Fatalf("answer %q", b)
	}
	c.Close()

	silent, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatalf("tls: %v", err)
	}
	if b := cut(t, silent); len(b) != 0 {
		t.Fatalf("answer %q", b)
	}
	silent.Close()
	waitFor(t, "rejections", func() bool {
		return rejected(t, srv, ReasonMAC) == 1 && rejected(t, srv, ReasonTimeout) == 1
	})
	if calls.Load() != 0 {
		t.Fatalf("the handler ran %d times", calls.Load())
	}

	// A TLS client offering TLS 1.2 only is refused in the handshake.
	old := &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, NextProtos: cfg.NextProtos}
	if c, err := tls.Dial("tcp", addr, old); err == nil {
		c.Close()
		t.Fatal("TLS 1.2 accepted")
	}
}

// recorder forwards one connection to target and records what the client
// sent.
type recorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *recorder) Write(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Write(b)
}

func (r *recorder) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.buf.Bytes())
}

// TestReplay: the bytes of a good dialer, recorded and replayed to a new
// connection, are refused.
func TestReplay(t *testing.T) {
	srv := newLink(t, Internal, "secret", nil)
	addr, accepted := serve(t, srv)
	proxy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	rec := &recorder{}
	go func() {
		c, err := proxy.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		up, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		defer up.Close()
		go func() { _, _ = io.Copy(c, up) }()
		_, _ = io.Copy(io.MultiWriter(up, rec), c)
	}()
	cli := newLink(t, Internal, "secret", nil)
	c, err := cli.Dialer(nil)(context.Background(), "tcp", proxy.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	recorded := rec.bytes()
	if len(recorded) == 0 || recorded[0] != 0x16 {
		t.Fatalf("the recording does not start with a TLS handshake record: % x", recorded[:min(len(recorded), 8)])
	}
	if bytes.Contains(recorded, []byte("secret")) || bytes.Contains(recorded, DeriveKey("secret", Internal)) {
		t.Fatal("the key crossed the wire")
	}
	r, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, _ = r.Write(recorded)
	cut(t, r)
	waitFor(t, "the replay's rejection", func() bool { return rejected(t, srv, ReasonTLS) == 1 })
	if accepted.Load() != 1 {
		t.Fatalf("accepted %d connections, want the original only", accepted.Load())
	}
}

// TestPerIPLimit: silent connections from one IP hold their slots; the one
// past the limit is cut at once, and a slot frees when a handshake ends.
func TestPerIPLimit(t *testing.T) {
	srv := newLink(t, Raft, "secret", func(c *Config) {
		c.Limits = Limits{PerIP: 2, Pending: 10}
		c.HandshakeTimeout = 10 * time.Second
	})
	addr, _ := serve(t, srv)
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	// The two are in their handshakes once the server accepted them; the
	// third is refused for the limit.
	waitFor(t, "a limit rejection", func() bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return rejected(t, srv, ReasonLimit) >= 1
	})
	for _, c := range held {
		c.Close()
	}
	// Slots free: a good dialer gets in again.
	cli := newLink(t, Raft, "secret", nil)
	waitFor(t, "a slot", func() bool {
		c, err := cli.Dialer(nil)(context.Background(), "tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// TestRateLimit: a source starting handshakes faster than the rate is cut.
func TestRateLimit(t *testing.T) {
	srv := newLink(t, Raft, "secret", func(c *Config) { c.Limits = Limits{Rate: 0.001, Burst: 2} })
	addr, _ := serve(t, srv)
	cli := newLink(t, Raft, "secret", nil)
	for i := range 2 {
		c, err := cli.Dialer(nil)(context.Background(), "tcp", addr)
		if err != nil {
			t.Fatalf("dial %d within the burst: %v", i, err)
		}
		c.Close()
	}
	if c, err := cli.Dialer(nil)(context.Background(), "tcp", addr); err == nil {
		c.Close()
		t.Fatal("dial past the burst succeeded")
	}
	waitFor(t, "a limit rejection", func() bool { return rejected(t, srv, ReasonLimit) == 1 })
}

// TestNoKeyModes: without a key both ends speak TLS and no exchange; a
// node with a key and one without fail in TLS, not later.
func TestNoKeyModes(t *testing.T) {
	open := newLink(t, Internal, "", nil)
	if open.Authenticated() {
		t.Fatal("no key, no certificates: not authenticated")
	}
	addr, accepted := serve(t, open)
	c, err := newLink(t, Internal, "", nil).Dialer(nil)(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatalf("open dial: %v", err)
	}
	c.Close()
	waitFor(t, "accept", func() bool { return accepted.Load() == 1 })
	if c, err := newLink(t, Internal, "secret", nil).Dialer(nil)(context.Background(), "tcp", addr); err == nil {
		c.Close()
		t.Fatal("a keyed dialer accepted an open server")
	}
	waitFor(t, "tls rejection", func() bool { return rejected(t, open, ReasonTLS) == 1 })
}

func TestDeriveKey(t *testing.T) {
	seen := map[string]Purpose{}
	for _, p := range []Purpose{Raft, Internal, Playback, Webhook} {
		k := DeriveKey("secret", p)
		if len(k) != KeySize || !bytes.Equal(k, DeriveKey("secret", p)) {
			t.Fatalf("%s: not a stable %d-byte key", p, KeySize)
		}
		if q, dup := seen[string(k)]; dup {
			t.Fatalf("%s and %s share a key", p, q)
		}
		seen[string(k)] = p
		if bytes.Equal(k, DeriveKey("other", p)) {
			t.Fatalf("%s: the key does not depend on the cluster key", p)
		}
	}
	if DeriveKey("", Raft) != nil {
		t.Fatal("no cluster key, a key")
	}
}

// TestSilentClientBlocksNobody: a connection that never speaks holds its
// own handshake slot only; a good dialer gets in meanwhile, and the silent
// one is cut at the handshake timeout.
func TestSilentClientBlocksNobody(t *testing.T) {
	srv := newLink(t, Internal, "secret", func(c *Config) { c.HandshakeTimeout = 3 * time.Second })
	addr, accepted := serve(t, srv)
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	start := time.Now()
	c, err := newLink(t, Internal, "secret", nil).Dialer(nil)(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatalf("a good dialer behind a silent one: %v", err)
	}
	c.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the good dialer waited %v behind the silent one", d)
	}
	if b := cut(t, silent); len(b) != 0 {
		t.Fatalf("the silent client got %q", b)
	}
	waitFor(t, "the timeout rejection", func() bool { return rejected(t, srv, ReasonTimeout) == 1 })
	if accepted.Load() != 1 {
		t.Fatalf("accepted %d", accepted.Load())
	}
}
