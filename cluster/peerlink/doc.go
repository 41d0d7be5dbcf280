// Package peerlink is the secure link between gosty nodes: raft (7947) and
// the internal API (7948) both run over it. Both ends of the protocol live
// here.
//
// # Protocol
//
// Every peer connection is TLS 1.3 (nothing older is offered or accepted),
// then, when the cluster has a key, a short exchange bound to that TLS
// session:
//
//	dialer   → acceptor: HMAC-SHA256(k, "gosty peer v1 dialer"   | EKM)
//	acceptor → dialer:   HMAC-SHA256(k, "gosty peer v1 acceptor" | EKM)
//
// EKM is 32 bytes of RFC 5705/8446 exported keying material of the session
// (label "EXPORTER-gosty-peer"), and k the key of the purpose, derived from
// the cluster key with HKDF-SHA256 (keys.go): "raft" on the raft port,
// "internal" on the internal port, so a key of one cannot open the other.
// The acceptor checks the dialer's MAC first and answers only if it is
// right; the dialer checks the answer. Only then is the connection handed
// to raft or to the HTTP server: a connection that is not TLS, fails the
// TLS handshake, sends a wrong or no MAC, or takes longer than the
// handshake timeout (5 s) is closed before a byte of it is read as a
// request.
//
// Why this is enough without certificates a peer can check: the secret
// never crosses the wire (only MACs over per-session material), the EKM of
// every session is fresh (both sides contribute randomness and an ECDHE
// share), so a recorded exchange replayed to another connection fails, and
// a man in the middle terminating TLS on both sides has two sessions with
// two different EKMs, so the MAC it relays does not verify. The TLS
// certificates in this mode are ephemeral and self-signed (cert.go), made
// at start; they carry no trust, the exchange does.
//
// # Operator certificates
//
// With --tls-cert, --tls-key and --tls-ca (cert-manager in Kubernetes)
// both ends present the certificate and verify the other's chain against
// the CA. Peers dial IP addresses learnt from gossip, not names, so the
// chain is verified without matching a host name (tls.Config's
// VerifyConnection, with InsecureSkipVerify turning off only Go's own
// name-bound check): a certificate of the CA is what makes a peer, as in
// mutual TLS between the pods of one StatefulSet. With a cluster key as
// well, the exchange runs too (defence in depth). Without a key, note that
// in TLS 1.3 the dialer's handshake completes before the acceptor has
// checked the dialer's certificate: a refused dialer learns it from the
// first read, which fails; the acceptor never hands such a connection on.
//
// # Without a key
//
// --insecure without a cluster key still speaks TLS 1.3 (ephemeral
// certificates, no exchange): encrypted against a passive listener,
// authenticated not at all. The mode is in the ALPN protocol name
// ("gosty-raft/1+mac" against "gosty-raft/1"), so a node with a key and one
// without fail in the TLS handshake rather than misreading each other.
//
// # Limits
//
// The listener (listener.go) runs each handshake in its own goroutine, off
// the accept loop, so a slow or silent client holds one slot, not the port;
// handshakes in progress are bounded in all and per source IP, and new
// handshakes per source IP can be rate limited (limit.go; the raft port
// is). Rejections are counted in gosty_peer_handshakes_rejected_total{port,
// reason} and logged at WARN with the remote IP, rate limited.
//
// Compatibility: nodes of the release before this package spoke plain TCP
// and HTTP to each other; they cannot talk to these. Upgrading needs all
// nodes restarted together.
package peerlink
