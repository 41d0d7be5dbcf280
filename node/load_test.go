package node

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"github.com/gosty/gosty/node/nodetest"
)

// chunked as an upload's Content-Type makes loadClient send the body
// without a length.
const chunked = "application/x-gosty-test-chunked"

// loadClient is the load test's HTTP client: loopback only, keep-alive,
// and Expect: 100-continue on uploads so that a refused upload (429, 413)
// never has its body sent, as curl does for large bodies.
type loadClient struct {
	base  string
	http  *http.Client
	token string

	mu     sync.Mutex
	errs   []string
	counts map[string]int
	ids    []string
}

func (l *loadClient) fail(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, fmt.Sprintf(format, args...))
}

func (l *loadClient) count(what string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.counts[what]++
}

func (l *loadClient) do(method, path string, body []byte, hdr map[string]string) (int, http.Header, []byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
		if hdr["Content-Type"] == chunked {
			r = io.MultiReader(r) // no length: sent chunked
			hdr["Content-Type"] = "application/octet-stream"
		}
	}
	req, err := http.NewRequest(method, l.base+path, r)
	if err != nil {
		return 0, nil, nil, err
	}
	if l.token != "" {
		req.Header.Set("Authorization", "Bearer "+l.token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := l.http.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

// upload sends one upload and checks the answer: 201, 429 (with
// Retry-After) or 413 for over-size ones; anything else fails the test. A
// created job is canceled and deleted at once, so that the encode side
// stays idle.
func (l *loadClient) upload(body []byte, ct string, oversize bool, retries int) {
	path := "/api/v1/jobs"
	if ct == chunked {
		path += "?filename=big.mp4" // a raw upload; its size shows only as it streams
	}
	code, h, b, err := l.do("POST", path, body, map[string]string{"Content-Type": ct, "Expect": "100-continue"})
	switch {
	case err != nil:
		l.fail("upload: %v", err)
	case code == http.StatusRequestEntityTooLarge && oversize:
		l.count("413")
	case oversize && code != http.StatusTooManyRequests:
		l.fail("over-size upload: %d %s", code, b)
	case code == http.StatusTooManyRequests:
		if h.Get("Retry-After") == "" {
			l.fail("429 without Retry-After")
		}
		l.count("429")
		// A client backs off and tries again (sooner than Retry-After
		// says, to keep the test short).
		if retries > 0 {
			time.Sleep(50 * time.Millisecond)
			l.upload(body, ct, oversize, retries-1)
		}
	case code == http.StatusCreated:
		l.count("201")
		var j struct{ ID string }
		if err := json.Unmarshal(b, &j); err != nil || j.ID == "" {
			l.fail("201 body %s", b)
			return
		}
		l.mu.Lock()
		l.ids = append(l.ids, j.ID)
		l.mu.Unlock()
		l.remove(j.ID)
	default:
		l.fail("upload: %d %s", code, b)
	}
}

// remove cancels a job and deletes it.
func (l *loadClient) remove(id string) {
	for range 50 {
		code, _, b, err := l.do("DELETE", "/api/v1/jobs/"+id, nil, nil)
		switch {
		case err != nil:
			l.fail("delete %s: %v", id, err)
			return
		case code == http.StatusNoContent || code == http.StatusNotFound:
			return
		case code == http.StatusOK || code == http.StatusConflict:
			// Canceled (or finishing): delete it next.
		default:
			l.fail("delete %s: %d %s", id, code, b)
			return
		}
	}
	l.fail("job %s would not go away", id)
}

// poll reads the job list and recent jobs until stop closes.
func (l *loadClient) poll(stop <-chan struct{}) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		code, _, b, err := l.do("GET", "/api/v1/jobs", nil, nil)
		if err != nil || code != http.StatusOK {
			l.fail("GET /api/v1/jobs: %d %v %s", code, err, b)
		}
		l.mu.Lock()
		var id string
		if len(l.ids) > 0 {
			id = l.ids[(len(l.ids)-1-i%4+len(l.ids))%len(l.ids)]
		}
		l.mu.Unlock()
		if id != "" {
			code, _, b, err := l.do("GET", "/api/v1/jobs/"+id, nil, nil)
			if err != nil || (code != http.StatusOK && code != http.StatusNotFound) {
				l.fail("GET /api/v1/jobs/%s: %d %v %s", id, code, err, b)
			}
		}
		l.count("poll")
		time.Sleep(5 * time.Millisecond)
	}
}

// liveHeap is the live heap after collecting garbage, the least of a few
// readings (a background tick can hold a little garbage at any instant).
func liveHeap() uint64 {
	best := ^uint64(0)
	for range 5 {
		runtime.GC()
		debug.FreeOSMemory()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		best = min(best, m.HeapAlloc)
		time.Sleep(50 * time.Millisecond)
	}
	return best
}

