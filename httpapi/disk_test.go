package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"

	tus "github.com/tus/tusd/v2/pkg/handler"

	"github.com/gosty/gosty/cluster"
)

// room is a Space with a number of bytes left.
type room struct {
	mu   sync.Mutex
	left int64
}

func (r *room) Admit(n int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n > r.left {
		return fmt.Errorf("%w: %d bytes more would not fit, %d left for media", cluster.ErrNoSpace, n, r.left)
	}
	return nil
}

func (r *room) Take(n int64) error {
	if err := r.Admit(n); err != nil {
		return err
	}
	r.mu.Lock()
	r.left -= n
	r.mu.Unlock()
	return nil
}

func (r *room) set(n int64) {
	r.mu.Lock()
	r.left = n
	r.mu.Unlock()
}

func wantNoSpace(t *testing.T, resp *http.Response, b []byte) {
	t.Helper()
	if resp.StatusCode != http.StatusInsufficientStorage {
		t.Fatalf("status %d, want 507: %s", resp.StatusCode, b)
	}
	code, msg := errCode(t, b)
	if code != "insufficient_storage" || !strings.Contains(msg, "no room for the upload on this node's disk") {
		t.Fatalf("error %q %q", code, msg)
	}
}

// A POST that declares more than the room is 507 before it is read (the
// backend never sees it); one that fits goes through.
func TestUploadDeclaredTooLargeForTheDisk(t *testing.T) {
	sp := &room{left: 1000}
	e := newEnv(t, func(c *Config) { c.Space = sp })
	resp, b := do(t, http.MethodPost, e.srv.URL+"/api/v1/jobs?filename=a.mp4", bytes.NewReader(make([]byte, 1001)), nil)
	wantNoSpace(t, resp, b)
	if _, msg := errCode(t, b); !strings.Contains(msg, "1001 bytes more would not fit, 1000 left for media") {
		t.Fatalf("the message says why: %q", msg)
	}
	if n := len(e.jobs.submissions()); n != 0 {
		t.Fatalf("%d submissions", n)
	}
	resp, b = do(t, http.MethodPost, e.srv.URL+"/api/v1/jobs?filename=a.mp4", bytes.NewReader(make([]byte, 1000)), nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("an upload that fits: %d %s", resp.StatusCode, b)
	}
}

// A backend that runs out of room (its admission, or ENOSPC from the file
// system) answers 507 with the JSON error, never 500.
func TestUploadBackendOutOfSpace(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("upload a.mp4: put blob: %w", fmt.Errorf("%w: 3MiB more would not fit", cluster.ErrNoSpace)),
		fmt.Errorf("upload a.mp4: put blob: %w", &os.PathError{Op: "write", Path: "/data/blobs/tmp/put-1", Err: syscall.ENOSPC}),
	} {
		e := newEnv(t, nil)
		e.jobs.submitErr = err
		resp, b := do(t, http.MethodPost, e.srv.URL+"/api/v1/jobs?filename=a.mp4", strings.NewReader("data"), nil)
		wantNoSpace(t, resp, b)
		if _, msg := errCode(t, b); strings.Contains(msg, "/data/") {
			t.Fatalf("the message leaks a path: %q", msg)
		}
	}
}

