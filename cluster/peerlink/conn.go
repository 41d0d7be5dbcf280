package peerlink

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const (
	exporterLabel = "EXPORTER-gosty-peer"
	macDialer     = "gosty peer v1 dialer"
	macAcceptor   = "gosty peer v1 acceptor"
	// DefaultHandshakeTimeout bounds TLS plus the exchange on either end.
	DefaultHandshakeTimeout = 5 * time.Second
)

// ErrRefused is wrapped by the dialer's errors when TLS succeeded but the
// exchange did not: the peer has another cluster key (or none), or refused
// this node's proof. Retrying the same peer does not help.
var ErrRefused = errors.New("refused by the peer link")

// Config configures one Link: one purpose (port) of one node.
type Config struct {
	Purpose Purpose
	// Identity is the node's certificate; nil makes an ephemeral one.
	Identity *Identity
	// Key is the purpose's key (DeriveKey); nil runs no exchange:
	// --insecure without a cluster key, TLS only.
	Key []byte
	// HandshakeTimeout, zero = DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// Limits bound the listener's handshakes; zero fields take defaults.
	Limits Limits
	// Rejected counts refused handshakes ({port, reason}); nil = not
	// counted. See RejectedCounter.
	Rejected *prometheus.CounterVec
	Logger   *slog.Logger // nil = slog.Default()
}

// Link makes and accepts authenticated peer connections of one purpose.
type Link struct {
	purpose Purpose
	id      *Identity
	key     []byte
	timeout time.Duration
	limits  Limits
	server  *tls.Config
	client  *tls.Config
	metrics *prometheus.CounterVec
	log     *slog.Logger
	warn    *logLimiter
}

