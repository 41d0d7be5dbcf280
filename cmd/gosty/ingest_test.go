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
	for i := range 2 {
		if err := c.Start(i); err != nil {
			t.Fatal(err)
		}
	}
	c.Agree(t, []int{0, 1}, 2, 2)
	// URL ingest is written from log version 3 on (409 before).
	for i := range 2 {
		nodetest.WaitFor(t, 30*time.Second, "log version 3", func() bool {
			var st struct {
				LogVersion int `json:"log_version"`
			}
			return e2e.GetJSON(c.HTTP(i)+"/api/v1/cluster", &st) == nil && st.LogVersion >= cluster.LogV3
		})
	}

	body := `{"source_url":"http://` + ln.Addr().String() + `/gated/clip.mp4"}`
	resp, err := http.Post(c.HTTP(1)+"/api/v1/jobs", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var j struct {
		ID       string  `json:"id"`
		State    string  `json:"state"`
		Progress float64 `json:"progress"`
		Error    string  `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&j)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || j.State != "ingesting" {
		t.Fatalf("URL submit: %d %+v", resp.StatusCode, j)
	}
	nodetest.WaitFor(t, 20*time.Second, "the other node to show the fetch's progress", func() bool {
		return e2e.GetJSON(c.HTTP(0)+"/api/v1/jobs/"+j.ID, &j) == nil && j.State == "ingesting" && j.Progress > 0.3 && j.Progress < 0.7
	})
	close(gate)
	nodetest.WaitFor(t, 2*time.Minute, "the ingested job to finish", func() bool {
		return e2e.GetJSON(c.HTTP(0)+"/api/v1/jobs/"+j.ID, &j) == nil && (j.State == "done" || j.State == "failed")
	})
	if j.State != "done" {
		t.Fatalf("ingested job: %s (%s)", j.State, j.Error)
	}

	stdout, stderr, code := gosty(t, "submit", "--server", c.HTTP(0), "--wait", "--output", "json",
		"--url", "http://"+ln.Addr().String()+"/in/clip.mp4")
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	var out submitOutput
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
