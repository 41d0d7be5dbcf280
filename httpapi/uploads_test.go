package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/node/nodetest"
	"github.com/gosty/gosty/transcoder"
)

func tusMeta(kv ...string) string {
	var parts []string
	for i := 0; i+1 < len(kv); i += 2 {
		parts = append(parts, kv[i]+" "+base64.StdEncoding.EncodeToString([]byte(kv[i+1])))
	}
	return strings.Join(parts, ",")
}

func tusHdr(extra map[string]string) map[string]string {
	h := map[string]string{"Tus-Resumable": "1.0.0"}
	for k, v := range extra {
		h[k] = v
	}
	return h
}

// createUpload creates a tus upload of size bytes and returns its URL.
func createUpload(t *testing.T, e *env, size int, meta string, hdr map[string]string) string {
	t.Helper()
	h := tusHdr(map[string]string{"Upload-Length": strconv.Itoa(size), "Upload-Metadata": meta})
	for k, v := range hdr {
		h[k] = v
	}
	resp, b := do(t, http.MethodPost, e.srv.URL+UploadsRoute, nil, h)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, b)
	}
	loc := resp.Header.Get("Location")
	u, err := url.Parse(loc)
	if err != nil || !strings.HasPrefix(u.Path, UploadsRoute) || len(u.Path) <= len(UploadsRoute) {
		t.Fatalf("Location %q", loc)
	}
	return e.srv.URL + u.Path
}

func patch(t *testing.T, u string, off int, data []byte, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	h := tusHdr(map[string]string{"Upload-Offset": strconv.Itoa(off), "Content-Type": "application/offset+octet-stream"})
	for k, v := range hdr {
		h[k] = v
	}
	return do(t, http.MethodPatch, u, bytes.NewReader(data), h)
}

func headOffset(t *testing.T, u string, hdr map[string]string) (int, *http.Response) {
	t.Helper()
	resp, _ := do(t, http.MethodHead, u, nil, tusHdr(hdr))
	if resp.StatusCode != http.StatusOK {
		return -1, resp
	}
	off, err := strconv.Atoi(resp.Header.Get("Upload-Offset"))
	if err != nil {
		t.Fatalf("Upload-Offset %q", resp.Header.Get("Upload-Offset"))
	}
	return off, resp
}

func uploadFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func tusEnv(t *testing.T, mod func(*Config)) (*env, string) {
	dir := filepath.Join(t.TempDir(), "uploads")
	return newEnv(t, func(c *Config) {
		c.UploadDir = dir
		if mod != nil {
			mod(c)
		}
	}), dir
}

