package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	stdhash "hash"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
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

// JoinRequest asks the leader to add a node to raft (as a non-voter).
type JoinRequest struct {
	Name string `json:"name"`
	ID   string `json:"id"`
	Addr string `json:"addr"` // raft host:port
	// No field may be added: nodes of the previous release decode join
	// requests strictly. What else the leader needs to know of a joining
	// node (the log version it reads) comes from gossip.
}

// RaftStatus is one node's view of raft.
type RaftStatus struct {
	HasState   bool   `json:"has_state"`
	Leader     string `json:"leader"` // raft ID, "" if none
	LeaderAddr string `json:"leader_addr"`
	Term       uint64 `json:"term"`
	ID         string `json:"id"`
}

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

type pullCall struct {
	done chan struct{}
	err  error
}

// maxPullAttempts bounds the GETs one Pull makes (answers "not here" from a
// holder do not count: each holder gives at most one).
const maxPullAttempts = 5

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

// Pull makes the blob local. If the blob is already stored it only
// refreshes it (as a store of the same bytes does); otherwise it tries each
// holder (internal host:port) in order, streaming a GET into a temp file.
// An interrupted body is resumed with a Range request
// from the bytes already written (same holder, then the next), up to 5
// attempts in all. Size and sha256 are verified before the blob is
// installed. The error wraps ErrNotFound when no holder has the blob, and
// ErrInvalid when the bytes did not match ref. Concurrent pulls of one blob
// share the work.
func (p *Peers) Pull(ctx context.Context, ref BlobRef, holders []string, reason string) error {
	if !ValidHash(ref.Hash) || ref.Size < 0 {
		return fmt.Errorf("pull %s from %v: %w: not a valid blob ref", ref.Hash, holders, ErrInvalid)
	}
	for {
		// Already here: stored again, as far as the collector is concerned.
		if present, err := p.blobs.refresh(ref.Hash); present || err != nil {
			return err
		}
		p.mu.Lock()
		call, busy := p.pulling[ref.Hash]
		if !busy {
			call = &pullCall{done: make(chan struct{})}
			p.pulling[ref.Hash] = call
		}
		p.mu.Unlock()
		if !busy {
			call.err = p.pull(ctx, ref, holders, reason)
			p.mu.Lock()
			delete(p.pulling, ref.Hash)
			p.mu.Unlock()
			close(call.done)
			return call.err
		}
		select {
		case <-call.done:
		case <-ctx.Done():
			return fmt.Errorf("pull %s from %v: %w", ref.Hash, holders, ctx.Err())
		}
		// The other pull ended; if it failed only because its caller gave
		// up, try again ourselves.
		if call.err == nil || !(errors.Is(call.err, context.Canceled) || errors.Is(call.err, context.DeadlineExceeded)) {
			return call.err
		}
	}
}

// partial is a pull in progress: a temp file and the running hash of what
// it holds.
type partial struct {
	f *os.File
	w io.Writer // f, admitted by the blob store's Space
	h stdhash.Hash
	n int64
}

func (pt *partial) Write(b []byte) (int, error) {
	n, err := pt.w.Write(b)
	pt.h.Write(b[:n])
	pt.n += int64(n)
	return n, err
}

func (pt *partial) reset() error {
	if _, err := pt.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := pt.f.Truncate(0); err != nil {
		return err
	}
	pt.h.Reset()
	pt.n = 0
	return nil
}

