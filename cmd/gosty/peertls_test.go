//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gosty/gosty/cluster/peerlink"
	"github.com/gosty/gosty/cluster/peerlink/peerlinktest"
	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/node/nodetest"
)

// Loopback subnet 127.0.111.x: TestPeerTrafficEncrypted.

// flowKey is one direction of a TCP connection.
type flowKey struct {
	src, dst netip4port
}

type netip4port struct {
	ip   [4]byte
	port uint16
}

func (a netip4port) String() string {
	return fmt.Sprintf("%d.%d.%d.%d:%d", a.ip[0], a.ip[1], a.ip[2], a.ip[3], a.port)
}

// maxFlowBytes is how much of each direction the capture keeps.
const maxFlowBytes = 8 << 20

// capture records the TCP payload of every packet on the loopback
// interface between addresses of one /24 to or from the given ports: a
// packet capture (AF_PACKET, as tcpdump does; it needs CAP_NET_RAW) of what
// really crosses the wire between node processes, with no proxy in the
// way that could change what they send.
type capture struct {
	fd    int
	net   [3]byte
	ports map[uint16]bool

	mu    sync.Mutex
	flows map[flowKey]*bytes.Buffer
	total map[flowKey]int
	order []flowKey

	stop chan struct{}
	done chan struct{}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func startCapture(t *testing.T, subnet [3]byte, ports ...uint16) *capture {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, int(htons(syscall.ETH_P_ALL)))
	if err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
			t.Skipf("packet capture needs CAP_NET_RAW: %v", err)
		}
		t.Fatal(err)
	}
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrLinklayer{Protocol: htons(syscall.ETH_P_ALL), Ifindex: lo.Index}); err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, 32<<20)
	_ = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &syscall.Timeval{Usec: 100000})
	c := &capture{fd: fd, net: subnet, ports: map[uint16]bool{}, flows: map[flowKey]*bytes.Buffer{}, total: map[flowKey]int{},
		stop: make(chan struct{}), done: make(chan struct{})}
	for _, p := range ports {
		c.ports[p] = true
	}
	go c.run()
	t.Cleanup(c.Stop)
	return c
}

func (c *capture) run() {
	defer close(c.done)
	defer syscall.Close(c.fd)
	buf := make([]byte, 256<<10)
	for {
		select {
		case <-c.stop:
			return
		default:
		}
		n, from, err := syscall.Recvfrom(c.fd, buf, 0)
		if err != nil {
			continue // the receive timeout: look at stop again
		}
		if ll, ok := from.(*syscall.SockaddrLinklayer); ok && ll.Pkttype == syscall.PACKET_OUTGOING {
			continue // loopback shows each packet twice: keep the incoming copy
		}
		c.packet(buf[:n])
	}
}

// packet parses Ethernet (loopback's is zeros), IPv4 and TCP.
func (c *capture) packet(b []byte) {
	if len(b) < 14+20 || binary.BigEndian.Uint16(b[12:14]) != 0x0800 {
		return
	}
	ip := b[14:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[0]>>4 != 4 || ip[9] != 6 || len(ip) < ihl+20 {
		return
	}
	tot := int(binary.BigEndian.Uint16(ip[2:4]))
	if tot > len(ip) || tot < ihl+20 {
		tot = len(ip)
	}
	var k flowKey
	copy(k.src.ip[:], ip[12:16])
	copy(k.dst.ip[:], ip[16:20])
	if !bytes.Equal(k.src.ip[:3], c.net[:]) || !bytes.Equal(k.dst.ip[:3], c.net[:]) {
		return
	}
	tcp := ip[ihl:tot]
	k.src.port = binary.BigEndian.Uint16(tcp[0:2])
	k.dst.port = binary.BigEndian.Uint16(tcp[2:4])
	if !c.ports[k.src.port] && !c.ports[k.dst.port] {
		return
	}
	off := int(tcp[12]>>4) * 4
	if off > len(tcp) {
		return
	}
	payload := tcp[off:]
	if len(payload) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.flows[k]
	if f == nil {
		f = &bytes.Buffer{}
		c.flows[k] = f
		c.order = append(c.order, k)
	}
	c.total[k] += len(payload)
	if f.Len() < maxFlowBytes {
		f.Write(payload[:min(len(payload), maxFlowBytes-f.Len())])
	}
}

// Stop ends the capture (idempotent).
func (c *capture) Stop() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
}

