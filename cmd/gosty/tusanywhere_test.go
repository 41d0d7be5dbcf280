package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/node/nodetest"
)

// hops sends the tus requests of a test to the nodes of a cluster and
// fails the test when one goes to the node the previous one went to: every
// step of a resume must cross nodes, as behind a Service with no affinity.
type hops struct {
	t     *testing.T
	c     *e2e.Cluster
	token string
	last  int
	n     int
}

// to returns the URL of path on node i, checking that the previous
// request went elsewhere.
func (h *hops) to(i int, path string) string {
	h.t.Helper()
	if h.n > 0 && i == h.last {
		h.t.Fatalf("request %d goes to gosty-%d again", h.n+1, i)
	}
	h.last, h.n = i, h.n+1
	return h.c.HTTP(i) + path
}

// do sends a tus request to node i.
func (h *hops) do(i int, method, path string, body []byte, hdr map[string]string) (*http.Response, []byte) {
	h.t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	resp, b, err := tusReq(h.t, method, h.to(i, path), h.token, r, hdr)
	if err != nil {
		h.t.Fatalf("%s %s on gosty-%d: %v", method, path, i, err)
	}
	return resp, b
}

func (h *hops) patch(i int, path string, off int64, data []byte) (*http.Response, []byte) {
	h.t.Helper()
	return h.do(i, http.MethodPatch, path, data, map[string]string{"Upload-Offset": strconv.FormatInt(off, 10),
		"Content-Type": "application/offset+octet-stream"})
}

func (h *hops) create(i int, size int64, meta string) string {
	h.t.Helper()
	resp, b := h.do(i, http.MethodPost, "/api/v1/uploads/", nil, map[string]string{
		"Upload-Length": strconv.FormatInt(size, 10), "Upload-Metadata": meta})
	want := regexp.MustCompile(`^/api/v1/uploads/gosty-` + strconv.Itoa(i) + `\.[0-9a-f]{32}$`)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusCreated || !want.MatchString(loc) {
		h.t.Fatalf("create on gosty-%d: %d, Location %q %s", i, resp.StatusCode, loc, b)
	}
	return resp.Header.Get("Location")
}