func TestTusCreatePatchHeadFinish(t *testing.T) {
	e, dir := tusEnv(t, nil)
	data := bytes.Repeat([]byte("0123456789abcdef"), 10000) // 160 000 bytes
	opts := `{"renditions":["360p"]}`
	u := createUpload(t, e, len(data), tusMeta("filename", "../dir/clip.mp4", "options", opts, "other", "x"), nil)

	if off, resp := headOffset(t, u, nil); off != 0 || resp.Header.Get("Upload-Length") != strconv.Itoa(len(data)) {
		t.Fatalf("HEAD of a new upload: offset %d, length %q", off, resp.Header.Get("Upload-Length"))
	}
	half := len(data) / 2
	resp, b := patch(t, u, 0, data[:half], nil)
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Upload-Offset") != strconv.Itoa(half) {
		t.Fatalf("first PATCH: %d offset %q %s", resp.StatusCode, resp.Header.Get("Upload-Offset"), b)
	}
	if off, _ := headOffset(t, u, nil); off != half {
		t.Fatalf("HEAD after half: %d", off)
	}
	// A PATCH at the wrong offset is refused and changes nothing.
	if resp, _ := patch(t, u, 10, data[10:20], nil); resp.StatusCode != http.StatusConflict {
		t.Fatalf("PATCH at a wrong offset: %d", resp.StatusCode)
	}
	if n := len(e.jobs.submissions()); n != 0 {
		t.Fatalf("%d submissions before the last byte", n)
	}
	resp, b = patch(t, u, half, data[half:], nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("last PATCH: %d %s", resp.StatusCode, b)
	}
	id := resp.Header.Get(JobIDHeader)
	var v JobView
	if err := json.Unmarshal(b, &v); err != nil || v.ID != id || id == "" {
		t.Fatalf("finish answer: header %q body %s (%v)", id, b, err)
	}
	subs := e.jobs.submissions()
	if len(subs) != 1 || !bytes.Equal(subs[0].data, data) || subs[0].filename != "clip.mp4" || string(subs[0].options) != opts {
		t.Fatalf("submission: %d subs, name %q options %q", len(subs), subs[0].filename, subs[0].options)
	}
	if files := uploadFiles(t, dir); len(files) != 0 {
		t.Fatalf("upload files left after the finish: %v", files)
	}
	// A client that lost the answer learns the job from HEAD, and a
	// repeated last PATCH does not submit twice.
	off, hr := headOffset(t, u, nil)
	if off != len(data) || hr.Header.Get(JobIDHeader) != id {
		t.Fatalf("HEAD after the finish: offset %d job %q", off, hr.Header.Get(JobIDHeader))
	}
	if resp, _ := patch(t, u, half, data[half:], nil); resp.StatusCode != http.StatusOK || resp.Header.Get(JobIDHeader) != id {
		t.Fatalf("repeated PATCH: %d %q", resp.StatusCode, resp.Header.Get(JobIDHeader))
	}
	if n := len(e.jobs.submissions()); n != 1 {
		t.Fatalf("%d submissions", n)
	}
	// Creation with the first bytes in the same request (creation-with-upload).
	h := tusHdr(map[string]string{"Upload-Length": "5", "Upload-Metadata": tusMeta("filename", "a.mp4"),
		"Content-Type": "application/offset+octet-stream"})
	resp, b = do(t, http.MethodPost, e.srv.URL+UploadsRoute, strings.NewReader("hello"), h)
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated || resp.Header.Get(JobIDHeader) == "" {
		t.Fatalf("creation with upload: %d %q %s", resp.StatusCode, resp.Header.Get(JobIDHeader), b)
	}
}