func (p *Peers) pull(ctx context.Context, ref BlobRef, holders []string, reason string) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("pull %s from %v: %w", ref.Hash, holders, err)
		}
	}()
	if len(holders) == 0 {
		return fmt.Errorf("%w: no holder", ErrNotFound)
	}
	if err := p.blobs.Admit(ref.Size); err != nil {
		return err
	}
	f, err := os.CreateTemp(p.blobs.TempDir(), "pull-*")
	if err != nil {
		return err
	}
	defer func() {
		if f != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	pt := &partial{f: f, w: p.blobs.guard(f), h: sha256.New()}
	counter := p.transfer.WithLabelValues(peerproto.DirectionIn, peerproto.TransferReason(reason))

	var (
		errs     []error
		i        int // current holder
		attempts int
		absent   = make([]bool, len(holders))
		lied     = make([]bool, len(holders))
	)
	next := func() bool { // move to the next holder that may still help
		for range holders {
			i = (i + 1) % len(holders)
			if !absent[i] && !lied[i] {
				return true
			}
		}
		return false
	}
	for attempts < maxPullAttempts {
		if err := ctx.Err(); err != nil {
			return err
		}
		if absent[i] || lied[i] {
			if !next() {
				break
			}
		}
		holder := holders[i]
		before := pt.n
		attempts++
		status, gerr := p.fetch(ctx, ref, holder, reason, pt, counter)
		switch {
		case gerr == nil && pt.n == ref.Size:
			if got := hex.EncodeToString(pt.h.Sum(nil)); got != ref.Hash {
				// Whoever sent the bytes, they are wrong; start over from
				// another holder (the last one is the likeliest liar).
				lied[i] = true
				errs = append(errs, fmt.Errorf("%s: %w: checksum mismatch (content hashes to %s)", holder, ErrInvalid, got))
				if rerr := pt.reset(); rerr != nil {
					return rerr
				}
				continue
			}
			if err := f.Sync(); err != nil {
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			name := f.Name()
			f = nil
			if err := p.blobs.install(name, ref.Hash); err != nil {
				os.Remove(name)
				return err
			}
			return nil
		case gerr == nil:
			gerr = fmt.Errorf("%w: body ended at byte %d of %d", io.ErrUnexpectedEOF, pt.n, ref.Size)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if IsNoSpace(gerr) {
			return gerr // no room here: another holder will not help
		}
		errs = append(errs, fmt.Errorf("%s: %w", holder, gerr))
		switch {
		case status == http.StatusNotFound:
			absent[i] = true
			attempts-- // a holder that does not have it costs no attempt
			if p.onAbsent != nil {
				p.onAbsent(ref, holder)
			}
		case errors.Is(gerr, ErrInvalid):
			lied[i] = true
			if rerr := pt.reset(); rerr != nil {
				return rerr
			}
		case pt.n > before:
			// Progress, then a cut: resume from the same holder.
			p.log.Debug("blob pull interrupted; resuming", "blob", ref.Hash, "holder", holder,
				"offset", pt.n, "size", ref.Size, "err", gerr)
			continue
		default:
			next()
		}
		if attempts < maxPullAttempts {
			if err := sleepCtx(ctx, time.Duration(attempts)*100*time.Millisecond); err != nil {
				return err
			}
		}
	}
	allAbsent := true
	for _, a := range absent {
		allAbsent = allAbsent && a
	}
	if allAbsent {
		return fmt.Errorf("%w: no holder has the blob", ErrNotFound)
	}
	return errors.Join(errs...)
}

// fetch makes one GET for the bytes pt lacks and appends what arrives. It
// returns the response status (0 if none) and the first error.
func (p *Peers) fetch(ctx context.Context, ref BlobRef, holder, reason string, pt *partial, counter prometheus.Counter) (int, error) {
	if pt.n == ref.Size && ref.Size > 0 {
		return 0, nil
	}
	req, err := p.newRequest(ctx, http.MethodGet, holder, peerproto.PathBlob+ref.Hash, reason, nil)
	if err != nil {
		return 0, err
	}
	if pt.n > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(pt.n, 10)+"-")
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && pt.n > 0:
		start, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != pt.n || total != ref.Size {
			return resp.StatusCode, fmt.Errorf("%w: unexpected Content-Range %q for offset %d of %d",
				ErrInvalid, resp.Header.Get("Content-Range"), pt.n, ref.Size)
		}
	case resp.StatusCode == http.StatusOK:
		if pt.n > 0 { // the holder ignored the Range: take it all again
			if err := pt.reset(); err != nil {
				return resp.StatusCode, err
			}
		}
		if resp.ContentLength >= 0 && resp.ContentLength != ref.Size {
			return resp.StatusCode, fmt.Errorf("%w: holder sends %d bytes, want %d", ErrInvalid, resp.ContentLength, ref.Size)
		}
	default:
		return resp.StatusCode, responseError(resp)
	}
	left := ref.Size - pt.n
	n, err := io.Copy(pt, peerproto.CountingReader{R: io.LimitReader(resp.Body, left+1), C: counter})
	if err != nil {
		return resp.StatusCode, err
	}
	if n > left {
		return resp.StatusCode, fmt.Errorf("%w: holder sends more than %d bytes", ErrInvalid, ref.Size)
	}
	return resp.StatusCode, nil
}

