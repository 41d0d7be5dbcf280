package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gosty/gosty/cluster"
)

// TestURLIngest: a source on a loopback address listed in --ingest-allow
// is fetched while the job shows ingesting with progress, then runs to
// done; a refused destination, a redirect to the metadata address, a
// source over --max-upload-bytes, a source that is not media and a
// canceled ingest end clearly; ingests no node runs are fetched again (or
// failed when this node may not fetch them).
func TestURLIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	dir := t.TempDir()
	clip, err := os.ReadFile(genClip(t, filepath.Join(dir, "clip.mp4"), "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=2",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"))
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	stopped := make(chan struct{}, 2)
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/gated/clip.mp4": // half, then waits for the test
			w.Header().Set("Content-Length", strconv.Itoa(len(clip)))
			w.Write(clip[:len(clip)/2])
			w.(http.Flusher).Flush()
			select {
			case <-gate:
				w.Write(clip[len(clip)/2:])
			case <-r.Context().Done():
				stopped <- struct{}{}
			}
		case "/clip.mp4":
			w.Write(clip)
		case "/metadata":
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
		case "/big.mp4":
			w.Header().Set("Content-Length", strconv.Itoa(3<<20))
			w.Write(make([]byte, 1<<10))
		case "/notes.txt":
			w.Write([]byte(strings.Repeat("not a video\n", 1000)))
		default:
			http.NotFound(w, r)
		}
	}))
	defer src.Close()
	n := startNode(t, filepath.Join(dir, "data"), func(c *Config) {
		c.IngestAllow = src.Listener.Addr().String() // 127.0.0.1:port, listed exactly
		c.MaxUploadBytes = 2 << 20
		c.MaxConcurrentUploads = 2 // fetches at once, too
	})
	heldIngest(t, n, src.URL+"/gated/clip.mp4?sig=secret", src.URL+"/gated/clip.mp4", func() { close(gate) })
	var j apiJob

	// Refused up front: an unlisted private address, another scheme.
	for _, u := range []string{"http://10.0.0.1/clip.mp4", "http://169.254.169.254/", "ftp://" + src.Listener.Addr().String() + "/x"} {
		if code, body := postSource(t, n.base, u, ""); code != http.StatusBadRequest || !strings.Contains(string(body), "source_url") {
			t.Errorf("%s: %d %s", u, code, body)
		}
	}
	// Failed with a reason: refused at dial time after a redirect, too
	// large, not media.
	for path, want := range map[string]string{
		"/metadata":  "169.254.169.254) is not in --ingest-allow",
		"/big.mp4":   "--max-upload-bytes",
		"/notes.txt": "not usable media",
		"/gone.mp4":  "404 Not Found",
	} {
		code, body := postSource(t, n.base, src.URL+path, "")
		if code != http.StatusAccepted {
			t.Fatalf("%s: %d %s", path, code, body)
		}
		json.Unmarshal(body, &j)
		if got := waitJob(t, n.base, j.ID, 30*time.Second); got.State != "failed" || !strings.Contains(got.Error, want) {
			t.Errorf("%s: %s %q, want failed with %q", path, got.State, got.Error, want)
		}
	}

	// Canceling an ingesting job stops its fetch.
	gate = make(chan struct{})
	code, body := postSource(t, n.base, src.URL+"/gated/clip.mp4", "")
	json.Unmarshal(body, &j)
	waitFor(t, 10*time.Second, "the second fetch under way", func() bool {
		got, _ := getJob(t, n.base, j.ID)
		return got.Progress > 0
	})
	first := j.ID
	// Two fetches at once on this node; a third is 429.
	code, body = postSource(t, n.base, src.URL+"/gated/clip.mp4", "")
	json.Unmarshal(body, &j)
	if code != http.StatusAccepted {
		t.Fatalf("second fetch: %d %s", code, body)
	}
	if code, body := postSource(t, n.base, src.URL+"/gated/clip.mp4", ""); code != http.StatusTooManyRequests || !strings.Contains(string(body), "too_many_uploads") {
		t.Fatalf("third fetch: %d %s", code, body)
	}
	for _, id := range []string{first, j.ID} {
		req, _ := http.NewRequest(http.MethodDelete, n.base+"/api/v1/jobs/"+id, nil)
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("cancel: %v %v", resp, err)
		}
		select {
		case <-stopped:
		case <-time.After(10 * time.Second):
			t.Fatal("the fetch of a canceled job goes on")
		}
	}

	// Ingests no node runs are fetched again: one of a node that is gone
	// (the leader takes it over, here without the grace it gives gossip),
	// one of this node that it does not run (it restarted), both with the
	// options their records keep; one whose source this node may not
	// fetch fails, naming the gone node and the reason.
	n.ingest.mu.Lock()
	n.ingest.grace = 0
	n.ingest.mu.Unlock()
	for _, origin := range []string{"gone-node", n.cfg.Name} {
		id := newJobID()
		rec := cluster.IngestJob{Job: cluster.Job{ID: id, Name: "x", Origin: origin, SourceURL: src.URL + "/clip.mp4",
			IngestOptions: []byte(`{"chunk_seconds":3}`)}}
		if err := n.log.Propose(context.Background(), cluster.OpJobIngest, rec); err != nil {
			t.Fatal(err)
		}
		if got := waitJob(t, n.base, id, time.Minute); got.State != "done" {
			t.Errorf("orphan of %s: %s %q", origin, got.State, got.Error)
		}
		n.store.FSM().Read(func(st *cluster.State) {
			if j, _ := st.JobRecord(id); j.Origin != n.cfg.Name || j.ChunkSeconds != 3 {
				t.Errorf("orphan of %s: fetched by %s with %v s chunks, want %s and the record's 3", origin, j.Origin, j.ChunkSeconds, n.cfg.Name)
			}
		})
	}
	id := newJobID()
	rec := cluster.IngestJob{Job: cluster.Job{ID: id, Name: "x", Origin: "gone-node", SourceURL: "http://10.0.0.1/clip.mp4"}}
	if err := n.log.Propose(context.Background(), cluster.OpJobIngest, rec); err != nil {
		t.Fatal(err)
	}
	if got := waitJob(t, n.base, id, 10*time.Second); got.State != "failed" || !strings.Contains(got.Error, "gone-node") ||
		!strings.Contains(got.Error, "--ingest-allow") {
		t.Errorf("orphan this node may not fetch: %s %q", got.State, got.Error)
	}
}