// TestPeerTrafficEncrypted runs a job on a 3-node cluster with a cluster
// key while capturing every byte on the raft (7947) and internal (7948)
// ports between the nodes, and checks what crossed the wire: every stream
// starts with a TLS handshake record, and neither the cluster key, nor any
// key derived from it, nor an Authorization header, nor any HTTP/1.1 or
// internal route in plain text appears. Then, from outside: a plain HTTP
// request to the internal port gets no HTTP answer, a TLS client without
// the secret is cut without an answer, and both are counted as refused;
// a client with the secret is served.
func TestPeerTrafficEncrypted(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node processes and ffmpeg")
	}
	wire := startCapture(t, [3]byte{127, 0, byte(e2e.MovedSubnet(t, 111))}, 7947, 7948)
	c := e2e.FastCluster(t, 111, 3, "--slots", "1", "--replicas", "2", "--preset", "ultrafast")
	c.StartAll(t, 3)
	v := c.Agree(t, []int{0, 1, 2}, 3, 3)
	follower := c.Follower(v)
	src := filepath.Join(t.TempDir(), "clip.mp4")
	nodetest.AVClip(t, src, "320x180", 6)
	id := e2e.Upload(t, c.HTTP(follower), src, `{"chunk_seconds":2}`)
	e2e.WaitDone(t, 3*time.Minute, "", id, c.HTTP(follower))
	wire.Stop()

	forbidden := map[string][]byte{
		"the cluster key":      []byte(e2e.ClusterKey),
		"an Authorization":     []byte("Authorization"),
		"plain HTTP/1.1":       []byte("HTTP/1.1"),
		"an internal route":    []byte("/internal/v1"),
		"the cluster key, hex": []byte(hex.EncodeToString([]byte(e2e.ClusterKey))),
	}
	for _, p := range []peerlink.Purpose{peerlink.Raft, peerlink.Internal, peerlink.Playback, peerlink.Webhook} {
		k := peerlink.DeriveKey(e2e.ClusterKey, p)
		forbidden["the "+string(p)+" key"] = k
		forbidden["the "+string(p)+" key, hex"] = []byte(hex.EncodeToString(k))
	}
	perPort := map[uint16]int{}
	flows := 0
	for _, k := range wire.order {
		b := wire.flows[k].Bytes()
		flows++
		port := k.dst.port
		if !wire.ports[port] {
			port = k.src.port
		}
		perPort[port] += wire.total[k]
		if len(b) < 5 || b[0] != 0x16 || b[1] != 0x03 {
			t.Errorf("%s → %s does not start with a TLS handshake record: % x", k.src, k.dst, b[:min(len(b), 16)])
		}
		for what, s := range forbidden {
			if i := bytes.Index(b, s); i >= 0 {
				t.Errorf("%s → %s carries %s at byte %d", k.src, k.dst, what, i)
			}
		}
	}
	t.Logf("captured %d one-way streams: %d bytes on the raft port, %d on the internal port", flows, perPort[7947], perPort[7948])
	// The capture saw the traffic: raft's and the blobs' (the clip moved
	// between nodes for the tasks and the replicas).
	if perPort[7947] < 1000 || perPort[7948] < 100000 {
		t.Fatalf("the capture missed the peer traffic: raft %d bytes, internal %d", perPort[7947], perPort[7948])
	}

	internal := net.JoinHostPort(c.IP(0), "7948")
	// Plain HTTP, with the cluster key as a bearer token: no HTTP answer.
	raw, err := net.DialTimeout("tcp", internal, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(raw, "GET /internal/v1/raft/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", e2e.ClusterKey)
	_ = raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(raw)
	raw.Close()
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("plain HTTP: the node kept the connection open")
	}
	if bytes.Contains(got, []byte("HTTP/")) {
		t.Fatalf("plain HTTP got an HTTP answer: %q", got)
	}
	// TLS without the secret (the protocol name right, no proof): cut,
	// no answer.
	tc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", internal,
		&tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, NextProtos: []string{"gosty-internal/1+mac"}})
	if err != nil {
		t.Fatalf("TLS to the internal port: %v", err)
	}
	fmt.Fprintf(tc, "GET /internal/v1/raft/status HTTP/1.1\r\nHost: x\r\n\r\n")
	_ = tc.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err = io.ReadAll(tc)
	tc.Close()
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("TLS without the secret: the node kept the connection open")
	}
	if len(got) != 0 {
		t.Fatalf("TLS without the secret got an answer: %q", got)
	}
	// Another key: refused too.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "https://"+internal+"/internal/v1/raft/status", nil)
	if resp, err := peerlinktest.Client(t, "not-the-key").Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("another key answered %d", resp.StatusCode)
	}
	// The secret: served (the checks above can fail for the right reason).
	req, _ = http.NewRequestWithContext(ctx, "GET", "https://"+internal+"/internal/v1/raft/status", nil)
	resp, err := peerlinktest.Client(t, e2e.ClusterKey).Do(req)
	if err != nil {
		t.Fatalf("a peer with the key: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a peer with the key: %d", resp.StatusCode)
	}
	nodetest.WaitFor(t, 10*time.Second, "the refusals in /metrics", func() bool {
		m := e2e.Metrics(t, c.HTTP(0))
		for _, reason := range []string{"not_tls", "mac"} {
			if !strings.Contains(m, `gosty_peer_handshakes_rejected_total{port="internal",reason="`+reason+`"}`) {
				return false
			}
		}
		return true
	})
}

