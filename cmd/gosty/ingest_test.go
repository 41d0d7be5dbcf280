package main

import (
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/node/nodetest"
)

// TestCLISubmitURL: `gosty submit --url` has a node process fetch the
// source from a local server its --ingest-allow lists, and the job runs
// to done; a destination the list refuses is a refused request (exit 3).
func TestCLISubmitURL(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a node process and ffmpeg")
	}
	dir := t.TempDir()
	clip := nodetest.GenClip(t, filepath.Join(dir, "clip.mp4"), "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=2",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
	ln, err := net.Listen("tcp", "127.0.118.200:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, clip)
	})}
	go srv.Serve(ln)
	defer srv.Close()

	c := newTestCluster(t, 118, 1, "--preset", "ultrafast", "--ingest-allow", ln.Addr().String())
	if err := c.Start(0); err != nil {
		t.Fatal(err)
	}
	server := c.HTTP(0)
	nodetest.WaitReady(t, server, time.Minute)
	// URL ingest is written from log version 3 on (409 before).
	nodetest.WaitFor(t, 30*time.Second, "log version 3", func() bool {
		var st struct {
			LogVersion int `json:"log_version"`
		}
		return getJSON(server+"/api/v1/cluster", &st) == nil && st.LogVersion >= cluster.LogV3
	})

	stdout, stderr, code := gosty(t, "submit", "--server", server, "--wait", "--output", "json",
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
	_, stderr, code = gosty(t, "submit", "--server", server, "--url", "http://169.254.169.254/latest/meta-data/")
	if code != 3 || !strings.Contains(stderr, "not in --ingest-allow") {
		t.Fatalf("metadata address: exit %d, %s", code, stderr)
	}
}
