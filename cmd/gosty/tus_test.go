package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/node/nodetest"
)

// cutProxy forwards TCP connections to a node (or, like a Service with no
// affinity, each new connection to the next of several nodes) and, while
// armed, cuts the first connection that has sent more than cutAfter bytes
// upstream: both sides are closed mid-body, as a dropped link would.
type cutProxy struct {
	ln       net.Listener
	targets  []string
	conns    atomic.Int64 // connections so far; connection k goes to targets[k % len]
	cutAfter int64
	armed    atomic.Bool
	cuts     atomic.Int32
	wg       sync.WaitGroup
}

func newCutProxy(t *testing.T, listen, target string, cutAfter int64) *cutProxy {
	t.Helper()
	return newServiceProxy(t, listen, cutAfter, target)
}

// newServiceProxy is a cutProxy that spreads connections over targets in
// turn.
func newServiceProxy(t *testing.T, listen string, cutAfter int64, targets ...string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, targets: targets, cutAfter: cutAfter}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *cutProxy) URL() string { return "http://" + p.ln.Addr().String() }

func (p *cutProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.pipe(c)
		}()
	}
}

func (p *cutProxy) pipe(c net.Conn) {
	defer c.Close()
	up, err := net.Dial("tcp", p.targets[(p.conns.Add(1)-1)%int64(len(p.targets))])
	if err != nil {
		return
	}
	defer up.Close()
	go func() {
		io.Copy(c, up)
		c.Close()
	}()
	var sent int64
	buf := make([]byte, 16<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if p.armed.Load() && sent+int64(n) > p.cutAfter && p.armed.CompareAndSwap(true, false) {
				up.Write(buf[:p.cutAfter-sent])
				p.cuts.Add(1)
				// A hard cut: RST rather than a clean FIN on both sides.
				if tc, ok := up.(*net.TCPConn); ok {
					tc.SetLinger(0)
				}
				if tc, ok := c.(*net.TCPConn); ok {
					tc.SetLinger(0)
				}
				return
			}
			if _, werr := up.Write(buf[:n]); werr != nil {
				return
			}
			sent += int64(n)
		}
		if err != nil {
			return
		}
	}
}

func hlsDuration(t *testing.T, base string, j httpapi.JobView) float64 {
	t.Helper()
	return hlsDurationAuth(t, base, "", j)
}

// hlsDurationAuth is hlsDuration with the API token in the requests'
// header (files need it on a node with tokens and public playback).
func hlsDurationAuth(t *testing.T, base, token string, j httpapi.JobView) float64 {
	t.Helper()
	args := []string{"-v", "error", "-protocol_whitelist", "http,tcp"}
	if token != "" {
		args = append(args, "-headers", "Authorization: Bearer "+token+"\r\n")
	}
	args = append(args, "-show_entries", "format=duration", "-of", "csv=p=0", base+j.Outputs.HLS)
	out, err := exec.Command("ffprobe", args...).Output()
	if err != nil {
		t.Fatalf("ffprobe HLS of %s: %v", j.ID, err)
	}
	d, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		t.Fatalf("HLS duration %q", out)
	}
	return d
}