// parseContentRange parses "bytes start-end/total".
func parseContentRange(s string) (start, total int64, ok bool) {
	rest, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	first, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	var err1, err2 error
	start, err1 = strconv.ParseInt(first, 10, 64)
	total, err2 = strconv.ParseInt(tot, 10, 64)
	return start, total, err1 == nil && err2 == nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Push sends a local blob to a peer that lacks it (PUT); the peer verifies
// it. An error wraps ErrInvalid when the peer refused the bytes. A peer that
// already has the blob answers before the body is sent (Expect:
// 100-continue), so pushing to it costs a round trip, not the bytes.
func (p *Peers) Push(ctx context.Context, ref BlobRef, to string, reason string) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("push %s to %s: %w", ref.Hash, to, err)
		}
	}()
	if !ValidHash(ref.Hash) || ref.Size < 0 {
		return fmt.Errorf("%w: not a valid blob ref", ErrInvalid)
	}
	f, err := p.blobs.Open(ref.Hash)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() != ref.Size {
		return fmt.Errorf("%w: local copy has %d bytes, ref says %d", ErrInvalid, fi.Size(), ref.Size)
	}
	counter := p.transfer.WithLabelValues(peerproto.DirectionOut, peerproto.TransferReason(reason))
	req, err := p.newRequest(ctx, http.MethodPut, to, peerproto.PathBlob+ref.Hash, reason,
		io.NopCloser(peerproto.CountingReader{R: f, C: counter}))
	if err != nil {
		return err
	}
	req.ContentLength = ref.Size
	if ref.Size == 0 {
		req.Body = http.NoBody
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set(peerproto.HeaderSize, strconv.FormatInt(ref.Size, 10))
	if ref.Size > 0 {
		// The receiver answers at once, without the body, if it already
		// has the blob.
		req.Header.Set("Expect", "100-continue")
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil
	}
	return responseError(resp)
}

// Open returns a seekable reader over a remote blob without storing it.
// Seek only records the offset; the next Read opens a GET with
// "Range: bytes=off-" to the first holder that answers (and reopens, from
// the next holder, if a body breaks). The bytes are not verified: a reader
// that starts anywhere cannot hash the whole. Not safe for concurrent use.
func (p *Peers) Open(ctx context.Context, ref BlobRef, holders []string) (io.ReadSeekCloser, error) {
	if !ValidHash(ref.Hash) || ref.Size < 0 {
		return nil, fmt.Errorf("open remote blob %s: %w: not a valid blob ref", ref.Hash, ErrInvalid)
	}
	if len(holders) == 0 {
		return nil, fmt.Errorf("open remote blob %s: %w: no holder", ref.Hash, ErrNotFound)
	}
	return &remoteBlob{
		p: p, ctx: ctx, ref: ref, holders: append([]string(nil), holders...),
		counter: p.transfer.WithLabelValues(peerproto.DirectionIn, peerproto.ReasonServe),
	}, nil
}

type remoteBlob struct {
	p       *Peers
	ctx     context.Context
	ref     BlobRef
	holders []string
	counter prometheus.Counter

	off     int64
	body    io.ReadCloser
	next    int // holder to try first when (re)opening
	retries int // reopenings since the last successful read
	closed  bool
}

const maxRemoteReopen = 3

