package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/cluster/peerlink"
	"github.com/gosty/gosty/cluster/peerproto"
)

// fakePeerRaft records what the internal API hands it.
type fakePeerRaft struct {
	mu      sync.Mutex
	err     error
	index   uint64
	cmds    [][]byte
	joins   []cluster.JoinRequest
	beats   []cluster.Heartbeat
	removed []string
	status  cluster.RaftStatus
}

func (f *fakePeerRaft) Progress(jobID string) (map[string]float64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	out := map[string]float64{}
	for _, hb := range f.beats {
		for _, tb := range hb.Tasks {
			if strings.HasPrefix(tb.ID, jobID+"/") {
				out[tb.ID] = tb.Progress
			}
		}
	}
	return out, nil
}

func (f *fakePeerRaft) Remove(ctx context.Context, req cluster.RemoveRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed = append(f.removed, req.ID)
	return f.err
}

func (f *fakePeerRaft) Heartbeat(ctx context.Context, hb cluster.Heartbeat) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.beats = append(f.beats, hb)
	return f.err
}

func (f *fakePeerRaft) ApplyForwarded(ctx context.Context, cmd []byte) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = append(f.cmds, append([]byte(nil), cmd...))
	if f.err != nil {
		return 0, f.err
	}
	f.index++
	return f.index, nil
}

func (f *fakePeerRaft) Join(ctx context.Context, req cluster.JoinRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.joins = append(f.joins, req)
	return f.err
}

func (f *fakePeerRaft) Status() cluster.RaftStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status
}

