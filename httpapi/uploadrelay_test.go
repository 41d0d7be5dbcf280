package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/cluster/peerproto"
	"github.com/gosty/gosty/node/nodetest"
)

// tusNode is one node of a relay test: its public API with resumable
// uploads on, and its internal API (uploads route included) on a real
// listener.
type tusNode struct {
	*env
	name     string
	dir      string
	internal *httptest.Server
}

// testRelay finds a node's internal address by name, as the node package
// does from gossip, and relays with a real cluster.Peers.
type testRelay struct {
	peers *cluster.Peers
	calls atomic.Int32
	mu    sync.Mutex
	addrs map[string]string // absent: not alive
	gone  map[string]bool   // not alive, and gone for good
}

func (r *testRelay) RelayUpload(ctx context.Context, owner string, call cluster.UploadCall) (*http.Response, error) {
	r.calls.Add(1)
	r.mu.Lock()
	addr, ok := r.addrs[owner]
	gone := r.gone[owner]
	r.mu.Unlock()
	switch {
	case gone:
		return nil, fmt.Errorf("relay upload %s: node %s: dead for 1h: %w", call.ID, owner, ErrOwnerGone)
	case strings.HasPrefix(owner, "unknown"):
		return nil, fmt.Errorf("relay upload %s: node %s: %w", call.ID, owner, ErrOwnerUnknown)
	case !ok:
		return nil, fmt.Errorf("relay upload %s: node %s is not alive", call.ID, owner)
	}
	return r.peers.RelayUpload(ctx, addr, call)
}

func (r *testRelay) setGone(name string, gone bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gone[name] = gone
}

func (r *testRelay) set(name, addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if addr == "" {
		delete(r.addrs, name)
	} else {
		r.addrs[name] = addr
	}
}

func newTestRelay(t *testing.T, key string) *testRelay {
	t.Helper()
	blobs, err := cluster.OpenBlobStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &testRelay{addrs: map[string]string{}, gone: map[string]bool{},
		peers: cluster.NewPeers(cluster.PeerConfig{Link: testPeerLink(t, key), Blobs: blobs, Logger: slog.New(slog.DiscardHandler)})}
}

// newTusNodes starts one node per name, every one relaying through relay
// (nil: a fresh one with the cluster key "k"); mod adjusts each node's
// Config.
func newTusNodes(t *testing.T, relay UploadRelay, mod func(name string, c *Config), names ...string) (map[string]*tusNode, *testRelay) {
	t.Helper()
	tr, _ := relay.(*testRelay)
	if relay == nil {
		tr = newTestRelay(t, "k")
		relay = tr
	}
	nodes := map[string]*tusNode{}
	for _, name := range names {
		e, dir := tusEnv(t, func(c *Config) {
			c.NodeName, c.UploadRelay = name, relay
			if mod != nil {
				mod(name, c)
			}
		})
		blobs, err := cluster.OpenBlobStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		in, err := NewInternal(InternalConfig{Blobs: blobs, Raft: &fakePeerRaft{}, Uploads: e.api,
			Registry: e.reg, Logger: slog.New(slog.DiscardHandler), NodeName: name})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewUnstartedServer(in.Handler())
		srv.Listener = testPeerLink(t, "k").Listen(srv.Listener)
		srv.Start()
		n := &tusNode{env: e, name: name, dir: dir, internal: srv}
		t.Cleanup(n.internal.Close)
		if tr != nil {
			tr.set(name, strings.TrimPrefix(n.internal.URL, "http://"))
		}
		nodes[name] = n
	}
	return nodes, tr
}

// via is the URL of upload u (a URL on any node) on node n.
func (n *tusNode) via(t *testing.T, u string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return n.srv.URL + pu.Path
}