func (r *remoteBlob) Read(b []byte) (int, error) {
	if r.closed {
		return 0, os.ErrClosed
	}
	if r.off >= r.ref.Size {
		return 0, io.EOF
	}
	if len(b) == 0 {
		return 0, nil
	}
	for {
		if r.body == nil {
			if err := r.open(); err != nil {
				return 0, err
			}
		}
		if left := r.ref.Size - r.off; int64(len(b)) > left {
			b = b[:left]
		}
		n, err := r.body.Read(b)
		r.off += int64(n)
		if n > 0 {
			r.counter.Add(float64(n))
			r.retries = 0
		}
		if err == nil || r.off >= r.ref.Size {
			if r.off >= r.ref.Size {
				r.dropBody()
			}
			return n, nil
		}
		// The body ended or broke before the blob's end.
		r.dropBody()
		if n > 0 {
			return n, nil // reopen at the next Read
		}
		if cerr := r.ctx.Err(); cerr != nil {
			return 0, cerr
		}
		r.retries++
		if r.retries > maxRemoteReopen {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, fmt.Errorf("read remote blob %s at %d: %w", r.ref.Hash, r.off, err)
		}
		r.next = (r.next + 1) % len(r.holders)
	}
}

// open starts a GET at r.off from the first holder that answers.
func (r *remoteBlob) open() error {
	var errs []error
	absent := 0
	for k := range r.holders {
		i := (r.next + k) % len(r.holders)
		body, status, err := r.get(r.holders[i])
		if err == nil {
			r.body, r.next = body, i
			return nil
		}
		if cerr := r.ctx.Err(); cerr != nil {
			return cerr
		}
		if status == http.StatusNotFound {
			absent++
		}
		errs = append(errs, fmt.Errorf("%s: %w", r.holders[i], err))
	}
	if absent == len(r.holders) {
		return fmt.Errorf("open remote blob %s: %w: no holder has it", r.ref.Hash, ErrNotFound)
	}
	return fmt.Errorf("open remote blob %s at %d: %w", r.ref.Hash, r.off, errors.Join(errs...))
}

func (r *remoteBlob) get(holder string) (io.ReadCloser, int, error) {
	req, err := r.p.newRequest(r.ctx, http.MethodGet, holder, peerproto.PathBlob+r.ref.Hash, peerproto.ReasonServe, nil)
	if err != nil {
		return nil, 0, err
	}
	if r.off > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(r.off, 10)+"-")
	}
	resp, err := r.p.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	switch {
	case resp.StatusCode == http.StatusOK && r.off == 0:
		if resp.ContentLength >= 0 && resp.ContentLength != r.ref.Size {
			resp.Body.Close()
			return nil, resp.StatusCode, fmt.Errorf("%w: holder sends %d bytes, want %d", ErrInvalid, resp.ContentLength, r.ref.Size)
		}
		return resp.Body, resp.StatusCode, nil
	case resp.StatusCode == http.StatusPartialContent:
		start, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != r.off || total != r.ref.Size {
			resp.Body.Close()
			return nil, resp.StatusCode, fmt.Errorf("%w: unexpected Content-Range %q", ErrInvalid, resp.Header.Get("Content-Range"))
		}
		return resp.Body, resp.StatusCode, nil
	case resp.StatusCode == http.StatusOK:
		resp.Body.Close()
		return nil, resp.StatusCode, errors.New("holder ignored the Range header")
	}
	defer resp.Body.Close()
	return nil, resp.StatusCode, responseError(resp)
}

func (r *remoteBlob) dropBody() {
	if r.body != nil {
		r.body.Close()
		r.body = nil
	}
}

func (r *remoteBlob) Seek(offset int64, whence int) (int64, error) {
	if r.closed {
		return 0, os.ErrClosed
	}
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.off + offset
	case io.SeekEnd:
		abs = r.ref.Size + offset
	default:
		return 0, errors.New("seek: invalid whence")
	}
	if abs < 0 {
		return 0, errors.New("seek: negative position")
	}
	if abs != r.off {
		r.dropBody()
		r.off = abs
	}
	return abs, nil
}

