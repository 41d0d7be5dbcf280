package peerlink

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testCA makes a CA and issues leaf certificates of it, as cert-manager
// does (tls.crt, tls.key, ca.crt).
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue writes a leaf of ca and ca.crt under dir; it returns the paths.
func (ca *testCA) issue(t *testing.T, dir, name string, trust *testCA) (certFile, keyFile, caFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		DNSNames:  []string{name + ".gosty.default.svc"}, // not what peers dial: they dial IPs
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	d := filepath.Join(dir, name)
	if err := os.MkdirAll(d, 0o700); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, caFile = filepath.Join(d, "tls.crt"), filepath.Join(d, "tls.key"), filepath.Join(d, "ca.crt")
	for f, b := range map[string][]byte{
		certFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyFile:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
		caFile:   trust.pem,
	} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return
}

func certLink(t *testing.T, id *Identity, clusterKey string) *Link {
	t.Helper()
	return newLink(t, Internal, clusterKey, func(c *Config) { c.Identity = id })
}

// TestOperatorCertificates: with --tls-cert/--tls-key/--tls-ca peers
// verify each other's chain (dialed by IP, no name matched); a peer of
// another CA, or one with an ephemeral certificate, is refused on both
// sides, with or without a cluster key.
func TestOperatorCertificates(t *testing.T) {
	dir := t.TempDir()
	ca, other := newTestCA(t, "gosty-ca"), newTestCA(t, "other-ca")
	load := func(name string, issuer, trust *testCA) *Identity {
		cf, kf, af := issuer.issue(t, dir, name, trust)
		id, err := LoadIdentity(cf, kf, af)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !id.Verified() {
			t.Fatal("operator identity not verified")
		}
		return id
	}
	a, b := load("gosty-0", ca, ca), load("gosty-1", ca, ca)

	for _, key := range []string{"", "secret"} {
		srv := certLink(t, a, key)
		if !srv.Authenticated() {
			t.Fatal("certificates authenticate")
		}
		addr, accepted := serve(t, srv)
		c, err := certLink(t, b, key).Dialer(nil)(context.Background(), "tcp", addr)
		if err != nil {
			t.Fatalf("key %q: same CA refused: %v", key, err)
		}
		c.Close()
		waitFor(t, "accept", func() bool { return accepted.Load() == 1 })

		// A certificate of another CA: the server refuses it.
		stranger := load("stranger-"+key, other, other)
		if c, err := certLink(t, stranger, key).Dialer(nil)(context.Background(), "tcp", addr); err == nil {
			c.Close()
			t.Fatalf("key %q: another CA's certificate accepted", key)
		}
		// An ephemeral certificate (no --tls-*): refused. Without a key
		// the dialer's side may complete (in TLS 1.3 the server checks
		// the client's certificate after the client's handshake is done):
		// the server's refusal then ends the connection unread.
		if c, err := newLink(t, Internal, key, nil).Dialer(nil)(context.Background(), "tcp", addr); err == nil {
			if key != "" {
				t.Fatalf("key %q: an ephemeral certificate accepted", key)
			}
			if b := cut(t, c); len(b) != 0 {
				t.Fatalf("the server answered an ephemeral certificate: %q", b)
			}
			c.Close()
		}
		waitFor(t, "the refusals", func() bool { return rejected(t, srv, ReasonTLS) == 2 })
		if accepted.Load() != 1 {
			t.Fatalf("key %q: accepted %d", key, accepted.Load())
		}
		// The client checks the server too: a server of another CA.
		fake := certLink(t, load("fake-"+key, other, other), key)
		faddr, _ := serve(t, fake)
		if c, err := certLink(t, b, key).Dialer(nil)(context.Background(), "tcp", faddr); err == nil {
			c.Close()
			t.Fatalf("key %q: a server of another CA accepted", key)
		}
	}

	// A certificate that does not chain to its own --tls-ca: said at start.
	cf, kf, af := other.issue(t, dir, "misconfigured", ca)
	if _, err := LoadIdentity(cf, kf, af); err == nil {
		t.Fatal("a certificate of another CA than --tls-ca loaded")
	}
}