// TestUploadLoad puts one node under bounded loopback load: rounds of 40
// uploads, 8 at a time, against --max-concurrent-uploads 4 and a 1 MiB
// --max-upload-bytes, with over-size uploads mixed in and 4 clients polling
// the job list and jobs. Every upload is answered 201, 429 or (over-size)
// 413, every poll 200 (404 for a job just deleted), with no connection
// errors. After a warm-up round the live heap is measured; after two more
// rounds it must not have grown by more than 64 KiB per accepted upload
// (an upload is streamed to disk: a buffered upload, a leaked request or a
// job that outlives its deletion would show far beyond that).
func TestUploadLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test: runs ffprobe on many uploads")
	}
	dir := t.TempDir()
	tokens := writeSecret(t, dir, "tokens", "load-token\n")
	n := startNode(t, filepath.Join(dir, "data"), func(c *Config) {
		c.Slots = 1
		c.MaxConcurrentUploads = 4
		c.MaxUploadBytes = 1 << 20
		c.APITokenFile = tokens
		c.GCGrace = 0
		// Request logs would pile up in the test's own memory.
		c.Logger = slog.New(slog.NewJSONHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})

	// Three distinct small clips (distinct blobs), each well over 64 KiB
	// so that a buffered upload would show in the heap.
	type clip struct {
		body []byte
		ct   string
	}
	var clips []clip
	for i := range 3 {
		p := genClip(t, filepath.Join(dir, fmt.Sprintf("c%d.mp4", i)), "-f", "lavfi",
			"-i", fmt.Sprintf("testsrc2=size=160x90:rate=25:duration=2,noise=alls=%d:allf=t", 20+i*10),
			"-c:v", "libx264", "-preset", "ultrafast", "-crf", "26", "-pix_fmt", "yuv420p")
		body, ct := nodetest.Form(t, p, "")
		if body.Len() < 128<<10 || body.Len() > 1<<20 {
			t.Fatalf("clip %d is %d bytes; want 128 KiB..1 MiB", i, body.Len())
		}
		clips = append(clips, clip{body.Bytes(), ct})
	}
	big := make([]byte, 3<<19) // 1.5 MiB
	rand.Read(big)
	tr := &http.Transport{MaxIdleConnsPerHost: 16, ExpectContinueTimeout: 5 * time.Second}
	l := &loadClient{base: n.base, http: &http.Client{Transport: tr, Timeout: time.Minute}, token: "load-token", counts: map[string]int{}}

	round := func() {
		stop := make(chan struct{})
		var pollers sync.WaitGroup
		for range 4 {
			pollers.Go(func() { l.poll(stop) })
		}
		work := make(chan int)
		var uploaders sync.WaitGroup
		for range 8 {
			uploaders.Go(func() {
				for i := range work {
					switch i % 20 {
					case 9:
						l.upload(big, "application/octet-stream", true, 0)
						continue
					case 19:
						l.upload(big, chunked, true, 200)
						continue
					}
					c := clips[i%len(clips)]
					l.upload(c.body, c.ct, false, 200)
				}
			})
		}
		for i := range 40 {
			work <- i
		}
		close(work)
		uploaders.Wait()
		close(stop)
		pollers.Wait()
		// Quiet again: no job left, nothing running, no upload slot taken.
		waitFor(t, time.Minute, "the node to settle", func() bool {
			code, _, b, err := l.do("GET", "/api/v1/jobs", nil, nil)
			return err == nil && code == 200 && bytes.Equal(bytes.TrimSpace(b), []byte(`{"jobs":[]}`)) && n.worker.active() == 0
		})
		tr.CloseIdleConnections()
		l.mu.Lock()
		l.ids = nil
		l.mu.Unlock()
	}
	created := func() int {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.counts["201"]
	}

	start := time.Now()
	round() // warm-up: pools, caches, connections, first raft segments
	time.Sleep(200 * time.Millisecond)
	before, done := liveHeap(), created()
	for range 2 {
		round()
	}
	time.Sleep(200 * time.Millisecond)
	after, accepted := liveHeap(), created()-done
	runtime.KeepAlive(clips) // the test's own data stays live in both readings
	runtime.KeepAlive(big)

	l.mu.Lock()
	defer l.mu.Unlock()
	t.Logf("%v: answers %v; live heap %.1f MiB → %.1f MiB over %d accepted uploads (%+.1f KiB each)",
		time.Since(start).Round(time.Millisecond), l.counts, float64(before)/(1<<20), float64(after)/(1<<20),
		accepted, (float64(after)-float64(before))/1024/float64(max(accepted, 1)))
	if len(l.errs) > 0 {
		t.Fatalf("%d bad answers, e.g. %q", len(l.errs), l.errs[:min(len(l.errs), 5)])
	}
	if accepted < 40 || l.counts["413"] != 12 {
		t.Fatalf("too few uploads went through to measure: %v", l.counts)
	}
	if growth := int64(after) - int64(before); growth > int64(accepted)*64<<10 {
		t.Fatalf("live heap grew %d KiB over %d uploads: more than 64 KiB each", growth>>10, accepted)
	}
}
