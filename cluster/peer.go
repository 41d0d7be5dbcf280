package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gosty/gosty/cluster/peerlink"
	"github.com/gosty/gosty/cluster/peerproto"
	"github.com/prometheus/client_golang/prometheus"
)

// The client of the internal (peer-to-peer) HTTP API. Only nodes talk to
// it, on the internal port of --bind-addr; it is served by httpapi.Internal
// and called through Peers, over a peerlink (TLS 1.3, peers authenticated
// by the cluster key's session-bound exchange or by certificates, before
// any request is read: package peerlink), so requests carry no
// credentials. Its paths, headers, error codes and transfer metric are
// package peerproto's, which the server imports too.
//
// The client is in four files: this one (the client, its requests and how
// an error answer maps back to this package's errors), peertransfer.go
// (Pull and Push: moving a whole blob, verified), peerremote.go (Open: a
// seekable reader over a remote blob) and peercontrol.go (the control
// calls to the leader: propose, join, remove, heartbeat, progress, and a
// node's raft status). relay.go and stream.go add the relayed upload and
// the streamed copy.

// PeerConfig configures the client of the internal API.
type PeerConfig struct {
	// Link carries every connection (https:// over the internal purpose's
	// peerlink). A node always sets it; nil speaks plain HTTP, for tests
	// of the HTTP layer against httptest servers. Ignored with Client.
	Link     *peerlink.Link
	Blobs    *BlobStore
	Registry prometheus.Registerer // gosty_transfer_bytes_total; nil = not exported
	Logger   *slog.Logger          // nil = slog.Default()
	// Client is nil for a client with dial (5s) and response-header (30s)
	// timeouts, no proxy and no overall timeout (bodies are large); relayed
	// upload PATCHes then use a copy without the response-header timeout.
	// A given Client serves both.
	Client *http.Client
	// BindAddr is the IP peer connections are made from ("" = any).
	BindAddr string
	// OnAbsent, when set, is told of every holder (by internal address)
	// that answered it does not have a blob the caller was told it holds,
	// so that the log's claim can be corrected.
	OnAbsent func(ref BlobRef, holder string)
}

// Peers is the client side of the internal API.
type Peers struct {
	scheme   string // "https" over a peerlink, "http" without one (tests)
	blobs    *BlobStore
	log      *slog.Logger
	client   *http.Client
	relay    *http.Client // relayed upload PATCHes: no response-header timeout (relay.go)
	transfer *prometheus.CounterVec
	onAbsent func(ref BlobRef, holder string)

	mu      sync.Mutex
	pulling map[string]*pullCall // one pull per blob at a time
}

// localAddr is where peer connections come from: the bind IP when it is
// specific, like gossip and raft.
func (c PeerConfig) localAddr() net.Addr {
	if ip := net.ParseIP(c.BindAddr); ip != nil && !ip.IsUnspecified() {
		return &net.TCPAddr{IP: ip}
	}
	return nil
}

// NewPeers builds the client.
func NewPeers(cfg PeerConfig) *Peers {
	p := &Peers{
		scheme:   "http",
		blobs:    cfg.Blobs,
		log:      cfg.Logger,
		client:   cfg.Client,
		transfer: peerproto.TransferBytes(cfg.Registry),
		onAbsent: cfg.OnAbsent,
		pulling:  map[string]*pullCall{},
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	p.relay = p.client
	if p.client == nil {
		t := &http.Transport{
			Proxy:                 nil, // peer traffic never goes through HTTP_PROXY
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, LocalAddr: cfg.localAddr()}).DialContext,
			ForceAttemptHTTP2:     false, // HTTP/1.1 over the link
			ResponseHeaderTimeout: 30 * time.Second,
			ExpectContinueTimeout: 2 * time.Second, // Push: a peer that has the blob answers before the body
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   16,
			DisableCompression:    true,
		}
		if cfg.Link != nil {
			// https:// requests go through DialTLSContext, which returns
			// a connection that passed TLS and the exchange.
			t.DialTLSContext = cfg.Link.Dialer(cfg.localAddr())
			p.scheme = "https"
		}
		p.client = &http.Client{Transport: t}
		// A relayed PATCH is answered after its last byte is stored and,
		// for the last one, after the job is committed: as long as that
		// takes (the relaying node watches the bytes flow instead).
		rt := t.Clone()
		rt.ResponseHeaderTimeout = 0
		p.relay = &http.Client{Transport: rt}
	}
	return p
}

func (p *Peers) url(addr, path string) string {
	return p.scheme + "://" + addr + peerproto.Prefix + path
}

func (p *Peers) newRequest(ctx context.Context, method, addr, path, reason string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, p.url(addr, path), body)
	if err != nil {
		return nil, err
	}
	req.Header.Set(peerproto.HeaderReason, peerproto.TransferReason(reason))
	return req, nil
}

// PeerError is an error answer of the internal API that maps to no cluster
// error.
type PeerError struct {
	Status  int
	Code    string
	Message string
}

func (e *PeerError) Error() string {
	return fmt.Sprintf("peer answered %d %s: %s", e.Status, e.Code, e.Message)
}

// remoteError is a cluster error that a peer reported: its message is the
// peer's own words, and it matches the sentinel.
type remoteError struct {
	msg      string
	sentinel error
}

func (e remoteError) Error() string { return e.msg }
func (e remoteError) Unwrap() error { return e.sentinel }

// errorCodes maps the internal API's error codes to cluster errors.
var errorCodes = map[string]error{
	peerproto.CodeNotLeader:        ErrNotLeader,
	peerproto.CodeStale:            ErrStale,
	peerproto.CodeConflict:         ErrConflict,
	peerproto.CodeNotFound:         ErrNotFound,
	peerproto.CodeInvalid:          ErrInvalid,
	peerproto.CodeChecksumMismatch: ErrInvalid,
	peerproto.CodeTooLarge:         ErrInvalid,
	// The receiver's data volume has no room above its reserves: the
	// sender tries another node.
	peerproto.CodeInsufficientStorage: ErrNoSpace,
}

// responseError turns a non-2xx answer into an error: the cluster error of
// its code, or a *PeerError.
func responseError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb peerproto.ErrorBody
	code, msg := "", strings.TrimSpace(string(b))
	if json.Unmarshal(b, &eb) == nil && eb.Error.Code != "" {
		code, msg = eb.Error.Code, eb.Error.Message
	}
	if resp.StatusCode == http.StatusNotFound && code == "" {
		code = peerproto.CodeNotFound
	}
	if sentinel, ok := errorCodes[code]; ok {
		if !strings.Contains(msg, sentinel.Error()) {
			msg = sentinel.Error() + ": " + msg
		}
		return remoteError{msg: msg, sentinel: sentinel}
	}
	if code == "" {
		code = strings.ToLower(strings.ReplaceAll(http.StatusText(resp.StatusCode), " ", "_"))
	}
	if len(msg) > 512 {
		msg = msg[:512] + "..."
	}
	return &PeerError{Status: resp.StatusCode, Code: code, Message: msg}
}
