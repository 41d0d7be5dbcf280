package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/gosty/gosty/cluster"
)

func TestUI(t *testing.T) {
	js := bytes.Repeat([]byte("console.log('gosty');\n"), 200)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(js)
	zw.Close()
	files := fstest.MapFS{
		"index.html":                 {Data: []byte(`<!doctype html><script src="assets/main-ABCD1234.js"></script>`)},
		"assets/main-ABCD1234.js":    {Data: js},
		"assets/main-ABCD1234.js.gz": {Data: gz.Bytes()},
		"assets/main-WXYZ5678.css":   {Data: []byte("body{}")},
		"assets/hls.js-LICENSE.txt":  {Data: []byte("Apache")},
	}
	e := newEnv(t, func(c *Config) { c.UI = files })

	resp, body := do(t, "GET", e.srv.URL+"/", nil, nil)
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte("main-ABCD1234.js")) {
		t.Fatalf("index: %d %s", resp.StatusCode, body)
	}
	h := resp.Header
	if h.Get("Content-Type") != "text/html; charset=utf-8" || h.Get("Cache-Control") != "no-cache" ||
		!strings.Contains(h.Get("Content-Security-Policy"), "script-src 'self'") || h.Get("ETag") == "" {
		t.Fatalf("index headers: %v", h)
	}
	resp, _ = do(t, "GET", e.srv.URL+"/", nil, map[string]string{"If-None-Match": h.Get("ETag")})
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("revalidated index: %d", resp.StatusCode)
	}
	resp, body = do(t, "HEAD", e.srv.URL+"/", nil, nil)
	if resp.StatusCode != 200 || len(body) != 0 {
		t.Fatalf("HEAD /: %d %q", resp.StatusCode, body)
	}

	// http.Get asks for gzip itself and decodes transparently; ask
	// explicitly to see the encoded bytes.
	resp, body = do(t, "GET", e.srv.URL+"/assets/main-ABCD1234.js", nil, map[string]string{"Accept-Encoding": "gzip"})
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" || !bytes.Equal(body, gz.Bytes()) {
		t.Fatalf("gzip asset: %d %v (%d bytes)", resp.StatusCode, resp.Header, len(body))
	}
	if resp.Header.Get("Cache-Control") != cacheImmutable || resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" ||
		resp.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("asset headers: %v", resp.Header)
	}
	gzTag := resp.Header.Get("ETag")
	resp, body = do(t, "GET", e.srv.URL+"/assets/main-ABCD1234.js", nil, map[string]string{"Accept-Encoding": "identity"})
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "" || !bytes.Equal(body, js) {
		t.Fatalf("plain asset: %d %v", resp.StatusCode, resp.Header)
	}
	if resp.Header.Get("ETag") == gzTag {
		t.Fatal("the gzip and plain representations share an ETag")
	}
	resp, _ = do(t, "GET", e.srv.URL+"/assets/main-ABCD1234.js", nil, map[string]string{"Accept-Encoding": "gzip;q=0"})
	if resp.Header.Get("Content-Encoding") != "" {
		t.Fatal("gzip sent though q=0")
	}
	resp, _ = do(t, "GET", e.srv.URL+"/assets/main-WXYZ5678.css", nil, nil)
	if resp.Header.Get("Content-Type") != "text/css; charset=utf-8" || resp.Header.Get("Cache-Control") != cacheImmutable {
		t.Fatalf("css headers: %v", resp.Header)
	}
	resp, _ = do(t, "GET", e.srv.URL+"/assets/hls.js-LICENSE.txt", nil, nil)
	if resp.Header.Get("Cache-Control") != cacheRevalidate {
		t.Fatalf("an unhashed name must be revalidated: %v", resp.Header)
	}
	for _, p := range []string{"/assets/nope.js", "/assets/../index.html", "/assets/main-ABCD1234.js.gz", "/index.html"} {
		resp, body = do(t, "GET", e.srv.URL+p, nil, nil)
		if resp.StatusCode != 404 {
			t.Errorf("%s: %d %s", p, resp.StatusCode, body)
		}
	}
	// The API keeps its routes and its JSON 404.
	resp, body = do(t, "GET", e.srv.URL+"/api/v1/nope", nil, nil)
	if code, _ := errCode(t, body); resp.StatusCode != 404 || code != "not_found" {
		t.Fatalf("unknown API route: %d %s", resp.StatusCode, body)
	}
	resp, _ = do(t, "GET", e.srv.URL+"/healthz", nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
}

func TestUINotBuilt(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.UI = fstest.MapFS{".keep": {}} })
	resp, body := do(t, "GET", e.srv.URL+"/", nil, nil)
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte("make ui")) {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

func jobList(t *testing.T, ev sseEvent) JobList {
	t.Helper()
	if ev.event != "jobs" {
		t.Fatalf("event %+v, want jobs", ev)
	}
	var l JobList
	if err := json.Unmarshal([]byte(ev.data), &l); err != nil {
		t.Fatal(err)
	}
	return l
}

// nextEvent skips pings.
func nextEvent(t *testing.T, ch <-chan sseEvent) sseEvent {
	t.Helper()
	for {
		if ev := next(t, ch); ev.comment != "ping" {
			return ev
		}
	}
}

func TestListEvents(t *testing.T) {
	e := newEnv(t, nil)
	e.api.listGap = time.Millisecond
	e.jobs.put(sampleJob())
	e.jobs.setProgress("j1", 0.1)

	ctx, cancel := context.WithCancel(t.Context())
	resp, ch := openEvents(t, ctx, e.srv.URL+"/api/v1/events", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	l := jobList(t, nextEvent(t, ch))
	if len(l.Jobs) != 1 || l.Jobs[0].ID != "j1" || l.Jobs[0].Progress != 0.1 {
		t.Fatalf("snapshot %+v", l)
	}

	// A new job is sent alone.
	j2 := sampleJob()
	j2.ID, j2.State = "j2", cluster.JobQueued
	e.jobs.put(j2)
	if v := jobEvent(t, nextEvent(t, ch)); v.ID != "j2" || v.State != cluster.JobQueued {
		t.Fatalf("new job %+v", v)
	}
	// A change that leaves every view as it was sends nothing: the next
	// event is j1's progress.
	e.jobs.setProgress("j1", 0.1)
	e.jobs.setProgress("j1", 0.6)
	if v := jobEvent(t, nextEvent(t, ch)); v.ID != "j1" || v.Progress != 0.6 {
		t.Fatalf("progress %+v", v)
	}
	// Terminal states do not end the list stream.
	e.jobs.setState("j2", cluster.JobFailed)
	if v := jobEvent(t, nextEvent(t, ch)); v.ID != "j2" || v.State != cluster.JobFailed {
		t.Fatalf("state %+v", v)
	}
	e.jobs.remove("j2")
	ev := nextEvent(t, ch)
	if ev.event != "deleted" || ev.data != `{"id":"j2"}` {
		t.Fatalf("want deleted j2, got %+v", ev)
	}

	// A reconnecting client gets a fresh snapshot; clients that go away
	// end their handlers.
	_, ch2 := openEvents(t, ctx, e.srv.URL+"/api/v1/events", map[string]string{"Last-Event-ID": "5"})
	if l := jobList(t, nextEvent(t, ch2)); len(l.Jobs) != 1 {
		t.Fatalf("second snapshot %+v", l)
	}
	cancel()
	closed := make(chan struct{})
	go func() { e.srv.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("list stream handlers did not end after their clients left")
	}
}