func tusReq(t *testing.T, method, u, token string, body io.Reader, hdr map[string]string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Authorization", "Bearer "+token)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if cl, ok := hdr["Content-Length"]; ok {
		req.ContentLength, _ = strconv.ParseInt(cl, 10, 64)
	}
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// TestTusResumeAfterKilledConnection runs a real node process on
// 127.0.70.x: a tus upload whose connection a proxy kills mid-body resumes
// with HEAD and PATCH from the offset the node kept, becomes a job, and its
// output lasts exactly as long as a POSTed upload of the same file. Then
// `gosty submit --resumable always` gets through the same cut by itself.
func TestTusResumeAfterKilledConnection(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a node process and ffmpeg")
	}
	dir := t.TempDir()
	const token = "tus-test-token"
	tokFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := e2e.FastCluster(t, 70, 1, "--preset", "ultrafast", "--api-token-file", tokFile)
	if err := c.Start(0); err != nil {
		t.Fatal(err)
	}
	base := c.HTTP(0)
	nodetest.WaitReady(t, base, 30*time.Second)
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
	cutAfter := size * 2 / 5
	proxy := newCutProxy(t, "127.0.70.200:0", strings.TrimPrefix(base, "http://"), cutAfter)
	opts := `{"renditions":["360p","240p"],"chunk_seconds":2}`

	// The reference: the same file POSTed.
	start := time.Now()
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/jobs?filename=clip.mp4&options="+url.QueryEscape(opts), bytes.NewReader(data))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var posted httpapi.JobView
	json.NewDecoder(resp.Body).Decode(&posted)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d", resp.StatusCode)
	}

	// tus by hand: create, PATCH everything through the proxy, which cuts.
	meta := "filename " + base64.StdEncoding.EncodeToString([]byte("clip.mp4")) +
		",options " + base64.StdEncoding.EncodeToString([]byte(opts))
	resp, b, err := tusReq(t, http.MethodPost, proxy.URL()+"/api/v1/uploads/", token, nil,
		map[string]string{"Upload-Length": strconv.FormatInt(size, 10), "Upload-Metadata": meta})
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %v %v %s", err, resp, b)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	upload := base + loc.Path
	proxy.armed.Store(true)
	resp, b, err = tusReq(t, http.MethodPatch, proxy.URL()+loc.Path, token, bytes.NewReader(data), map[string]string{
		"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream", "Content-Length": strconv.FormatInt(size, 10)})
	if err == nil {
		t.Fatalf("the cut PATCH got an answer: %d %s", resp.StatusCode, b)
	}
	if proxy.cuts.Load() != 1 {
		t.Fatalf("the proxy cut %d connections", proxy.cuts.Load())
	}
	// HEAD (it waits for the cut PATCH to let go of the upload).
	resp, _, err = tusReq(t, http.MethodHead, upload, token, nil, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD: %v %v", err, resp)
	}
	off, _ := strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
	t.Logf("cut after %d of %d bytes; the node kept %d", cutAfter, size, off)
	if off <= 0 || off > cutAfter {
		t.Fatalf("offset after the cut: %d (cut at %d of %d)", off, cutAfter, size)
	}
	if uploads, _ := filepath.Glob(filepath.Join(c.Root, "*", "uploads", "*.info")); len(uploads) != 1 {
		t.Fatalf("upload files on the node: %v", uploads)
	}
	resp, b, err = tusReq(t, http.MethodPatch, upload, token, bytes.NewReader(data[off:]), map[string]string{
		"Upload-Offset": strconv.FormatInt(off, 10), "Content-Type": "application/offset+octet-stream"})
	if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Gosty-Job-Id") == "" {
		t.Fatalf("resumed PATCH: %v %v %s", err, resp, b)
	}
	resumedID := resp.Header.Get("Gosty-Job-Id")
	if uploads, _ := filepath.Glob(filepath.Join(c.Root, "*", "uploads", "*")); len(uploads) != 0 {
		t.Fatalf("upload files left after the finish: %v", uploads)
	}

	ref := e2e.WaitDone(t, 3*time.Minute, token, posted.ID, base)
	resumed := e2e.WaitDone(t, 3*time.Minute, token, resumedID, base)
	dRef, dRes := hlsDurationAuth(t, base, token, ref), hlsDurationAuth(t, base, token, resumed)
	t.Logf("POSTed job %s: %.3fs; resumed tus job %s: %.3fs (%s)", ref.ID, dRef, resumed.ID, dRes, time.Since(start).Round(time.Millisecond))
	if dRef != dRes || dRef < 7.8 || dRef > 8.2 {
		t.Fatalf("HLS durations: POST %.3f, tus %.3f; want equal, 8s", dRef, dRes)
	}
	// Both uploads count (the POST and the tus one).
	if m := regexp.MustCompile(`(?m)^gosty_upload_bytes_total (\S+)$`).FindStringSubmatch(e2e.Metrics(t, base)); m == nil {
		t.Fatal("no gosty_upload_bytes_total")
	} else if v, _ := strconv.ParseFloat(m[1], 64); v < float64(2*size) {
		t.Fatalf("gosty_upload_bytes_total %v, want ≥ %d", v, 2*size)
	}

	// The CLI through the same cut, on its own.
	proxy.armed.Store(true)
	stdout, stderr, code := gosty(t, "submit", "--server", proxy.URL(), "--api-token-file", tokFile, "--resumable", "always",
		"--wait", "--output", "json", "--progress", "on", "--options", opts, src)
	if code != 0 {
		t.Fatalf("gosty submit --resumable always: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if proxy.cuts.Load() != 2 {
		t.Fatalf("the proxy cut %d connections, want 2", proxy.cuts.Load())
	}
	if !strings.Contains(stderr, "resuming at byte") || !strings.Contains(stderr, "upload    clip.mp4") {
		t.Fatalf("stderr lacks the resume note or the upload bar:\n%s", stderr)
	}
	var out httpapi.JobList
	if err := json.Unmarshal([]byte(stdout), &out); err != nil || len(out.Jobs) != 1 || out.Jobs[0].State != "done" {
		t.Fatalf("submit output: %v\n%s", err, stdout)
	}
	if d := hlsDurationAuth(t, base, token, out.Jobs[0]); d != dRef {
		t.Fatalf("CLI tus job lasts %.3f, the POSTed one %.3f", d, dRef)
	}
	if uploads, _ := filepath.Glob(filepath.Join(c.Root, "*", "uploads", "*")); len(uploads) != 0 {
		t.Fatalf("upload files left after the CLI upload: %v", uploads)
	}
}

func TestResumableFlag(t *testing.T) {
	if _, stderr, code := gosty(t, "submit", "--resumable", "sometimes", "clip.mp4"); code != exitUsage || !strings.Contains(stderr, "--resumable") {
		t.Fatalf("--resumable sometimes: exit %d, %s", code, stderr)
	}
	// The node refuses a TTL too short to finish anything.
	if _, stderr, code := gosty(t, "node", "--data-dir", t.TempDir(), "--upload-ttl", "5s", "--http-addr", "127.0.70.9:0"); code == 0 || !strings.Contains(stderr, "upload TTL") {
		t.Fatalf("--upload-ttl 5s: exit %d, %s", code, stderr)
	}
	for _, tc := range []struct {
		mode string
		size int64
		want bool
	}{{"auto", resumableThreshold - 1, false}, {"auto", resumableThreshold, true}, {"always", 1, true}, {"never", 1 << 40, false}} {
		if got := useResumable(tc.mode, tc.size); got != tc.want {
			t.Errorf("useResumable(%q, %d) = %v", tc.mode, tc.size, got)
		}
	}
}
