package main

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/node/nodetest"
)

// TestCLISubmitURL: on two node processes, a URL submit to one shows
// ingesting with its fetch's progress on the other (asked of the fetching
// node), then runs to done; `gosty submit --url --wait` runs to done; a
// destination the allow list refuses is a refused request (exit 3).
func TestCLISubmitURL(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node processes and ffmpeg")
	}
	dir := t.TempDir()
	clip := nodetest.GenClip(t, filepath.Join(dir, "clip.mp4"), "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=2",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
	data, err := os.ReadFile(clip)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.118.200:0")
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/gated/clip.mp4" { // half, then waits for the test
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			w.Write(data[:len(data)/2])
			w.(http.Flusher).Flush()
			select {
			case <-gate:
				w.Write(data[len(data)/2:])
			case <-r.Context().Done():
			}
			return
		}
		http.ServeFile(w, r, clip)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	defer func() {
		select {
		case <-gate:
		default:
			close(gate)
		}
	}()

	c := e2e.FastCluster(t, 118, 2, "--preset", "ultrafast", "--ingest-allow", ln.Addr().String())
	c.StartAll(t, 2)
	c.Agree(t, []int{0, 1}, 2, 2)
	// URL ingest is written from log version 3 on (409 before).
	for i := range 2 {
		nodetest.WaitFor(t, 30*time.Second, "log version 3", func() bool {
			st, err := c.Status(i)
			return err == nil && st.LogVersion >= cluster.LogV3
		})
	}

	code, j := e2e.SubmitURL(t, c.HTTP(1), "http://"+ln.Addr().String()+"/gated/clip.mp4")
	if code != http.StatusAccepted || j.State != "ingesting" {
		t.Fatalf("URL submit: %d %+v", code, j)
	}
	e2e.WaitJob(t, 20*time.Second, "the other node to show the fetch's progress", "", j.ID, func(j httpapi.JobView) bool {
		return j.State == "ingesting" && j.Progress > 0.3 && j.Progress < 0.7
	}, c.HTTP(0))
	close(gate)
	e2e.WaitDone(t, 2*time.Minute, "", j.ID, c.HTTP(0))

	stdout, stderr, code := gosty(t, "submit", "--server", c.HTTP(0), "--wait", "--output", "json",
		"--url", "http://"+ln.Addr().String()+"/in/clip.mp4")
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	var out httpapi.JobList
	if err := json.Unmarshal([]byte(stdout), &out); err != nil || len(out.Jobs) != 1 {
		t.Fatalf("stdout: %v\n%s", err, stdout)
	}
	if j := out.Jobs[0]; j.State != "done" || j.Name != "clip.mp4" || j.Outputs.HLS == "" {
		t.Fatalf("job: %+v", j)
	}
	_, stderr, code = gosty(t, "submit", "--server", c.HTTP(0), "--url", "http://169.254.169.254/latest/meta-data/")
	if code != 3 || !strings.Contains(stderr, "not in --ingest-allow") {
		t.Fatalf("metadata address: exit %d, %s", code, stderr)
	}
}