func (r *remoteBlob) Close() error {
	r.dropBody()
	r.closed = true
	return nil
}

// Propose forwards an encoded command to the leader's internal address and
// returns the log index it was applied at. The leader's verdict comes back
// as the matching cluster error (ErrNotLeader, ErrStale, ErrConflict,
// ErrNotFound, ErrInvalid) with the leader's message.
func (p *Peers) Propose(ctx context.Context, leader string, cmd []byte) (uint64, error) {
	req, err := p.newRequest(ctx, http.MethodPost, leader, peerproto.PathPropose, peerproto.ReasonOther, bytes.NewReader(cmd))
	if err != nil {
		return 0, fmt.Errorf("propose to %s: %w", leader, err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	var out struct {
		Index uint64 `json:"index"`
	}
	if err := p.doJSON(req, &out); err != nil {
		return 0, fmt.Errorf("propose to %s: %w", leader, err)
	}
	return out.Index, nil
}

// Join asks the leader to add a node to raft.
func (p *Peers) Join(ctx context.Context, leader string, jr JoinRequest) error {
	if err := p.postJSON(ctx, leader, peerproto.PathJoin, jr); err != nil {
		return fmt.Errorf("join via %s: %w", leader, err)
	}
	return nil
}

// Remove asks the leader to take a departing server out of raft.
func (p *Peers) Remove(ctx context.Context, leader string, req RemoveRequest) error {
	if err := p.postJSON(ctx, leader, peerproto.PathRemove, req); err != nil {
		return fmt.Errorf("remove via %s: %w", leader, err)
	}
	return nil
}

// Heartbeat sends a worker's heartbeat to the leader.
func (p *Peers) Heartbeat(ctx context.Context, leader string, hb Heartbeat) error {
	if err := p.postJSON(ctx, leader, peerproto.PathHeartbeat, hb); err != nil {
		return fmt.Errorf("heartbeat to %s: %w", leader, err)
	}
	return nil
}

// Progress asks the leader what workers last reported for a job's running
// tasks (task id → fraction done).
func (p *Peers) Progress(ctx context.Context, leader, jobID string) (map[string]float64, error) {
	req, err := p.newRequest(ctx, http.MethodGet, leader, peerproto.PathProgress+url.PathEscape(jobID), peerproto.ReasonOther, nil)
	if err != nil {
		return nil, fmt.Errorf("progress of %s from %s: %w", jobID, leader, err)
	}
	var out struct {
		Tasks map[string]float64 `json:"tasks"`
	}
	if err := p.doJSON(req, &out); err != nil {
		return nil, fmt.Errorf("progress of %s from %s: %w", jobID, leader, err)
	}
	return out.Tasks, nil
}

// postJSON posts v as JSON and expects a 2xx answer.
func (p *Peers) postJSON(ctx context.Context, addr, path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	req, err := p.newRequest(ctx, http.MethodPost, addr, path, peerproto.ReasonOther, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return p.doJSON(req, nil)
}

// Status asks a node for its view of raft.
func (p *Peers) Status(ctx context.Context, addr string) (RaftStatus, error) {
	var st RaftStatus
	req, err := p.newRequest(ctx, http.MethodGet, addr, peerproto.PathStatus, peerproto.ReasonOther, nil)
	if err != nil {
		return st, fmt.Errorf("raft status of %s: %w", addr, err)
	}
	if err := p.doJSON(req, &st); err != nil {
		return st, fmt.Errorf("raft status of %s: %w", addr, err)
	}
	return st, nil
}

// doJSON sends req and decodes a 2xx JSON answer into out (nil: ignore).
func (p *Peers) doJSON(req *http.Request, out any) error {
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return responseError(resp)
	}
	body := io.LimitReader(resp.Body, 1<<20)
	if out == nil {
		_, _ = io.Copy(io.Discard, body)
		return nil
	}
	if err := json.NewDecoder(body).Decode(out); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return nil
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
