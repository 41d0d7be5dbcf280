package peerlink

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"os"
	"time"
)

// Identity is a node's TLS identity: its certificate and, for operator
// certificates, the CA that peers' certificates must chain to. An
// ephemeral identity has no CA: peers authenticate by the exchange.
type Identity struct {
	cert tls.Certificate
	ca   *x509.CertPool // nil: ephemeral, nothing verified
}

// Verified reports whether peers' certificates are verified (operator
// certificates) rather than ignored (ephemeral ones).
func (id *Identity) Verified() bool { return id != nil && id.ca != nil }

// Ephemeral makes a self-signed Ed25519 certificate for this process. It
// is never written anywhere and carries no trust.
func Ephemeral() (*Identity, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ephemeral certificate: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("ephemeral certificate: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "gosty peer (ephemeral)"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		return nil, fmt.Errorf("ephemeral certificate: %w", err)
	}
	return &Identity{cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}}, nil
}

// LoadIdentity reads operator certificates: a PEM certificate (chain) and
// key, and the PEM CA bundle that peers' certificates must chain to (as
// cert-manager writes tls.crt, tls.key and ca.crt).
func LoadIdentity(certFile, keyFile, caFile string) (*Identity, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls certificate %s, key %s: %w", certFile, keyFile, err)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("tls ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls ca %s: no PEM certificate in it", caFile)
	}
	id := &Identity{cert: cert, ca: pool}
	// Our own certificate must pass the check peers make, or no peer
	// would accept us: better said at start.
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("tls certificate %s: %w", certFile, err)
	}
	if err := id.verifyChain(leaf, parseRest(cert.Certificate[1:])); err != nil {
		return nil, fmt.Errorf("tls certificate %s does not chain to %s: %w", certFile, caFile, err)
	}
	return id, nil
}

func parseRest(ders [][]byte) []*x509.Certificate {
	var out []*x509.Certificate
	for _, d := range ders {
		if c, err := x509.ParseCertificate(d); err == nil {
			out = append(out, c)
		}
	}
	return out
}

// verifyChain checks leaf against the CA without a host name: peers are
// dialed by IP (see doc.go). The same certificate serves both ends, so any
// extended key usage is accepted.
func (id *Identity) verifyChain(leaf *x509.Certificate, inter []*x509.Certificate) error {
	pool := x509.NewCertPool()
	for _, c := range inter {
		pool.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         id.ca,
		Intermediates: pool,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	return err
}

// verifyPeer is tls.Config.VerifyConnection for operator certificates.
func (id *Identity) verifyPeer(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("the peer presented no certificate")
	}
	return id.verifyChain(cs.PeerCertificates[0], cs.PeerCertificates[1:])
}