func TestTusErrors(t *testing.T) {
	e, dir := tusEnv(t, func(c *Config) { c.APIToken = "sekrit"; c.MaxUploadBytes = 1000 })
	auth := map[string]string{"Authorization": "Bearer sekrit"}

	// No token: 401, JSON.
	resp, b := do(t, http.MethodPost, e.srv.URL+UploadsRoute, nil, tusHdr(map[string]string{"Upload-Length": "10"}))
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("create without token: %d", resp.StatusCode)
	}
	errCode(t, b)
	// OPTIONS (discovery) needs none and tells the limit.
	resp, _ = do(t, http.MethodOptions, e.srv.URL+UploadsRoute, nil, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Tus-Max-Size") != "1000" {
		t.Fatalf("OPTIONS: %d max %q", resp.StatusCode, resp.Header.Get("Tus-Max-Size"))
	}
	// Too large, deferred length, bad options, empty.
	for _, tc := range []struct {
		hdr  map[string]string
		code int
	}{
		{map[string]string{"Upload-Length": "1001"}, http.StatusRequestEntityTooLarge},
		{map[string]string{"Upload-Defer-Length": "1"}, http.StatusNotImplemented}, // the length must be known
		{map[string]string{"Upload-Length": "10", "Upload-Metadata": tusMeta("options", "{nope")}, http.StatusBadRequest},
		{map[string]string{"Upload-Length": "0"}, http.StatusUnprocessableEntity},
	} {
		h := tusHdr(auth)
		for k, v := range tc.hdr {
			h[k] = v
		}
		if resp, b := do(t, http.MethodPost, e.srv.URL+UploadsRoute, nil, h); resp.StatusCode != tc.code {
			t.Errorf("create %v: %d %s, want %d", tc.hdr, resp.StatusCode, b, tc.code)
		}
	}
	u := createUpload(t, e, 10, tusMeta("filename", "bad.mp4"), auth)
	if resp, _ := patch(t, u, 0, []byte("01234"), nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("PATCH without token: %d", resp.StatusCode)
	}
	if resp, _ := do(t, http.MethodDelete, u, nil, tusHdr(nil)); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("DELETE without token: %d", resp.StatusCode)
	}
	// Reads need the token too, as everywhere in the API.
	if _, resp := headOffset(t, u, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("HEAD without token: %d", resp.StatusCode)
	}
	if off, _ := headOffset(t, u, auth); off != 0 {
		t.Fatalf("HEAD with the token: offset %d", off)
	}
	// More bytes than declared.
	if resp, _ := patch(t, u, 0, []byte("0123456789abc"), auth); resp.StatusCode/100 != 4 {
		t.Fatalf("PATCH past the length: %d", resp.StatusCode)
	}

	// Bad media: the finishing PATCH answers 422 with the JSON error, the
	// files go, HEAD repeats the verdict.
	e.jobs.submitErr = &transcoder.MediaError{Reason: "no video stream"}
	resp, b = patch(t, u, 0, []byte("0123456789"), auth)
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("bad media finish: %d %s", resp.StatusCode, b)
	}
	if code, msg := errCode(t, b); code != "invalid_media" || msg != "no video stream" {
		t.Fatalf("bad media error %q %q", code, msg)
	}
	if files := uploadFiles(t, dir); len(files) != 0 {
		t.Fatalf("files left after bad media: %v", files)
	}
	if resp, _ := do(t, http.MethodHead, u, nil, tusHdr(auth)); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("HEAD after bad media: %d", resp.StatusCode)
	}

	// No leader at the finish: 503, the bytes are kept, and the same PATCH
	// again finishes the upload once the cluster is back.
	u = createUpload(t, e, 4, tusMeta("filename", "ok.mp4"), auth)
	e.jobs.submitErr = fmt.Errorf("submit: %w", cluster.ErrNotLeader)
	resp, b = patch(t, u, 0, []byte("abcd"), auth)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("finish without a leader: %d %s", resp.StatusCode, b)
	}
	errCode(t, b)
	if off, _ := headOffset(t, u, auth); off != 4 {
		t.Fatalf("offset after a failed finish: %d", off)
	}
	e.jobs.submitErr = nil
	resp, b = patch(t, u, 4, nil, auth)
	if resp.StatusCode != http.StatusOK || resp.Header.Get(JobIDHeader) == "" {
		t.Fatalf("retried finish: %d %s", resp.StatusCode, b)
	}
	if files := uploadFiles(t, dir); len(files) != 0 {
		t.Fatalf("files left: %v", files)
	}
	// Termination (a canceled upload) with the token.
	u = createUpload(t, e, 10, "", auth)
	if resp, b := do(t, http.MethodDelete, u, nil, tusHdr(auth)); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", resp.StatusCode, b)
	}
	if resp, _ := do(t, http.MethodHead, u, nil, tusHdr(auth)); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("HEAD after DELETE: %d", resp.StatusCode)
	}
	if files := uploadFiles(t, dir); len(files) != 0 {
		t.Fatalf("files left after DELETE: %v", files)
	}
	// Unknown upload, in either form of ID.
	for _, id := range []string{"0123456789abcdef0123456789abcdef", "n1.0123456789abcdef0123456789abcdef"} {
		if resp, _ := do(t, http.MethodHead, e.srv.URL+UploadsRoute+id, nil, tusHdr(auth)); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("HEAD of an unknown upload %s: %d", id, resp.StatusCode)
		}
	}
	// A malformed ID never reaches the store (nor becomes a path).
	for _, id := range []string{"0123456789abcdef", "..%2f..%2fetc%2fpasswd", "n1.0123456789ABCDEF0123456789abcdef", "a%2fb.0123456789abcdef0123456789abcdef"} {
		resp, b := do(t, http.MethodDelete, e.srv.URL+UploadsRoute+id, nil, tusHdr(auth))
		if resp.StatusCode != http.StatusNotFound || string(b) != "ERR_UPLOAD_NOT_FOUND: malformed upload id\n" {
			t.Fatalf("DELETE of the malformed upload id %q: %d %s", id, resp.StatusCode, b)
		}
	}
}

func TestTusOff(t *testing.T) {
	e := newEnv(t, nil)
	resp, b := do(t, http.MethodPost, e.srv.URL+UploadsRoute, nil, tusHdr(map[string]string{"Upload-Length": "10"}))
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("tus without an upload dir: %d %s", resp.StatusCode, b)
	}
	errCode(t, b)
}