// Without --ingest-allow a URL submit is refused, naming the flag.
func TestURLIngestOff(t *testing.T) {
	n := startNode(t, t.TempDir(), nil)
	code, body := postSource(t, n.base, "http://127.0.0.1:1/clip.mp4", "")
	if code != http.StatusBadRequest || !strings.Contains(string(body), "--ingest-allow") {
		t.Fatalf("%d %s", code, body)
	}
}

// heldIngest submits source u, whose transfer the test holds half-way until
// release: the accepted job is ingesting, from wantURL (u without its
// query) and named clip.mp4; it shows ingesting with progress between 30
// and 70 % (bytes / size), and once released it runs to done.
func heldIngest(t *testing.T, n *testNode, u, wantURL string, release func()) {
	t.Helper()
	waitFor(t, 10*time.Second, "log version 3", func() bool { return n.store.FSM().LogVersion() >= cluster.LogV3 })
	code, body := postSource(t, n.base, u, `{"chunk_seconds":2}`)
	if code != http.StatusAccepted {
		t.Fatalf("submit %s: %d %s", u, code, body)
	}
	var j struct {
		apiJob
		SourceURL string `json:"source_url"`
	}
	json.Unmarshal(body, &j)
	if j.State != "ingesting" || j.SourceURL != wantURL || j.Name != "clip.mp4" {
		t.Fatalf("accepted job: %s %q %q", j.State, j.SourceURL, j.Name)
	}
	waitFor(t, 10*time.Second, "ingest progress", func() bool {
		got, _ := getJob(t, n.base, j.ID)
		return got.State == "ingesting" && got.Progress > 0.3 && got.Progress < 0.7
	})
	release()
	if done := waitJob(t, n.base, j.ID, 2*time.Minute); done.State != "done" || done.Source.Video == nil {
		t.Fatalf("ingested job: %s (%s)", done.State, done.Error)
	}
}

func postSource(t *testing.T, base, u, options string) (int, []byte) {
	t.Helper()
	b := fmt.Sprintf(`{"source_url":%q}`, u)
	if options != "" {
		b = fmt.Sprintf(`{"source_url":%q,"options":%s}`, u, options)
	}
	return doPost(t, base+"/api/v1/jobs", "application/json", strings.NewReader(b))
}