// writeTestCerts writes a CA and one certificate it issued (as
// cert-manager's Secret holds them: tls.crt, tls.key, ca.crt) under dir.
func writeTestCerts(t *testing.T, dir string) (certFile, keyFile, caFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gosty test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "gosty"},
		DNSNames: []string{"*.gosty.default.svc.cluster.local"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, caFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "ca.crt")
	for f, b := range map[string][]byte{
		certFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyFile:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
		caFile:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
	} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile, caFile
}

// TestPeerCertificates runs three nodes with operator certificates
// (--tls-cert/--tls-key/--tls-ca, one certificate for all, its names not
// the IPs peers dial): they form a cluster, and a client with the cluster
// key but without a certificate of the CA is refused.
func TestPeerCertificates(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node processes")
	}
	certFile, keyFile, caFile := writeTestCerts(t, t.TempDir())
	c := e2e.New(t, e2e.Opts{Subnet: 111, First: 21, Size: 3, Fast: true},
		"--tls-cert", certFile, "--tls-key", keyFile, "--tls-ca", caFile)
	c.StartAll(t, 3)
	c.Agree(t, []int{0, 1, 2}, 3, 3)
	internal := "https://" + net.JoinHostPort(c.IP(0), "7948") + "/internal/v1/raft/status"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", internal, nil)
	if resp, err := peerlinktest.Client(t, e2e.ClusterKey).Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the cluster key without a certificate of the CA answered %d", resp.StatusCode)
	}
	nodetest.WaitFor(t, 10*time.Second, "the refusal in /metrics", func() bool {
		return strings.Contains(e2e.Metrics(t, c.HTTP(0)), `gosty_peer_handshakes_rejected_total{port="internal",reason="tls"}`)
	})
}