// tus: a creation that declares more than the room is 507 and creates
// nothing; a PATCH is checked as its bytes arrive, keeps what was written
// before the room ran out (5xx keeps an upload), and resumes once there
// is room again.
func TestTusUploadChecksTheDisk(t *testing.T) {
	sp := &room{left: 100_000}
	e, dir := tusEnv(t, func(c *Config) { c.Space = sp })
	resp, b := do(t, http.MethodPost, e.srv.URL+UploadsRoute, nil,
		tusHdr(map[string]string{"Upload-Length": "100001", "Upload-Metadata": tusMeta("filename", "a.mp4")}))
	wantNoSpace(t, resp, b)
	if files := uploadFiles(t, dir); len(files) != 0 {
		t.Fatalf("a refused creation left %v", files)
	}

	data := bytes.Repeat([]byte("0123456789"), 16_000) // 160 000 bytes
	sp.set(int64(len(data)))
	u := createUpload(t, e, len(data), tusMeta("filename", "a.mp4"), nil)
	// The room shrinks (another upload took it): a chunked PATCH (no
	// Content-Length to check first) stops where the room ends.
	sp.set(64 << 10)
	req, _ := http.NewRequest(http.MethodPatch, u, io.MultiReader(bytes.NewReader(data))) // no length: chunked
	for k, v := range tusHdr(map[string]string{"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}) {
		req.Header.Set(k, v)
	}
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(r2.Body)
	r2.Body.Close()
	wantNoSpace(t, r2, b)
	off, _ := headOffset(t, u, nil)
	if off <= 0 || off > 64<<10 {
		t.Fatalf("offset after a PATCH cut for room: %d (room was %d)", off, 64<<10)
	}
	// A PATCH that declares more than the room is refused before it is read.
	resp, b = patch(t, u, off, data[off:], nil)
	wantNoSpace(t, resp, b)
	if o2, _ := headOffset(t, u, nil); o2 != off {
		t.Fatalf("a refused PATCH moved the offset from %d to %d", off, o2)
	}
	// Room again: the upload resumes and finishes.
	sp.set(1 << 20)
	resp, b = patch(t, u, off, data[off:], nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get(JobIDHeader) == "" {
		t.Fatalf("resumed PATCH: %d %s", resp.StatusCode, b)
	}
	if subs := e.jobs.submissions(); len(subs) != 1 || !bytes.Equal(subs[0].data, data) {
		t.Fatal("the resumed upload is not the file")
	}
}

// ENOSPC from tus's own file writes is 507 as well.
func TestTusWriteENOSPCIs507(t *testing.T) {
	var te tus.Error
	if err := mapNoSpace(&os.PathError{Op: "write", Path: "/data/uploads/x", Err: syscall.ENOSPC}); !errors.As(err, &te) {
		t.Fatalf("not a tus error: %v", err)
	}
	if te.HTTPResponse.StatusCode != http.StatusInsufficientStorage || !strings.Contains(te.HTTPResponse.Body, `"insufficient_storage"`) ||
		strings.Contains(te.HTTPResponse.Body, "/data/") {
		t.Fatalf("%+v", te.HTTPResponse)
	}
	if got := mapNoSpace(io.ErrUnexpectedEOF); got != io.ErrUnexpectedEOF {
		t.Fatalf("other errors pass as they are: %v", got)
	}
}

// A push to a node without room is refused with 507 before the body is
// sent (the sender's error wraps cluster.ErrNoSpace, so the replicator
// picks another node); the refusing node keeps nothing, and answers 201
// as before for a blob it already holds.
func TestInternalPushToAFullNode(t *testing.T) {
	src, dst := newPeerNode(t, "k"), newPeerNode(t, "k")
	sp := &room{left: 1000}
	dst.blobs.SetSpace(sp)
	data, _ := randomBlob(t, 200_000)
	ref := src.put(t, data)
	err := src.peers.Push(t.Context(), ref, dst.addr, "replicate")
	if !errors.Is(err, cluster.ErrNoSpace) || !strings.Contains(err.Error(), "node n") {
		t.Fatalf("push to a full node: %v", err)
	}
	if out := src.transfer(t, "out", "replicate"); out != 0 {
		t.Fatalf("the refused push sent %v bytes", out)
	}
	if dst.blobs.Has(ref.Hash) {
		t.Fatal("stored")
	}
	if ents, _ := os.ReadDir(dst.blobs.TempDir()); len(ents) != 0 {
		t.Fatalf("temp files left: %v", ents)
	}
	sp.set(1 << 20)
	if err := src.peers.Push(t.Context(), ref, dst.addr, "replicate"); err != nil {
		t.Fatal(err)
	}
	sp.set(0)
	if err := src.peers.Push(t.Context(), ref, dst.addr, "replicate"); err != nil {
		t.Fatalf("a full node that has the blob says so: %v", err)
	}
}

// A backend that gives up mid-body for lack of room answers 507 while the
// client is still sending a chunked body; the client gets the answer, not
// a connection reset (the server lingers after an early answer only when
// the request's own body is back in place).
func TestUploadCutMidBodyGetsTheAnswer(t *testing.T) {
	e := newEnv(t, nil)
	e.jobs.submitErr = fmt.Errorf("upload: put blob: %w", fmt.Errorf("%w: 32KiB more would not fit", cluster.ErrNoSpace))
	e.jobs.stopAt = 1 << 20
	for i := range 20 {
		pr, pw := io.Pipe()
		go func() {
			_, err := io.Copy(pw, io.LimitReader(zeroReader{}, 256<<20))
			pw.CloseWithError(err)
		}()
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/api/v1/jobs?filename=big.mp4", pr)
		resp, err := http.DefaultClient.Do(req)
		pr.CloseWithError(errors.New("done"))
		if err != nil {
			t.Fatalf("try %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantNoSpace(t, resp, b)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// A PATCH relayed to the node that holds the upload is admitted by that
// node's disk, not by the relaying node's: a full relayer passes it on,
// and a full owner's 507 reaches the client through the relayer.
func TestTusRelayAdmittedByTheOwner(t *testing.T) {
	room1, room2 := &room{left: 0}, &room{left: 1 << 20}
	nodes, _ := newTusNodes(t, nil, func(name string, c *Config) {
		c.Space = map[string]*room{"n1": room1, "n2": room2}[name]
	}, "n1", "n2")
	n1, n2 := nodes["n1"], nodes["n2"]
	data := bytes.Repeat([]byte("0123456789"), 10_000)
	u := createUpload(t, n2.env, len(data), tusMeta("filename", "a.mp4"), nil)
	resp, b := patch(t, n1.via(t, u), 0, data[:50_000], nil)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PATCH through a full n1 to n2, which has room: %d %s", resp.StatusCode, b)
	}
	room2.set(0)
	resp, b = patch(t, n1.via(t, u), 50_000, data[50_000:], nil)
	wantNoSpace(t, resp, b)
	room2.set(1 << 20)
	if resp, b := patch(t, n1.via(t, u), 50_000, data[50_000:], nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("PATCH once n2 has room again: %d %s", resp.StatusCode, b)
	}
}