// New builds a Link.
func New(cfg Config) (*Link, error) {
	if cfg.Purpose == "" {
		return nil, errors.New("peerlink: no purpose")
	}
	if cfg.Key != nil && len(cfg.Key) < 16 {
		return nil, errors.New("peerlink: the key is shorter than 16 bytes")
	}
	id := cfg.Identity
	if id == nil {
		var err error
		if id, err = Ephemeral(); err != nil {
			return nil, err
		}
	}
	l := &Link{
		purpose: cfg.Purpose, id: id, key: cfg.Key, timeout: cfg.HandshakeTimeout,
		limits: cfg.Limits.withDefaults(), metrics: cfg.Rejected, log: cfg.Logger,
	}
	if l.timeout <= 0 {
		l.timeout = DefaultHandshakeTimeout
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	l.log = l.log.With("component", "peerlink", "port", string(cfg.Purpose))
	l.warn = newLogLimiter()
	proto := "gosty-" + string(cfg.Purpose) + "/1"
	if l.key != nil {
		proto += "+mac"
	}
	base := tls.Config{
		MinVersion:             tls.VersionTLS13,
		MaxVersion:             tls.VersionTLS13,
		Certificates:           []tls.Certificate{id.cert},
		NextProtos:             []string{proto},
		SessionTicketsDisabled: true, // every connection a full handshake, fresh EKM
	}
	l.server, l.client = base.Clone(), base.Clone()
	// The client's own name-bound verification is off in both modes:
	// ephemeral certificates are not verified at all (the exchange
	// authenticates), operator ones by verifyPeer (peers are dialed by IP).
	l.client.InsecureSkipVerify = true
	if id.Verified() {
		l.server.ClientAuth = tls.RequireAnyClientCert
		l.server.VerifyConnection = id.verifyPeer
		l.client.VerifyConnection = id.verifyPeer
	}
	return l, nil
}

// Purpose is the link's purpose.
func (l *Link) Purpose() Purpose { return l.purpose }

// Keyed reports whether the link runs the key exchange.
func (l *Link) Keyed() bool { return l.key != nil }

// Authenticated reports whether peers of this link are authenticated (by
// the exchange, or by certificates).
func (l *Link) Authenticated() bool { return l.key != nil || l.id.Verified() }

// Client runs the dialer's side on a fresh connection: TLS, then the
// exchange. On error the caller still owns raw and must close it. ctx
// (and the handshake timeout) bound the whole of it.
func (l *Link) Client(ctx context.Context, raw net.Conn) (*tls.Conn, error) {
	deadline := time.Now().Add(l.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = raw.SetDeadline(deadline)
	tc := tls.Client(raw, l.client)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("tls with %s peer %s: %w", l.purpose, raw.RemoteAddr(), err)
	}
	if err := l.exchange(tc, true); err != nil {
		return nil, fmt.Errorf("%s peer %s: %w", l.purpose, raw.RemoteAddr(), err)
	}
	if err := raw.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	return tc, nil
}

// rejection is why a connection was refused: the bounded reason label and
// the error.
type rejection struct {
	reason string
	err    error
}

func (r *rejection) Error() string { return r.reason + ": " + r.err.Error() }
func (r *rejection) Unwrap() error { return r.err }

// Rejection reasons (label values of gosty_peer_handshakes_rejected_total).
const (
	ReasonNotTLS  = "not_tls" // the first bytes are not a TLS record (plain HTTP, a port scan)
	ReasonTLS     = "tls"     // the TLS handshake failed (old TLS, wrong mode, bad certificate)
	ReasonMAC     = "mac"     // a wrong or missing MAC: another key, or none
	ReasonTimeout = "timeout" // no complete handshake in time
	ReasonLimit   = "limit"   // too many handshakes in progress, or too fast, from one IP or all
)

// serverSide runs the acceptor's side on an accepted connection. The error is
// a *rejection.
func (l *Link) serverSide(raw net.Conn) (*tls.Conn, error) {
	_ = raw.SetDeadline(time.Now().Add(l.timeout))
	tc := tls.Server(raw, l.server)
	if err := tc.Handshake(); err != nil {
		var rh tls.RecordHeaderError
		switch {
		case isTimeout(err):
			return nil, &rejection{ReasonTimeout, err}
		case errors.As(err, &rh):
			return nil, &rejection{ReasonNotTLS, err}
		}
		return nil, &rejection{ReasonTLS, err}
	}
	if err := l.exchange(tc, false); err != nil {
		if isTimeout(err) {
			return nil, &rejection{ReasonTimeout, err}
		}
		return nil, &rejection{ReasonMAC, err}
	}
	if err := raw.SetDeadline(time.Time{}); err != nil {
		return nil, &rejection{ReasonTLS, err}
	}
	return tc, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (l *Link) mac(role string, ekm []byte) []byte {
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte(role))
	m.Write(ekm)
	return m.Sum(nil)
}

// exchange proves both ends hold the purpose's key, bound to this TLS
// session (see doc.go). Without a key it does nothing.
func (l *Link) exchange(tc *tls.Conn, dialer bool) error {
	if l.key == nil {
		return nil
	}
	cs := tc.ConnectionState()
	ekm, err := cs.ExportKeyingMaterial(exporterLabel, nil, 32)
	if err != nil {
		return fmt.Errorf("exported keying material: %w", err)
	}
	got := make([]byte, sha256.Size)
	if dialer {
		if _, err := tc.Write(l.mac(macDialer, ekm)); err != nil {
			return fmt.Errorf("sending the proof: %w", err)
		}
		if _, err := io.ReadFull(tc, got); err != nil {
			return fmt.Errorf("%w: no proof from the peer (another cluster key?): %w", ErrRefused, err)
		}
		if !hmac.Equal(got, l.mac(macAcceptor, ekm)) {
			return fmt.Errorf("%w: the peer has another cluster key", ErrRefused)
		}
		return nil
	}
	if _, err := io.ReadFull(tc, got); err != nil {
		return fmt.Errorf("no proof from the dialer: %w", err)
	}
	if !hmac.Equal(got, l.mac(macDialer, ekm)) {
		return errors.New("wrong proof: another cluster key, or none")
	}
	if _, err := tc.Write(l.mac(macAcceptor, ekm)); err != nil {
		return fmt.Errorf("sending the proof: %w", err)
	}
	return nil
}

// reject counts, logs (rate limited) and closes a refused connection.
func (l *Link) reject(c net.Conn, err error) {
	c.Close()
	reason := ReasonTLS
	var r *rejection
	if errors.As(err, &r) {
		reason = r.reason
	}
	if l.metrics != nil {
		l.metrics.WithLabelValues(string(l.purpose), reason).Inc()
	}
	if n, ok := l.warn.allow(); ok {
		l.log.Warn("peer connection refused", "remote", remoteIP(c), "reason", reason, "err", err, "suppressed", n)
	}
}

func remoteIP(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

// RejectedCounter returns gosty_peer_handshakes_rejected_total{port,reason}
// (unregistered).
func RejectedCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gosty_peer_handshakes_rejected_total",
		Help: "Peer connections refused before raft or the internal API read a byte, by port (raft, internal) and reason (not_tls, tls, mac, timeout, limit).",
	}, []string{"port", "reason"})
}