func (n *tusNode) transferIn(t *testing.T) float64 {
	t.Helper()
	var m dto.Metric
	if err := peerproto.TransferBytes(n.reg).WithLabelValues(peerproto.DirectionIn, peerproto.ReasonUpload).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

var relativeUploadURL = regexp.MustCompile(`^/api/v1/uploads/n2\.[0-9a-f]{32}$`)

// An upload created on n2 is continued, finished and deleted through n1
// as if n1 held it: same answers, the token rules of n1, bytes and job on
// n2 only.
func TestTusResumeThroughAnyNode(t *testing.T) {
	nodes, relay := newTusNodes(t, nil, func(_ string, c *Config) { c.APIToken = "tok" }, "n1", "n2")
	n1, n2 := nodes["n1"], nodes["n2"]
	auth := map[string]string{"Authorization": "Bearer tok"}
	data := bytes.Repeat([]byte("0123456789abcdef"), 10000)
	opts := `{"renditions":["360p"]}`

	resp, b := do(t, http.MethodPost, n2.srv.URL+UploadsRoute, nil, tusHdr(map[string]string{"Authorization": "Bearer tok",
		"Upload-Length": strconv.Itoa(len(data)), "Upload-Metadata": tusMeta("filename", "clip.mp4", "options", opts)}))
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusCreated || !relativeUploadURL.MatchString(loc) {
		t.Fatalf("create on n2: %d, Location %q %s", resp.StatusCode, loc, b)
	}
	u := n1.srv.URL + resp.Header.Get("Location")

	half := len(data) / 2
	resp, b = patch(t, u, 0, data[:half], auth)
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Upload-Offset") != strconv.Itoa(half) || resp.Header.Get("Tus-Resumable") != "1.0.0" {
		t.Fatalf("PATCH through n1: %d offset %q %s", resp.StatusCode, resp.Header.Get("Upload-Offset"), b)
	}
	if files := uploadFiles(t, n1.dir); len(files) != 0 {
		t.Fatalf("n1 keeps upload files: %v", files)
	}
	waitUploadBytes(t, n2.dir, u, int64(half))
	if off, hr := headOffset(t, u, auth); off != half || hr.Header.Get("Upload-Length") != strconv.Itoa(len(data)) {
		t.Fatalf("HEAD through n1: offset %d length %q", off, hr.Header.Get("Upload-Length"))
	}
	if _, hr := headOffset(t, u, nil); hr.StatusCode != http.StatusUnauthorized {
		t.Fatalf("HEAD through n1 without a token: %d", hr.StatusCode)
	}
	if resp, _ := patch(t, u, 10, data[10:20], auth); resp.StatusCode != http.StatusConflict {
		t.Fatalf("PATCH at a wrong offset through n1: %d", resp.StatusCode)
	}
	// n1's token rules hold before anything is relayed.
	calls := relay.calls.Load()
	for _, tok := range []string{"", "Bearer nope"} {
		h := map[string]string{"Authorization": tok}
		if resp, _ := patch(t, u, half, data[half:], h); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("PATCH through n1 with %q: %d", tok, resp.StatusCode)
		}
		if resp, _ := do(t, http.MethodDelete, u, nil, tusHdr(h)); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("DELETE through n1 with %q: %d", tok, resp.StatusCode)
		}
	}
	if got := relay.calls.Load(); got != calls {
		t.Fatalf("%d unauthorized requests were relayed", got-calls)
	}

	resp, b = patch(t, u, half, data[half:], auth)
	id := resp.Header.Get(JobIDHeader)
	var v JobView
	if err := json.Unmarshal(b, &v); resp.StatusCode != http.StatusOK || err != nil || id == "" || v.ID != id ||
		resp.Header.Get("Upload-Offset") != strconv.Itoa(len(data)) {
		t.Fatalf("last PATCH through n1: %d job %q %s", resp.StatusCode, id, b)
	}
	subs := n2.jobs.submissions()
	if len(subs) != 1 || !bytes.Equal(subs[0].data, data) || subs[0].filename != "clip.mp4" || string(subs[0].options) != opts {
		t.Fatalf("n2 got %d submissions", len(subs))
	}
	if want := newTokenSet("tok").submitter("Bearer tok"); !subs[0].byToken || subs[0].submitter != want {
		t.Fatalf("submitter %q (by token %v), want %q", subs[0].submitter, subs[0].byToken, want)
	}
	if n := len(n1.jobs.submissions()); n != 0 {
		t.Fatalf("n1 submitted %d jobs", n)
	}
	// The outcome, through n1 again: HEAD tells the job, a repeated last
	// PATCH does not submit twice.
	if off, hr := headOffset(t, u, auth); off != len(data) || hr.Header.Get(JobIDHeader) != id {
		t.Fatalf("HEAD after the finish: offset %d job %q", off, hr.Header.Get(JobIDHeader))
	}
	if resp, _ := patch(t, u, half, data[half:], auth); resp.StatusCode != http.StatusOK || resp.Header.Get(JobIDHeader) != id {
		t.Fatalf("repeated PATCH: %d %q", resp.StatusCode, resp.Header.Get(JobIDHeader))
	}
	if n := len(n2.jobs.submissions()); n != 1 {
		t.Fatalf("%d submissions", n)
	}
	// Every byte crossed once: refused PATCHes (a wrong offset, a finished
	// upload) sent none.
	if in := n2.transferIn(t); in != float64(len(data)) {
		t.Fatalf("n2 counted %v relayed bytes in, want %d", in, len(data))
	}

	// DELETE of another upload through n1 removes it on n2.
	other := createUpload(t, n2.env, 100, tusMeta("filename", "b.mp4"), auth)
	if resp, _ := patch(t, n1.via(t, other), 0, []byte("0123456789"), auth); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PATCH of the other upload: %d", resp.StatusCode)
	}
	if resp, b := do(t, http.MethodDelete, n1.via(t, other), nil, tusHdr(auth)); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE through n1: %d %s", resp.StatusCode, b)
	}
	if files := uploadFiles(t, n2.dir); len(files) != 0 {
		t.Fatalf("files left on n2 after the DELETE: %v", files)
	}
	if resp, _ := do(t, http.MethodHead, n1.via(t, other), nil, tusHdr(auth)); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("HEAD through n1 after the DELETE: %d", resp.StatusCode)
	}

	// A client that cannot send PATCH overrides a POST's method; the
	// relay sees the PATCH.
	third := createUpload(t, n2.env, 3, tusMeta("filename", "c.mp4"), auth)
	resp, b = do(t, http.MethodPost, n1.via(t, third), strings.NewReader("abc"), tusHdr(map[string]string{
		"Authorization": "Bearer tok", "X-HTTP-Method-Override": "PATCH", "Upload-Offset": "0",
		"Content-Type": "application/offset+octet-stream"}))
	if resp.StatusCode != http.StatusOK || resp.Header.Get(JobIDHeader) == "" {
		t.Fatalf("POST overridden to PATCH through n1: %d %s", resp.StatusCode, b)
	}
}