// A connection cut mid-body keeps what arrived; the upload resumes from
// the offset HEAD reports.
func TestTusResumeAfterCut(t *testing.T) {
	e, dir := tusEnv(t, nil)
	data := bytes.Repeat([]byte("x"), 200_000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	u := createUpload(t, e, len(data), tusMeta("filename", "cut.bin"), nil)
	pu, _ := url.Parse(u)
	conn, err := net.Dial("tcp", pu.Host)
	if err != nil {
		t.Fatal(err)
	}
	const sent = 123_456
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: %s\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"+
		"Content-Type: application/offset+octet-stream\r\nContent-Length: %d\r\n\r\n", pu.Path, pu.Host, len(data))
	if _, err := conn.Write(data[:sent]); err != nil {
		t.Fatal(err)
	}
	waitUploadBytes(t, dir, u, sent)
	conn.Close()

	var off int
	deadline := time.Now().Add(5 * time.Second)
	for {
		off, _ = headOffset(t, u, nil)
		if off == sent || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if off != sent {
		t.Fatalf("offset after the cut: %d, want %d", off, sent)
	}
	resp, b := patch(t, u, off, data[off:], nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("resumed PATCH: %d %s", resp.StatusCode, b)
	}
	if subs := e.jobs.submissions(); len(subs) != 1 || !bytes.Equal(subs[0].data, data) {
		t.Fatal("the resumed upload's bytes differ")
	}
}

func TestTusSweep(t *testing.T) {
	e, dir := tusEnv(t, func(c *Config) { c.UploadTTL = time.Hour })
	stale := createUpload(t, e, 10, "", nil)
	fresh := createUpload(t, e, 10, "", nil)
	patch(t, stale, 0, []byte("01234"), nil)
	old := time.Now().Add(-2 * time.Hour)
	id := path.Base(stale)
	for _, p := range []string{id, id + ".info"} {
		if err := os.Chtimes(filepath.Join(dir, p), old, old); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.api.SweepUploads(time.Now()); n != 1 {
		t.Fatalf("swept %d uploads, want 1", n)
	}
	if resp, _ := do(t, http.MethodHead, stale, nil, tusHdr(nil)); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("HEAD of a swept upload: %d", resp.StatusCode)
	}
	if off, _ := headOffset(t, fresh, nil); off != 0 {
		t.Fatalf("fresh upload: offset %d", off)
	}
	if files := uploadFiles(t, dir); len(files) != 2 { // the fresh one: data and .info
		t.Fatalf("files after the sweep: %v", files)
	}
}

// A PATCH holds one of the node's upload slots while its body flows.
func TestTusTakesAnUploadSlot(t *testing.T) {
	e, dir := tusEnv(t, func(c *Config) { c.MaxConcurrentUploads = 1 })
	slow := createUpload(t, e, 1000, "", nil)
	other := createUpload(t, e, 10, "", nil)
	conn := startSlowPatch(t, slow, 1000, "0123456789")
	// Its first bytes are on disk: it holds the slot (no probe went first
	// and took the slot from it).
	waitUploadBytes(t, dir, slow, 10)
	resp, _ := patch(t, other, 0, []byte("0123456789"), nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("PATCH while the only slot is taken: %d", resp.StatusCode)
	}
	conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, _ = patch(t, other, 0, []byte("0123456789"), nil)
		if resp.StatusCode != http.StatusTooManyRequests || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PATCH once the slot is free: %d", resp.StatusCode)
	}
}

// startSlowPatch opens a PATCH of an upload of size bytes at offset 0 and
// sends only first; the caller closes the connection (closed at the end of
// the test anyway, so that the server can shut down).
func startSlowPatch(t *testing.T, upload string, size int, first string) net.Conn {
	t.Helper()
	pu, err := url.Parse(upload)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", pu.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: %s\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"+
		"Content-Type: application/offset+octet-stream\r\nContent-Length: %d\r\n\r\n%s", pu.Path, pu.Host, size, first)
	return conn
}

// waitUploadBytes waits until the data file of the upload at URL u in dir
// holds n bytes.
func waitUploadBytes(t *testing.T, dir, u string, n int64) {
	t.Helper()
	p := filepath.Join(dir, path.Base(u))
	nodetest.WaitFor(t, 5*time.Second, fmt.Sprintf("%d bytes in %s", n, p), func() bool {
		st, err := os.Stat(p)
		return err == nil && st.Size() == n
	})
}