func (f *fakePeerRaft) setErr(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

// peerNode is one node's internal side: a blob store, its internal API on
// a real listener, and its Peers client sharing the node's registry.
type peerNode struct {
	api   *Internal
	blobs *cluster.BlobStore
	raft  *fakePeerRaft
	reg   *prometheus.Registry
	srv   *httptest.Server
	addr  string // host:port
	url   string // https://host:port
	link  *peerlink.Link
	peers *cluster.Peers

	mu       sync.Mutex
	streamed []string // what InternalConfig.HoldStreamed was told
}

func newPeerNode(t *testing.T, key string) *peerNode {
	t.Helper()
	blobs, err := cluster.OpenBlobStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	n := &peerNode{blobs: blobs, raft: &fakePeerRaft{}, reg: prometheus.NewRegistry()}
	log := slog.New(slog.DiscardHandler)
	api, err := NewInternal(InternalConfig{Blobs: blobs, Raft: n.raft, Registry: n.reg, Logger: log, NodeName: "n",
		HoldStreamed: func(hash string) {
			n.mu.Lock()
			n.streamed = append(n.streamed, hash)
			n.mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	n.api = api
	// Served as a node serves it: on a peerlink listener.
	n.link = testPeerLink(t, key)
	n.srv = httptest.NewUnstartedServer(api.Handler())
	n.srv.Listener = n.link.Listen(n.srv.Listener)
	n.srv.Start()
	t.Cleanup(n.srv.Close)
	n.addr = n.srv.Listener.Addr().String()
	n.url = "https://" + n.addr
	n.peers = cluster.NewPeers(cluster.PeerConfig{Link: n.link, Blobs: blobs, Registry: n.reg, Logger: log})
	return n
}

// testPeerLink is an internal-purpose link with the cluster key key ("" =
// none: TLS only).
func testPeerLink(t *testing.T, key string) *peerlink.Link {
	t.Helper()
	l, err := peerlink.New(peerlink.Config{Purpose: peerlink.Internal, Key: peerlink.DeriveKey(key, peerlink.Internal),
		Logger: slog.New(slog.DiscardHandler), Rejected: peerlink.RejectedCounter()})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// linkClient is an HTTP client over a link of the cluster key key.
func linkClient(t *testing.T, key string) *http.Client {
	t.Helper()
	tr := &http.Transport{DialTLSContext: testPeerLink(t, key).Dialer(nil)}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func (n *peerNode) transfer(t *testing.T, direction, reason string) float64 {
	t.Helper()
	var m dto.Metric
	if err := peerproto.TransferBytes(n.reg).WithLabelValues(direction, reason).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func (n *peerNode) content(t *testing.T, hash string) []byte {
	t.Helper()
	f, err := n.blobs.Open(hash)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func randomBlob(t *testing.T, n int) ([]byte, cluster.BlobRef) {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return b, cluster.BlobRef{Hash: hex.EncodeToString(sum[:]), Size: int64(n)}
}

func (n *peerNode) put(t *testing.T, data []byte) cluster.BlobRef {
	t.Helper()
	ref, err := n.blobs.Put(context.Background(), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// internalReq makes one request over a peerlink of the cluster key key.
func internalReq(t *testing.T, method, url, key string, body io.Reader, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	if hdr == nil {
		hdr = map[string]string{}
	}
	// Internal servers' httptest URLs say http://; they speak peerlink TLS.
	if rest, ok := strings.CutPrefix(url, "http://"); ok {
		url = "https://" + rest
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := linkClient(t, key).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestInternalPullAndPush(t *testing.T) {
	tests := []struct {
		name   string
		size   int
		reason string
		label  string
	}{
		{"multi-MB task", 6<<20 + 7, "task", "task"},
		{"small replicate", 1000, "replicate", "replicate"},
		{"empty", 0, "serve", "serve"},
		{"unknown reason", 4096, "gossip?", "other"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, dst, third := newPeerNode(t, "k"), newPeerNode(t, "k"), newPeerNode(t, "k")
			data, _ := randomBlob(t, tc.size)
			ref := src.put(t, data)
			ctx := context.Background()

			if err := dst.peers.Pull(ctx, ref, []string{src.addr}, tc.reason); err != nil {
				t.Fatalf("pull: %v", err)
			}
			if !bytes.Equal(dst.content(t, ref.Hash), data) {
				t.Fatal("pulled content differs")
			}
			if in, out := dst.transfer(t, "in", tc.label), src.transfer(t, "out", tc.label); in != float64(tc.size) || out != float64(tc.size) {
				t.Fatalf("in %v out %v, want %d", in, out, tc.size)
			}

			if err := src.peers.Push(ctx, ref, third.addr, tc.reason); err != nil {
				t.Fatalf("push: %v", err)
			}
			if !bytes.Equal(third.content(t, ref.Hash), data) {
				t.Fatal("pushed content differs")
			}
			if in, out := third.transfer(t, "in", tc.label), src.transfer(t, "out", tc.label); in != float64(tc.size) || out != float64(2*tc.size) {
				t.Fatalf("push in %v out %v", in, out)
			}
			// Pushing to a peer that has it sends no body.
			if err := src.peers.Push(ctx, ref, third.addr, tc.reason); err != nil {
				t.Fatalf("second push: %v", err)
			}
			if in, out := third.transfer(t, "in", tc.label), src.transfer(t, "out", tc.label); in != float64(tc.size) || out != float64(2*tc.size) {
				t.Fatalf("second push moved bytes: in %v out %v", in, out)
			}
		})
	}
}

func TestInternalPullMissingAndUnreachable(t *testing.T) {
	a, b := newPeerNode(t, "k"), newPeerNode(t, "k")
	_, ref := randomBlob(t, 100)
	ctx := context.Background()
	if err := b.peers.Pull(ctx, ref, []string{a.addr}, "task"); !errors.Is(err, cluster.ErrNotFound) {
		t.Fatalf("pull of a blob nobody has: %v", err)
	}
	// A holder that is down is not proof of absence.
	down := httptest.NewServer(http.NotFoundHandler())
	addr := strings.TrimPrefix(down.URL, "http://")
	down.Close()
	err := b.peers.Pull(ctx, ref, []string{addr}, "task")
	if err == nil || errors.Is(err, cluster.ErrNotFound) {
		t.Fatalf("pull from a dead holder: %v", err)
	}
	if b.blobs.Has(ref.Hash) {
		t.Fatal("installed")
	}
}

func TestInternalPushRejectsCorruptContent(t *testing.T) {
	src, dst := newPeerNode(t, "k"), newPeerNode(t, "k")
	data, _ := randomBlob(t, 200_000)
	ref := src.put(t, data)
	// Corrupt the sender's copy in place (same size).
	p, _ := src.blobs.Path(ref.Hash)
	if err := os.WriteFile(p, bytes.Repeat([]byte{'x'}, len(data)), 0o640); err != nil {
		t.Fatal(err)
	}
	err := src.peers.Push(context.Background(), ref, dst.addr, "replicate")
	if !errors.Is(err, cluster.ErrInvalid) || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("push of corrupt bytes: %v", err)
	}
	if dst.blobs.Has(ref.Hash) {
		t.Fatal("corrupt blob installed")
	}
	if ents, _ := os.ReadDir(dst.blobs.TempDir()); len(ents) != 0 {
		t.Fatalf("temp files left: %v", ents)
	}

	// The raw answers.
	url := dst.srv.URL + peerproto.Prefix + "/blobs/" + ref.Hash
	size := fmt.Sprint(len(data))
	tests := []struct {
		name   string
		body   []byte
		hdr    map[string]string
		status int
		code   string
	}{
		{"wrong bytes", bytes.Repeat([]byte{'y'}, len(data)), map[string]string{peerproto.HeaderSize: size}, 422, "checksum_mismatch"},
		{"short", data[:10], map[string]string{peerproto.HeaderSize: "10"}, 422, "checksum_mismatch"},
		{"no size", data, nil, 400, "invalid"},
		{"size differs from length", data, map[string]string{peerproto.HeaderSize: "5"}, 400, "invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := internalReq(t, http.MethodPut, url, "k", bytes.NewReader(tc.body), tc.hdr)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if code, _ := errCode(t, body); code != tc.code {
				t.Fatalf("code %q", code)
			}
			if dst.blobs.Has(ref.Hash) {
				t.Fatal("installed")
			}
		})
	}
	resp, body := internalReq(t, http.MethodPut, url, "k", bytes.NewReader(data), map[string]string{peerproto.HeaderSize: size})
	if resp.StatusCode != http.StatusCreated || !dst.blobs.Has(ref.Hash) {
		t.Fatalf("good PUT: %d %s", resp.StatusCode, body)
	}
}

func TestInternalOpenServesRanges(t *testing.T) {
	src, other := newPeerNode(t, "k"), newPeerNode(t, "k")
	data, _ := randomBlob(t, 2<<20)
	ref := src.put(t, data)
	ctx := context.Background()
	holders := []string{other.addr, src.addr} // the first lacks it

	r, err := other.peers.Open(ctx, ref, holders)
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{1_000_000, 0, int64(len(data)) - 100} {
		if _, err := r.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		if _, err := io.ReadFull(r, buf); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf, data[off:off+100]) {
			t.Fatalf("bytes at %d differ", off)
		}
	}
	r.Close()
	if other.blobs.Has(ref.Hash) {
		t.Fatal("Open stored the blob")
	}
	if got := other.transfer(t, "in", "serve"); got < 300 {
		t.Fatalf("serve in = %v", got)
	}

	// ServeContent over it, as the public API serves outputs.
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rs, err := other.peers.Open(req.Context(), ref, holders)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer rs.Close()
		http.ServeContent(w, req, "x.mp4", time.Time{}, rs)
	}))
	defer proxy.Close()
	resp, body := do(t, http.MethodGet, proxy.URL, nil, map[string]string{"Range": "bytes=1048576-1048675"})
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[1048576:1048676]) {
		t.Fatalf("proxied range: %d, %d bytes", resp.StatusCode, len(body))
	}
	if cr := resp.Header.Get("Content-Range"); cr != fmt.Sprintf("bytes 1048576-1048675/%d", len(data)) {
		t.Fatalf("Content-Range %q", cr)
	}
	resp, body = do(t, http.MethodGet, proxy.URL, nil, nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("proxied whole: %d, %d bytes", resp.StatusCode, len(body))
	}
}

func TestInternalBlobGetRangesAndPaths(t *testing.T) {
	n := newPeerNode(t, "k")
	data, _ := randomBlob(t, 10_000)
	ref := n.put(t, data)
	base := n.url + peerproto.Prefix + "/blobs/"
	_, missing := randomBlob(t, 1)

	tests := []struct {
		name   string
		method string
		path   string // after the server URL
		hdr    map[string]string
		status int
		body   []byte
	}{
		{"whole", "GET", base + ref.Hash, nil, 200, data},
		{"head", "HEAD", base + ref.Hash, nil, 200, nil},
		{"range", "GET", base + ref.Hash, map[string]string{"Range": "bytes=100-199"}, 206, data[100:200]},
		{"if-range matches", "GET", base + ref.Hash, map[string]string{"Range": "bytes=9990-", "If-Range": `"` + ref.Hash + `"`}, 206, data[9990:]},
		{"if-range differs", "GET", base + ref.Hash, map[string]string{"Range": "bytes=9990-", "If-Range": `"other"`}, 200, data},
		{"unsatisfiable", "GET", base + ref.Hash, map[string]string{"Range": "bytes=20000-"}, 416, nil},
		{"missing", "GET", base + missing.Hash, nil, 404, nil},
		{"upper case", "GET", base + strings.ToUpper(ref.Hash), nil, 400, nil},
		{"short", "GET", base + "abc", nil, 400, nil},
		{"dot dot", "GET", base + "..", nil, 400, nil},
		{"traversal", "GET", base + "../../../etc/passwd", nil, 404, nil},
		{"encoded traversal", "GET", base + "..%2f..%2fetc%2fpasswd", nil, 404, nil},
		{"encoded dot dot", "GET", base + "%2e%2e", nil, 400, nil},
		{"trailing path", "GET", base + ref.Hash + "/../x", nil, 404, nil},
		{"no route", "GET", n.url + "/internal/v1/nope", nil, 404, nil},
		{"wrong method", "DELETE", base + ref.Hash, nil, 405, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := internalReq(t, tc.method, tc.path, "k", nil, tc.hdr)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d: %.200s", resp.StatusCode, body)
			}
			if tc.status >= 400 && tc.method != "HEAD" {
				errCode(t, body)
			}
			if tc.body != nil && !bytes.Equal(body, tc.body) {
				t.Fatalf("body differs (%d bytes)", len(body))
			}
		})
	}
}

// TestInternalAuth asks every internal route (the test walks the router:
// a route added without a case here fails it) and some that do not exist
// with and without the cluster key.
// TestInternalAuth: the internal API's routes answer only over a peerlink
// with the cluster key; a plain-HTTP request gets no HTTP answer, a peer
// with another key no connection, and no request carries a credential.
func TestInternalAuth(t *testing.T) {
	n := newPeerNode(t, "s3cret")
	ref := n.put(t, []byte("hello"))
	blob := peerproto.Prefix + "/blobs/" + ref.Hash
	upload := peerproto.Prefix + "/uploads/n1.0123456789abcdef0123456789abcdef"

	// The right key: every request is served, without an Authorization
	// header.
	resp, b := internalReq(t, "GET", n.url+blob, "s3cret", nil, nil)
	if resp.StatusCode != http.StatusOK || string(b) != "hello" || resp.TLS == nil || resp.TLS.Version != tls.VersionTLS13 {
		t.Fatalf("GET blob: %d %q tls %v", resp.StatusCode, b, resp.TLS)
	}
	// A node without resumable uploads has none to serve to peers.
	resp, b = internalReq(t, "PATCH", n.url+upload, "s3cret", strings.NewReader("hello"), nil)
	if code, _ := errCode(t, b); resp.StatusCode != http.StatusNotFound || code != "not_found" {
		t.Fatalf("relayed PATCH to a node without uploads: %d %s", resp.StatusCode, b)
	}

	// Plain HTTP: no HTTP answer at all.
	if resp, err := http.Get("http://" + n.addr + blob); err == nil {
		resp.Body.Close()
		t.Fatalf("plain HTTP answered %d", resp.StatusCode)
	}
	// Another key, no key: the connection is cut, no status comes back.
	for _, key := range []string{"nope", ""} {
		req, _ := http.NewRequest("GET", n.url+peerproto.Prefix+"/raft/status", nil)
		if resp, err := linkClient(t, key).Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("key %q answered %d", key, resp.StatusCode)
		}
	}
	wrong := cluster.NewPeers(cluster.PeerConfig{Link: testPeerLink(t, "nope"), Blobs: n.blobs, Logger: slog.New(slog.DiscardHandler)})
	var pe *cluster.PeerError
	if _, err := wrong.Status(context.Background(), n.addr); err == nil || errors.As(err, &pe) {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := n.peers.Status(context.Background(), n.addr); err != nil {
		t.Fatalf("right key: %v", err)
	}

	// Without a key (--insecure), TLS only: anyone with TLS gets in, a
	// keyed peer does not mix with it.
	open := newPeerNode(t, "")
	if _, err := open.peers.Status(context.Background(), open.addr); err != nil {
		t.Fatalf("open API: %v", err)
	}
	if _, err := wrong.Status(context.Background(), open.addr); err == nil {
		t.Fatal("a keyed peer reached an open node")
	}
}

func TestInternalProposeErrorMapping(t *testing.T) {
	n := newPeerNode(t, "k")
	cmd, err := cluster.EncodeCommand(cluster.OpJobCancel, time.Now(), cluster.JobRef{JobID: "j1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	idx, err := n.peers.Propose(ctx, n.addr, cmd)
	if err != nil || idx != 1 {
		t.Fatalf("propose: %d %v", idx, err)
	}
	if !bytes.Equal(n.raft.cmds[0], cmd) {
		t.Fatal("command bytes changed in transit")
	}
	tests := []struct {
		name   string
		err    error
		status int
		want   error // nil: none of the sentinels
	}{
		{"not leader", cluster.ErrNotLeader, 503, cluster.ErrNotLeader},
		{"stale", fmt.Errorf("task t1 attempt 2: %w", cluster.ErrStale), 409, cluster.ErrStale},
		{"conflict", fmt.Errorf("job j1 exists: %w", cluster.ErrConflict), 409, cluster.ErrConflict},
		{"not found", fmt.Errorf("job j9: %w", cluster.ErrNotFound), 404, cluster.ErrNotFound},
		{"invalid", cluster.Invalid(errors.New("unknown op \"x\"")), 400, cluster.ErrInvalid},
		{"other", errors.New("disk on fire"), 500, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n.raft.setErr(tc.err)
			defer n.raft.setErr(nil)
			_, err := n.peers.Propose(ctx, n.addr, cmd)
			if err == nil {
				t.Fatal("no error")
			}
			for _, s := range []error{cluster.ErrNotLeader, cluster.ErrStale, cluster.ErrConflict, cluster.ErrNotFound, cluster.ErrInvalid} {
				if errors.Is(err, s) != (s == tc.want) {
					t.Fatalf("errors.Is(%v, %v) = %v", err, s, !(s == tc.want))
				}
			}
			if tc.want != nil && !strings.Contains(err.Error(), tc.err.Error()) {
				t.Fatalf("message lost: %v (server said %v)", err, tc.err)
			}
			if tc.want == nil && strings.Contains(err.Error(), "fire") {
				t.Fatalf("internal error leaked: %v", err)
			}
			resp, body := internalReq(t, "POST", n.url+peerproto.Prefix+"/propose", "k", bytes.NewReader(cmd), nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
		})
	}
	// Limits.
	resp, body := internalReq(t, "POST", n.url+peerproto.Prefix+"/propose", "k", bytes.NewReader(make([]byte, 8<<20+1)), nil)
	if code, _ := errCode(t, body); resp.StatusCode != 413 || code != "too_large" {
		t.Fatalf("big command: %d %s", resp.StatusCode, code)
	}
	resp, body = internalReq(t, "POST", n.url+peerproto.Prefix+"/propose", "k", nil, nil)
	if code, _ := errCode(t, body); resp.StatusCode != 400 || code != "invalid" {
		t.Fatalf("empty command: %d %s", resp.StatusCode, code)
	}
}

func TestInternalJoinAndStatus(t *testing.T) {
	n := newPeerNode(t, "k")
	ctx := context.Background()
	n.raft.status = cluster.RaftStatus{HasState: true, Leader: "id-1", LeaderAddr: "10.0.0.1:7947", Term: 7, ID: "id-2"}
	st, err := n.peers.Status(ctx, n.addr)
	if err != nil || st != n.raft.status {
		t.Fatalf("status %+v %v", st, err)
	}
	req := cluster.JoinRequest{Name: "gosty-3", ID: "id-3", Addr: "10.0.0.3:7947"}
	if err := n.peers.Join(ctx, n.addr, req); err != nil {
		t.Fatal(err)
	}
	if len(n.raft.joins) != 1 || n.raft.joins[0] != req {
		t.Fatalf("joins %+v", n.raft.joins)
	}
	n.raft.setErr(fmt.Errorf("%w: leader is id-1", cluster.ErrNotLeader))
	if err := n.peers.Join(ctx, n.addr, req); !errors.Is(err, cluster.ErrNotLeader) || !strings.Contains(err.Error(), "leader is id-1") {
		t.Fatalf("join on a follower: %v", err)
	}
	n.raft.setErr(nil)

	url := n.url + peerproto.Prefix + "/raft/join"
	for _, body := range []string{
		`{"id":"a","addr":"1.2.3.4:1","extra":1}`,
		`{"id":"a","addr":"1.2.3.4:1"} {}`,
		`{"id":"a"}`,
		`{"id":"a","addr":"no-port"}`,
		`not json`,
		`{"id":"a","addr":"1.2.3.4:1","name":"` + strings.Repeat("x", 70<<10) + `"}`,
	} {
		resp, b := internalReq(t, "POST", url, "k", strings.NewReader(body), nil)
		if resp.StatusCode != 400 && resp.StatusCode != 413 {
			t.Errorf("%.40s: %d %s", body, resp.StatusCode, b)
		}
		errCode(t, b)
	}
	if len(n.raft.joins) != 2 {
		t.Fatalf("bad requests reached raft: %d", len(n.raft.joins))
	}
	var got cluster.RaftStatus
	_, b := internalReq(t, "GET", n.url+peerproto.Prefix+"/raft/status", "k", nil, nil)
	if err := json.Unmarshal(b, &got); err != nil || got.LeaderAddr != "10.0.0.1:7947" || !strings.Contains(string(b), `"has_state":true`) {
		t.Fatalf("status JSON %s", b)
	}
}

func TestInternalSharesRegistryWithPublicAPI(t *testing.T) {
	reg := prometheus.NewRegistry()
	blobs, err := cluster.OpenBlobStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_ = cluster.NewPeers(cluster.PeerConfig{Blobs: blobs, Registry: reg})
	cfg := InternalConfig{Blobs: blobs, Raft: &fakePeerRaft{}, Registry: reg, Logger: slog.New(slog.DiscardHandler)}
	if _, err := NewInternal(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := NewInternal(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := NewInternal(InternalConfig{}); err == nil {
		t.Fatal("empty config accepted")
	}
}

func TestInternalHeartbeat(t *testing.T) {
	n := newPeerNode(t, "k")
	ctx := context.Background()
	hb := cluster.Heartbeat{Node: "gosty-1", Tasks: []cluster.TaskBeat{{ID: "j/encode/00001", Attempt: 2, Progress: 0.5}}}
	if err := n.peers.Heartbeat(ctx, n.addr, hb); err != nil {
		t.Fatal(err)
	}
	if err := n.peers.Remove(ctx, n.addr, cluster.RemoveRequest{ID: "id-9", Name: "gosty-9"}); err != nil || len(n.raft.removed) != 1 {
		t.Fatalf("remove: %v %v", err, n.raft.removed)
	}
	if len(n.raft.beats) != 1 || n.raft.beats[0].Tasks[0] != hb.Tasks[0] {
		t.Fatalf("beats %+v", n.raft.beats)
	}
	// A follower asks the leader how far the running tasks are.
	if p, err := n.peers.Progress(ctx, n.addr, "j"); err != nil || p["j/encode/00001"] != 0.5 || len(p) != 1 {
		t.Fatalf("progress of j: %v %v", p, err)
	}
	n.raft.setErr(cluster.ErrNotLeader)
	if _, err := n.peers.Progress(ctx, n.addr, "j"); !errors.Is(err, cluster.ErrNotLeader) {
		t.Fatalf("progress from a follower: %v", err)
	}
	if err := n.peers.Heartbeat(ctx, n.addr, hb); !errors.Is(err, cluster.ErrNotLeader) {
		t.Fatalf("heartbeat to a follower: %v", err)
	}
	resp, b := internalReq(t, "POST", n.url+peerproto.Prefix+"/heartbeat", "k", strings.NewReader(`{"node":"x","bogus":1}`), nil)
	if resp.StatusCode != 400 {
		t.Fatalf("unknown field: %d %s", resp.StatusCode, b)
	}
}

// TestInternalWritesClassified walks the internal router: every route is
// classified here (a route added without a case fails), and the writes of
// a client's data (a blob pushed or streamed, a relayed upload's PATCH or DELETE) are
// the ones logged at info; control calls stay at debug.
func TestInternalWritesClassified(t *testing.T) {
	n := newPeerNode(t, "k")
	p := "/internal/v1" // literal, like the paths: this is the wire's route table
	write := map[string]bool{
		"GET " + p + "/blobs/:hash":    false,
		"HEAD " + p + "/blobs/:hash":   false,
		"PUT " + p + "/blobs/:hash":    true,
		"POST " + p + "/blobs":         true,
		"POST " + p + "/propose":       false,
		"POST " + p + "/raft/join":     false,
		"GET " + p + "/raft/status":    false,
		"POST " + p + "/heartbeat":     false,
		"POST " + p + "/raft/remove":   false,
		"GET " + p + "/progress/:job":  false,
		"HEAD " + p + "/uploads/:id":   false,
		"PATCH " + p + "/uploads/:id":  true,
		"DELETE " + p + "/uploads/:id": true,
	}
	routes := n.api.engine.Routes()
	if len(routes) != len(write) {
		t.Errorf("%d internal routes, %d classified", len(routes), len(write))
	}
	for _, r := range routes {
		want, ok := write[r.Method+" "+r.Path]
		if !ok {
			t.Errorf("internal route %s %s is not classified in this test", r.Method, r.Path)
			continue
		}
		if got := internalWrite(r.Method, r.Path); got != want {
			t.Errorf("internal route %s %s: write %v, want %v", r.Method, r.Path, got, want)
		}
	}
}