// When the node that holds the upload is not alive, unreachable, or
// refuses the relay, the client gets a clear JSON error, never a 404.
func TestTusRelayOwnerUnavailable(t *testing.T) {
	nodes, relay := newTusNodes(t, nil, nil, "n1", "n2")
	n1, n2 := nodes["n1"], nodes["n2"]
	u := n1.via(t, createUpload(t, n2.env, 10, "", nil))
	unavailable := func(what string) {
		t.Helper()
		for _, req := range []struct {
			method string
			body   string
			hdr    map[string]string
		}{
			{http.MethodHead, "", nil},
			{http.MethodPatch, "01234", map[string]string{"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}},
			{http.MethodDelete, "", nil},
		} {
			resp, b := do(t, req.method, u, strings.NewReader(req.body), tusHdr(req.hdr))
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || resp.Header.Get("Tus-Resumable") != "1.0.0" {
				t.Fatalf("%s: %s through n1: %d Retry-After %q", what, req.method, resp.StatusCode, resp.Header.Get("Retry-After"))
			}
			if req.method == http.MethodHead {
				continue
			}
			if code, msg := errCode(t, b); code != "unavailable" || !strings.Contains(msg, "node n2") || !strings.Contains(msg, "unavailable") {
				t.Fatalf("%s: %s: %s %q", what, req.method, code, msg)
			}
		}
	}
	addr := strings.TrimPrefix(n2.internal.URL, "http://")
	relay.set("n2", "")
	unavailable("n2 not alive")
	relay.set("n2", addr)
	if off, _ := headOffset(t, u, nil); off != 0 {
		t.Fatalf("n2 back: offset %d", off)
	}
	// Alive in gossip but its port is closed (killed a moment ago).
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	relay.set("n2", strings.TrimPrefix(dead.URL, "http://"))
	unavailable("n2 unreachable")
	relay.set("n2", addr)

	// n1 with another cluster key: n2 refuses it, and n1 says so (502),
	// not that the client's token is wrong.
	wrong := newTestRelay(t, "not-k")
	wrong.set("n2", addr)
	n3, _ := newTusNodes(t, wrong, nil, "n3")
	resp, b := do(t, http.MethodHead, n3["n3"].via(t, u), nil, tusHdr(nil))
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("relay with another cluster key: %d", resp.StatusCode)
	}
	resp, b = do(t, http.MethodDelete, n3["n3"].via(t, u), nil, tusHdr(nil))
	if code, _ := errCode(t, b); resp.StatusCode != http.StatusBadGateway || code != "bad_gateway" {
		t.Fatalf("relay with another cluster key: %d %s", resp.StatusCode, b)
	}
	if off, _ := headOffset(t, u, nil); off != 0 {
		t.Fatalf("the upload changed: offset %d", off)
	}

	// The internal route serves only uploads held there, and never relays.
	for _, tc := range []struct {
		id   string
		code int
	}{
		{"n1.0123456789abcdef0123456789abcdef", http.StatusNotFound},
		{"n2.0123456789abcdef0123456789abcdef", http.StatusNotFound},
		{"n2.0123456789abcdef", http.StatusNotFound},
		{"..", http.StatusNotFound},
	} {
		resp, b := internalReq(t, http.MethodDelete, n2.internal.URL+peerproto.Prefix+"/uploads/"+tc.id, "k", nil, tusHdr(nil))
		if resp.StatusCode != tc.code || !strings.HasPrefix(string(b), "ERR_UPLOAD_NOT_FOUND: ") {
			t.Fatalf("internal DELETE of %s: %d %s", tc.id, resp.StatusCode, b)
		}
	}
	if relay.calls.Load() == 0 {
		t.Fatal("nothing was relayed")
	}
}

// An upload that is not there, wherever it is asked for, gets tus's
// answer: 404 (an unknown upload on a live node, a malformed ID, a node
// that is not in the cluster) or 410 (a node gone too long to wait for),
// with Tus-Resumable, no Upload-Offset, not cacheable, no JSON (nothing at
// all to a HEAD). The upload of a node that is back is served again.
func TestTusMissingUploadAnswers(t *testing.T) {
	nodes, relay := newTusNodes(t, nil, func(_ string, c *Config) { c.APIToken = "tok" }, "n1", "n2")
	n1, n2 := nodes["n1"], nodes["n2"]
	auth := map[string]string{"Authorization": "Bearer tok"}
	held := n1.via(t, createUpload(t, n2.env, 10, "", auth))
	hex := "0123456789abcdef0123456789abcdef"
	check := func(what, u string, status int) {
		t.Helper()
		for _, req := range []struct {
			method string
			body   string
			hdr    map[string]string
		}{
			{http.MethodHead, "", nil},
			{http.MethodPatch, "01234", map[string]string{"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}},
			{http.MethodDelete, "", nil},
		} {
			h := map[string]string{"Authorization": "Bearer tok"}
			for k, v := range req.hdr {
				h[k] = v
			}
			resp, b := do(t, req.method, u, strings.NewReader(req.body), tusHdr(h))
			if resp.StatusCode != status || resp.Header.Get("Tus-Resumable") != "1.0.0" ||
				resp.Header.Get("Upload-Offset") != "" || strings.Contains(resp.Header.Get("Content-Type"), "json") {
				t.Fatalf("%s: %s: %d %v %s", what, req.method, resp.StatusCode, resp.Header, b)
			}
			want := "ERR_UPLOAD_NOT_FOUND: "
			if status == http.StatusGone {
				want = "ERR_UPLOAD_GONE: "
			}
			switch {
			case req.method == http.MethodHead && len(b) != 0:
				t.Fatalf("%s: HEAD has a body: %q", what, b)
			case req.method != http.MethodHead && !strings.HasPrefix(string(b), want):
				t.Fatalf("%s: %s: %q, want %s...", what, req.method, b, want)
			}
			if req.method == http.MethodHead && resp.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("%s: HEAD: Cache-Control %q", what, resp.Header.Get("Cache-Control"))
			}
		}
	}
	check("an unknown upload of n2, through n1", n1.srv.URL+UploadsRoute+"n2."+hex, http.StatusNotFound)
	check("an unknown upload of n1, on n1", n1.srv.URL+UploadsRoute+"n1."+hex, http.StatusNotFound)
	check("a malformed id", n1.srv.URL+UploadsRoute+"n2."+hex[:20], http.StatusNotFound)
	check("a path for an id", n1.srv.URL+UploadsRoute+"..%2f..%2fetc%2fpasswd", http.StatusNotFound)
	calls := relay.calls.Load()
	check("an upload of a node that is not in the cluster", n1.srv.URL+UploadsRoute+"unknown-9."+hex, http.StatusNotFound)
	if relay.calls.Load() == calls {
		t.Fatal("the relay was not asked about the unknown node")
	}
	relay.setGone("n2", true)
	check("an upload of a node gone too long", held, http.StatusGone)
	relay.setGone("n2", false)
	if off, resp := headOffset(t, held, auth); resp.StatusCode != http.StatusOK || off != 0 {
		t.Fatalf("n2 back: HEAD %d offset %d", resp.StatusCode, off)
	}
}

// A relayed PATCH streams: the owner has the first bytes while the client
// is still sending; a cut keeps them there, and the rest follows through
// the same or another node.
func TestTusRelayStreamsAndSurvivesACut(t *testing.T) {
	nodes, _ := newTusNodes(t, nil, nil, "n1", "n2", "n3")
	n1, n2, n3 := nodes["n1"], nodes["n2"], nodes["n3"]
	data := make([]byte, 300_000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	u := createUpload(t, n2.env, len(data), tusMeta("filename", "cut.bin"), nil)
	const sent = 123_456
	conn := startSlowPatch(t, n1.via(t, u), len(data), string(data[:sent]))
	waitUploadBytes(t, n2.dir, u, sent) // on n2 while the request is open: not buffered on n1
	conn.Close()
	var off int
	nodetest.WaitFor(t, 5*time.Second, "n2 to keep the bytes of the cut PATCH", func() bool {
		off, _ = headOffset(t, n3.via(t, u), nil)
		return off == sent
	})
	if resp, b := patch(t, n3.via(t, u), off, data[off:], nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("resumed PATCH through n3: %d %s", resp.StatusCode, b)
	}
	if subs := n2.jobs.submissions(); len(subs) != 1 || !bytes.Equal(subs[0].data, data) {
		t.Fatal("the resumed upload's bytes differ")
	}
}

// The slot and idle rules hold on both ends of a relay: the relaying node
// takes one of its upload slots, the owner one of its own; a client that
// stalls is cut by the relaying node (408), an owner that stops taking
// bytes is given up on (503).
func TestTusRelaySlotsAndIdle(t *testing.T) {
	nodes, _ := newTusNodes(t, nil, func(name string, c *Config) {
		c.MaxConcurrentUploads = 1
		if name == "n4" {
			c.UploadIdleTimeout = 300 * time.Millisecond
		}
	}, "n1", "n2", "n3", "n4")
	n1, n2, n3, n4 := nodes["n1"], nodes["n2"], nodes["n3"], nodes["n4"]
	slow := createUpload(t, n2.env, 1000, "", nil)
	other := createUpload(t, n2.env, 10, "", nil)
	onN3 := createUpload(t, n3.env, 10, "", nil)
	conn := startSlowPatch(t, n1.via(t, slow), 1000, "0123456789")
	waitUploadBytes(t, n2.dir, slow, 10)
	for _, tc := range []struct {
		node   *tusNode
		upload string
		what   string
	}{
		{n1, onN3, "n1, whose slot relays the slow PATCH, to n3, whose slot is free"},
		{n2, other, "n2, whose slot takes the relayed slow PATCH"},
		{n3, other, "n3, whose slot is free, to n2"},
	} {
		resp, b := patch(t, tc.node.via(t, tc.upload), 0, []byte("0123456789"), nil)
		if code, _ := errCode(t, b); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || code != "too_many_uploads" {
			t.Fatalf("PATCH through %s: %d %s", tc.what, resp.StatusCode, b)
		}
	}
	conn.Close()
	for _, u := range []string{n3.via(t, other), n1.via(t, onN3)} {
		nodetest.WaitFor(t, 5*time.Second, "the slots to be free", func() bool {
			resp, _ := patch(t, u, 0, []byte("0123456789"), nil)
			return resp.StatusCode == http.StatusOK
		})
	}

	// A client that stalls through n4 (idle timeout 300 ms) is cut there;
	// n2 keeps what arrived.
	stall := createUpload(t, n2.env, 1000, "", nil)
	start := time.Now()
	conn = startSlowPatch(t, n4.via(t, stall), 1000, "0123456789")
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if code, _ := errCode(t, b); resp.StatusCode != http.StatusRequestTimeout || code != "upload_timeout" {
		t.Fatalf("stalled client through n4: %d %s", resp.StatusCode, b)
	}
	t.Logf("stalled client cut after %v", time.Since(start).Round(time.Millisecond))
	nodetest.WaitFor(t, 5*time.Second, "n2 to keep the stalled upload's bytes", func() bool {
		off, _ := headOffset(t, n1.via(t, stall), nil)
		return off == 10
	})

	// An owner that stops taking bytes: n4 gives up after its watchdog.
	stuck, _ := newTusNodes(t, stallingRelay{}, func(_ string, c *Config) { c.UploadIdleTimeout = 200 * time.Millisecond }, "n5")
	start = time.Now()
	resp, b = patch(t, stuck["n5"].via(t, stall), 10, bytes.Repeat([]byte("x"), 990), nil)
	if code, msg := errCode(t, b); resp.StatusCode != http.StatusServiceUnavailable || code != "unavailable" || !strings.Contains(msg, "n2") {
		t.Fatalf("PATCH to an owner that stalls: %d %s", resp.StatusCode, b)
	}
	t.Logf("stalled owner given up after %v", time.Since(start).Round(time.Millisecond))
}

// stallingRelay takes a byte of a PATCH body and then nothing, as an owner
// that stopped (SIGSTOP) would, until its caller gives up.
type stallingRelay struct{}

func (stallingRelay) RelayUpload(ctx context.Context, owner string, call cluster.UploadCall) (*http.Response, error) {
	if call.Body != nil {
		if _, err := call.Body.Read(make([]byte, 1)); err != nil {
			return nil, err
		}
	}
	<-ctx.Done()
	return nil, fmt.Errorf("relay upload %s: %w", call.ID, context.Cause(ctx))
}

func TestUploadIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := newUploadID("gosty-0")
		owner, ok := parseUploadID(id)
		if !ok || owner != "gosty-0" || seen[id] || len(id) != len("gosty-0.")+32 {
			t.Fatalf("new id %q: owner %q ok %v", id, owner, ok)
		}
		seen[id] = true
	}
	if id := newUploadID(""); len(id) != 32 {
		t.Fatalf("unnamed id %q", id)
	}
	hex := "0123456789abcdef0123456789abcdef"
	for id, want := range map[string]string{
		hex:                                  "",
		"gosty-0." + hex:                     "gosty-0",
		"node.example.org." + hex:            "node.example.org",
		"N_1." + hex:                         "N_1",
		strings.Repeat("a", 128) + "." + hex: strings.Repeat("a", 128),
	} {
		if owner, ok := parseUploadID(id); !ok || owner != want {
			t.Errorf("parseUploadID(%q) = %q, %v; want %q", id, owner, ok, want)
		}
	}
	for _, id := range []string{"", hex[:31], hex + "0", strings.ToUpper(hex), "." + hex, "-n." + hex, "..",
		"../" + hex, "a/b." + hex, "a%2fb." + hex, "n 1." + hex, "n~1." + hex, "é." + hex,
		strings.Repeat("a", 129) + "." + hex, "gosty-0." + hex + ".info", "gosty-0_" + hex} {
		if owner, ok := parseUploadID(id); ok {
			t.Errorf("parseUploadID(%q) accepted (owner %q)", id, owner)
		}
	}
	for name, want := range map[string]string{"gosty-0": "gosty-0", "host.example.org": "host.example.org",
		"": "", "café": "", "a/b": "", "a%b": "", ".hidden": "", strings.Repeat("x", 129): ""} {
		if got := uploadOwnerName(name); got != want {
			t.Errorf("uploadOwnerName(%q) = %q, want %q", name, got, want)
		}
	}
	// A node whose name does not fit gives out unnamed IDs, and serves them.
	e, _ := tusEnv(t, func(c *Config) { c.NodeName = "café" })
	u := createUpload(t, e, 10, "", nil)
	if id := path.Base(u); len(id) != 32 {
		t.Fatalf("upload id %q on a node named café", id)
	}
	if off, _ := headOffset(t, u, nil); off != 0 {
		t.Fatalf("HEAD: offset %d", off)
	}
}