// uploadsOn lists the upload files in pod i's data dir.
func uploadsOn(t *testing.T, c *e2e.Cluster, i int) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(c.DataDir(i), "uploads", "*"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// relayedIn sums gosty_transfer_bytes_total{direction="in",reason="upload"}
// over the pods: the upload bytes that reached their node through another.
func relayedIn(t *testing.T, c *e2e.Cluster, pods ...int) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^gosty_transfer_bytes_total\{direction="in",reason="upload"\} (\S+)$`)
	sum := 0.0
	for _, i := range pods {
		if m := re.FindStringSubmatch(e2e.Metrics(t, c.HTTP(i))); m != nil {
			v, _ := strconv.ParseFloat(m[1], 64)
			sum += v
		}
	}
	return sum
}

// missing checks tus's answer for an upload that is not there: status
// (404 or 410), Tus-Resumable, no Upload-Offset, not cacheable, no JSON:
// nothing to a HEAD, a line of text in tusd's form otherwise.
func missing(t *testing.T, what string, resp *http.Response, body []byte, method string, status int) {
	t.Helper()
	if resp.StatusCode != status || resp.Header.Get("Tus-Resumable") != "1.0.0" || resp.Header.Get("Upload-Offset") != "" ||
		strings.Contains(resp.Header.Get("Content-Type"), "json") {
		t.Fatalf("%s: %s: %d %v %q", what, method, resp.StatusCode, resp.Header, body)
	}
	want := "ERR_UPLOAD_NOT_FOUND: "
	if status == http.StatusGone {
		want = "ERR_UPLOAD_GONE: "
	}
	switch {
	case method == http.MethodHead && (len(body) != 0 || resp.Header.Get("Cache-Control") != "no-store"):
		t.Fatalf("%s: HEAD: body %q, Cache-Control %q", what, body, resp.Header.Get("Cache-Control"))
	case method != http.MethodHead && !strings.HasPrefix(string(body), want):
		t.Fatalf("%s: %s: %q, want %s…", what, method, body, want)
	}
}

// TestTusResumeAnywhere runs three node processes on 127.0.101.x, and every
// request of a tus upload goes to another node than the one before, as
// behind a Service with no affinity: created on gosty-0, a first part
// through gosty-1, HEAD through gosty-2, a PATCH through gosty-1 cut
// mid-body, its bytes kept on gosty-0, the resume through gosty-2 and the
// last part through gosty-1, which answers with the job; the job lasts
// exactly as long as the same file POSTed. A DELETE through a node that
// does not hold the upload removes it where it is. An upload that is not
// there gets tus's 404 (an unknown upload of a live node, a node not in
// the cluster, an address for a name). `gosty submit` behind a proxy that
// spreads connections over the nodes resumes through whichever it
// reaches. With the owner SIGKILLed, the others answer 503 with
// Retry-After, naming it; past --dead-server-timeout, 410 Gone; and once
// it is back, its upload is served again.
func TestTusResumeAnywhere(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node processes and ffmpeg")
	}
	start := time.Now()
	dir := t.TempDir()
	const token = "tus-anywhere-token"
	tokFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const deadTimeout = 8 * time.Second
	// --public-read: the cluster helpers (agree) read anonymously; every
	// tus call here carries the token all the same.
	c := e2e.FastCluster(t, 101, 3, "--preset", "ultrafast", "--api-token-file", tokFile, "--public-read", "--slots", "1",
		"--dead-server-timeout", deadTimeout.String())
	c.StartAll(t, 3)
	c.Agree(t, []int{0, 1, 2}, 3, 3)
	for i := range 3 {
		nodetest.WaitReady(t, c.HTTP(i), 30*time.Second)
	}
	t.Logf("cluster up after %v", time.Since(start).Round(time.Millisecond))
	// A noisy clip, so that it is a few MB and the cut lands mid-body.
	src := nodetest.NoisyClip(t, filepath.Join(dir, "clip.mp4"), 8)
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	size := int64(len(data))
	if size < 1<<20 {
		t.Fatalf("the clip is only %d bytes", size)
	}
	opts := `{"renditions":["360p","240p"],"chunk_seconds":2}`
	meta := "filename " + base64.StdEncoding.EncodeToString([]byte("clip.mp4")) +
		",options " + base64.StdEncoding.EncodeToString([]byte(opts))
	h := &hops{t: t, c: c, token: token}

	// The reference: the same file POSTed.
	resp, b := h.do(2, http.MethodPost, "/api/v1/jobs?filename=clip.mp4&options="+url.QueryEscape(opts), data, nil)
	var posted httpapi.JobView
	if err := json.Unmarshal(b, &posted); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d %s", resp.StatusCode, b)
	}

	// Created on gosty-0; a first part through gosty-1; HEAD through gosty-2.
	upload := h.create(0, size, meta)
	part := size / 5
	if resp, b = h.patch(1, upload, 0, data[:part]); resp.StatusCode != http.StatusNoContent ||
		resp.Header.Get("Upload-Offset") != strconv.FormatInt(part, 10) {
		t.Fatalf("first PATCH through gosty-1: %d offset %q %s", resp.StatusCode, resp.Header.Get("Upload-Offset"), b)
	}
	if resp, _ = h.do(2, http.MethodHead, upload, nil, nil); resp.StatusCode != http.StatusOK ||
		resp.Header.Get("Upload-Offset") != strconv.FormatInt(part, 10) || resp.Header.Get("Upload-Length") != strconv.FormatInt(size, 10) {
		t.Fatalf("HEAD through gosty-2: %d offset %q length %q", resp.StatusCode, resp.Header.Get("Upload-Offset"), resp.Header.Get("Upload-Length"))
	}
	if got := [3]int{len(uploadsOn(t, c, 0)), len(uploadsOn(t, c, 1)), len(uploadsOn(t, c, 2))}; got != [3]int{2, 0, 0} {
		t.Fatalf("upload files per node (data and .info on gosty-0 only): %v", got)
	}

	// The rest through gosty-1, cut mid-body.
	cutAfter := size * 2 / 5
	proxy := newCutProxy(t, "127.0.101.200:0", strings.TrimPrefix(h.to(1, ""), "http://"), cutAfter)
	proxy.armed.Store(true)
	resp, b, err = tusReq(t, http.MethodPatch, proxy.URL()+upload, token, bytes.NewReader(data[part:]), map[string]string{
		"Upload-Offset": strconv.FormatInt(part, 10), "Content-Type": "application/offset+octet-stream",
		"Content-Length": strconv.FormatInt(size-part, 10)})
	if err == nil {
		t.Fatalf("the cut PATCH got an answer: %d %s", resp.StatusCode, b)
	}
	if proxy.cuts.Load() != 1 {
		t.Fatalf("the proxy cut %d connections", proxy.cuts.Load())
	}
	// gosty-0 kept what reached it (its HEAD waits for the cut PATCH to
	// let go of the upload).
	resp, _ = h.do(0, http.MethodHead, upload, nil, nil)
	off, _ := strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
	t.Logf("cut after %d of %d bytes sent from %d; gosty-0 kept up to %d", cutAfter, size-part, part, off)
	if resp.StatusCode != http.StatusOK || off <= part || off > part+cutAfter {
		t.Fatalf("HEAD on gosty-0 after the cut: %d, offset %d (from %d, cut after %d)", resp.StatusCode, off, part, cutAfter)
	}
	// Resumed through gosty-2 (not the whole rest), finished through gosty-1.
	mid := off + (size-off)/2
	if resp, b = h.patch(2, upload, off, data[off:mid]); resp.StatusCode != http.StatusNoContent ||
		resp.Header.Get("Upload-Offset") != strconv.FormatInt(mid, 10) {
		t.Fatalf("resumed PATCH through gosty-2: %d offset %q %s", resp.StatusCode, resp.Header.Get("Upload-Offset"), b)
	}
	resp, b = h.patch(1, upload, mid, data[mid:])
	resumedID := resp.Header.Get("Gosty-Job-Id")
	var v httpapi.JobView
	if err := json.Unmarshal(b, &v); err != nil || resp.StatusCode != http.StatusOK || resumedID == "" || v.ID != resumedID {
		t.Fatalf("last PATCH through gosty-1: %d job %q %s", resp.StatusCode, resumedID, b)
	}
	if files := uploadsOn(t, c, 0); len(files) != 0 {
		t.Fatalf("upload files left on gosty-0 after the finish: %v", files)
	}
	// A client that lost that answer learns the job through another node.
	if resp, _ = h.do(2, http.MethodHead, upload, nil, nil); resp.Header.Get("Gosty-Job-Id") != resumedID {
		t.Fatalf("HEAD of the finished upload through gosty-2: %d job %q", resp.StatusCode, resp.Header.Get("Gosty-Job-Id"))
	}
	if in := relayedIn(t, c, 0); in < float64(size-(off-part)) {
		t.Fatalf("gosty-0 counted %v relayed upload bytes, want at least %d", in, size-(off-part))
	}

	// DELETE through a node that does not hold the upload.
	other := h.create(0, 1000, meta)
	if resp, b = h.patch(2, other, 0, data[:100]); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PATCH of the other upload through gosty-2: %d %s", resp.StatusCode, b)
	}
	if files := uploadsOn(t, c, 0); len(files) != 2 {
		t.Fatalf("upload files on gosty-0: %v", files)
	}
	if resp, b = h.do(1, http.MethodDelete, other, nil, nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE through gosty-1: %d %s", resp.StatusCode, b)
	}
	if files := uploadsOn(t, c, 0); len(files) != 0 {
		t.Fatalf("upload files left on gosty-0 after the DELETE: %v", files)
	}
	resp, b = h.do(2, http.MethodHead, other, nil, nil)
	missing(t, "the deleted upload, through gosty-2", resp, b, http.MethodHead, http.StatusNotFound)

	// Uploads that are not there: tus's 404, wherever asked.
	hex := strings.Repeat("0123456789abcdef", 2)
	for _, tc := range []struct {
		what, id string
	}{
		{"an unknown upload of gosty-0", "gosty-0." + hex},
		{"an upload of a node not in the cluster", "nosuchnode." + hex},
		// A name that is an address is looked up among the members, as
		// any other, and is not one: nothing is relayed there.
		{"an upload named by an address", "127.0.101.1." + hex},
		{"a malformed id", "gosty-0." + hex[:20]},
	} {
		for _, m := range []string{http.MethodHead, http.MethodPatch, http.MethodDelete} {
			node := (h.last + 1) % 3
			if m == http.MethodPatch {
				resp, b = h.patch(node, "/api/v1/uploads/"+tc.id, 0, []byte("x"))
			} else {
				resp, b = h.do(node, m, "/api/v1/uploads/"+tc.id, nil, nil)
			}
			missing(t, tc.what+" through gosty-"+strconv.Itoa(node), resp, b, m, http.StatusNotFound)
		}
	}

	// Reads are local: each node is asked once it has applied the end.
	ref := e2e.WaitDone(t, 3*time.Minute, token, posted.ID, c.HTTP(2))
	resumed := e2e.WaitDone(t, 3*time.Minute, token, resumedID, c.HTTP(1))
	dRef, dRes := hlsDuration(t, c.HTTP(2), ref), hlsDuration(t, c.HTTP(1), resumed)
	t.Logf("POSTed job %s: %.3fs; tus job resumed across nodes %s: %.3fs (%s)", ref.ID, dRef, resumed.ID, dRes, time.Since(start).Round(time.Millisecond))
	if dRef != dRes || dRef < 7.8 || dRef > 8.2 {
		t.Fatalf("HLS durations: POST %.3f, tus %.3f; want equal, 8s", dRef, dRes)
	}

	// The CLI behind a stand-in for the Service: each new connection goes
	// to the next node, and the first that carries cutAfter bytes is cut.
	// It resumes through whichever node its new connection reaches.
	before := relayedIn(t, c, 0, 1, 2)
	svc := newServiceProxy(t, "127.0.101.201:0", cutAfter, strings.TrimPrefix(c.HTTP(0), "http://"),
		strings.TrimPrefix(c.HTTP(1), "http://"), strings.TrimPrefix(c.HTTP(2), "http://"))
	svc.armed.Store(true)
	stdout, stderr, code := gosty(t, "submit", "--server", svc.URL(), "--api-token-file", tokFile, "--resumable", "always",
		"--wait", "--output", "json", "--options", opts, src)
	if code != 0 {
		t.Fatalf("gosty submit --resumable always: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if svc.cuts.Load() != 1 || !strings.Contains(stderr, "resuming at byte") {
		t.Fatalf("%d cuts; stderr lacks the resume note:\n%s", svc.cuts.Load(), stderr)
	}
	var out httpapi.JobList
	if err := json.Unmarshal([]byte(stdout), &out); err != nil || len(out.Jobs) != 1 || out.Jobs[0].State != "done" {
		t.Fatalf("submit output: %v\n%s", err, stdout)
	}
	cli := e2e.WaitDone(t, 3*time.Minute, token, out.Jobs[0].ID, c.HTTP(0))
	if d := hlsDuration(t, c.HTTP(0), cli); d != dRef {
		t.Fatalf("the CLI's tus job lasts %.3f, the POSTed one %.3f", d, dRef)
	}
	relayed := relayedIn(t, c, 0, 1, 2) - before
	t.Logf("the CLI went through %d connections; %.0f bytes relayed to the upload's node", svc.conns.Load(), relayed)
	if relayed <= 0 {
		t.Fatal("the CLI's resume never went through a node other than the upload's")
	}

	// The owner dies: the others say so, 503 with Retry-After, naming it.
	dying := h.create(1, 1000, meta)
	if resp, b = h.patch(2, dying, 0, data[:100]); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PATCH through gosty-2: %d %s", resp.StatusCode, b)
	}
	c.Kill(1)
	killed := time.Now()
	resp, _ = h.do(0, http.MethodHead, dying, nil, nil)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("HEAD through gosty-0 with gosty-1 killed: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	resp, b = h.patch(2, dying, 100, data[100:1000])
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(b, &e); err != nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		e.Error.Code != "unavailable" || !strings.Contains(e.Error.Message, "node gosty-1") {
		t.Fatalf("PATCH through gosty-2 with gosty-1 killed: %d %s", resp.StatusCode, b)
	}
	t.Logf("with gosty-1 killed: %q (%s in all)", e.Error.Message, time.Since(start).Round(time.Millisecond))

	// Gone past --dead-server-timeout: 410, through either node (each
	// counts from when its gossip found gosty-1 dead: a second apart).
	var goneAfter time.Duration
	nodetest.WaitFor(t, deadTimeout+90*time.Second, "gosty-0 and gosty-2 to answer 410 for gosty-1's upload", func() bool {
		for _, i := range []int{0, 2} {
			resp, _, err := tusReq(t, http.MethodHead, c.HTTP(i)+dying, token, nil, nil)
			if err != nil || resp.StatusCode == http.StatusServiceUnavailable {
				return false
			}
		}
		goneAfter = time.Since(killed)
		return true
	})
	if goneAfter < deadTimeout {
		t.Fatalf("410 after %v, before the %v timeout", goneAfter, deadTimeout)
	}
	h.last = 0
	for _, m := range []string{http.MethodHead, http.MethodPatch, http.MethodDelete} {
		node := 2 - h.last // 2, 0, 2
		if m == http.MethodPatch {
			resp, b = h.patch(node, dying, 100, data[100:1000])
		} else {
			resp, b = h.do(node, m, dying, nil, nil)
		}
		missing(t, "an upload of gosty-1, gone, through gosty-"+strconv.Itoa(node), resp, b, m, http.StatusGone)
	}
	t.Logf("410 Gone %v after gosty-1 was killed: %s", goneAfter.Round(100*time.Millisecond), strings.TrimSpace(string(b)))

	// Back with its data dir: its upload is served again, and deleted
	// through another node.
	if err := c.Start(1); err != nil {
		t.Fatal(err)
	}
	nodetest.WaitReady(t, c.HTTP(1), 60*time.Second)
	nodetest.WaitFor(t, 60*time.Second, "gosty-0 to see gosty-1 alive again", func() bool {
		resp, _, err := tusReq(t, http.MethodHead, c.HTTP(0)+dying, token, nil, nil)
		return err == nil && resp.StatusCode == http.StatusOK && resp.Header.Get("Upload-Offset") == "100"
	})
	h.last = 0
	if resp, b = h.do(2, http.MethodDelete, dying, nil, nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE through gosty-2 of gosty-1's upload, back: %d %s", resp.StatusCode, b)
	}
	if files := uploadsOn(t, c, 1); len(files) != 0 {
		t.Fatalf("upload files left on gosty-1 after the DELETE: %v", files)
	}
	t.Logf("done in %v", time.Since(start).Round(time.Millisecond))
}
