package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/node/nodetest"
)

// Loopback subnet 127.0.106.x: TestAckedUploadSurvivesOriginLoss on .1-.3,
// TestAckRefusedWhilePeersStopped on .11-.13.

// tusCreate creates a resumable upload on base and returns its URL.
func tusCreate(t *testing.T, base string, size int, opts string) string {
	t.Helper()
	meta := "filename " + base64.StdEncoding.EncodeToString([]byte("clip.mp4")) +
		",options " + base64.StdEncoding.EncodeToString([]byte(opts))
	resp, b, err := tusReq(t, http.MethodPost, base+"/api/v1/uploads/", "", nil,
		map[string]string{"Upload-Length": strconv.Itoa(size), "Upload-Metadata": meta})
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("tus create on %s: %v %v %s", base, err, resp, b)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return base + loc.Path
}

// tusPatch sends data from offset off and returns the answer.
func tusPatch(t *testing.T, u string, off int, data []byte) (*http.Response, []byte) {
	t.Helper()
	resp, b, err := tusReq(t, http.MethodPatch, u, "", bytes.NewReader(data), map[string]string{
		"Upload-Offset": strconv.Itoa(off), "Content-Type": "application/offset+octet-stream",
		"Content-Length": strconv.Itoa(len(data))})
	if err != nil {
		t.Fatalf("PATCH %s: %v", u, err)
	}
	return resp, b
}

// othersHolding lists the pods other than origin whose blob dir holds hash.
func othersHolding(c *e2e.Cluster, origin int, hash string) []string {
	var out []string
	for i := range 3 {
		if i != origin && c.Holders([]int{i}, hash) == 1 {
			out = append(out, c.Name(i))
		}
	}
	return out
}

// TestAckedUploadSurvivesOriginLoss: on three node processes with two
// copies of every source (the default --ack-replicas), an upload is
// answered only once another node's blob dir holds the source: a POST
// and the PATCH that completes a tus upload, both to one node, are each
// checked the instant the answer arrives. That node is then SIGKILLed and
// its data dir wiped before either job could get far, and both jobs are
// done by the two others.
func TestAckedUploadSurvivesOriginLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node processes and ffmpeg")
	}
	c := e2e.New(t, e2e.Opts{Subnet: 106, First: 1, Size: 3, Fast: true},
		"--slots", "1", "--replicas", "2", "--preset", "ultrafast")
	c.StartAll(t, 3)
	v := c.Agree(t, []int{0, 1, 2}, 3, 3)
	// The origin is a follower, so that its death does not wait on an
	// election before the others can schedule.
	origin := 0
	for i := range 3 {
		if c.Name(i) != v.Leader {
			origin = i
			break
		}
	}
	src := nodetest.NoisyClip(t, filepath.Join(t.TempDir(), "noisy.mp4"), 6)
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	hash := fileSum(t, src)
	opts := `{"renditions":["180p@300k"],"chunk_seconds":2}`
	base := c.HTTP(origin)

	// POST.
	start := time.Now()
	code, body := nodetest.Upload(t, base, src, opts)
	holders := othersHolding(c, origin, hash)
	if code != http.StatusCreated {
		t.Fatalf("POST: %d %s", code, body)
	}
	if len(holders) < 1 {
		t.Fatalf("answered 201 while no other node holds the source %s", hash)
	}
	var posted struct{ ID string }
	json.Unmarshal(body, &posted)
	t.Logf("POST of %d bytes: 201 after %v; the source is also on %v", len(data), time.Since(start).Round(time.Millisecond), holders)

	// tus, with another file (the same bytes would already be everywhere).
	tdata, err := os.ReadFile(nodetest.NoisyClip(t, filepath.Join(t.TempDir(), "noisy.mp4"), 5))
	if err != nil {
		t.Fatal(err)
	}
	thash := sha256Hex(tdata)
	u := tusCreate(t, base, len(tdata), opts)
	half := len(tdata) / 2
	if resp, b := tusPatch(t, u, 0, tdata[:half]); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("first PATCH: %d %s", resp.StatusCode, b)
	}
	if got := othersHolding(c, origin, thash); len(got) != 0 {
		t.Fatalf("the source is on %v before the upload is complete", got)
	}
	start = time.Now()
	resp, b := tusPatch(t, u, half, tdata[half:])
	tholders := othersHolding(c, origin, thash)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Gosty-Job-Id") == "" {
		t.Fatalf("last PATCH: %d %s", resp.StatusCode, b)
	}
	if len(tholders) < 1 {
		t.Fatalf("the last PATCH was answered while no other node holds the source %s", thash)
	}
	tusID := resp.Header.Get("Gosty-Job-Id")
	t.Logf("last tus PATCH: 200 after %v; the source is also on %v", time.Since(start).Round(time.Millisecond), tholders)
	if v := metricValue(base, `gosty_upload_ack_seconds_count{outcome="ok"}`); v != 2 {
		t.Errorf("gosty_upload_ack_seconds_count{outcome=\"ok\"} = %v, want 2", v)
	}

	// The origin's disk dies.
	killed := time.Now()
	c.Kill(origin)
	if err := os.RemoveAll(filepath.Join(c.DataDir(origin))); err != nil {
		t.Fatal(err)
	}
	var rest []int
	for i := range 3 {
		if i != origin {
			rest = append(rest, i)
		}
	}
	for _, id := range []string{posted.ID, tusID} {
		j := waitJobOn(t, c, rest, id)
		if j.State != "done" {
			t.Fatalf("job %s ended %s: %s", id, j.State, j.Error)
		}
	}
	t.Logf("both jobs done without their origin (%v after the kill)", time.Since(killed).Round(time.Second))
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestAckRefusedWhilePeersStopped: with --ack-replicas 2 on three nodes
// and the two others SIGSTOPped, an upload cannot have its second copy: a
// POST is answered 503 insufficient_replicas (JSON, Retry-After) and
// commits nothing, and so is the last PATCH of a tus upload, which keeps
// its bytes; the node stays up and clean (no temp file, its unreferenced
// copy collected). Once the others run again the same PATCH finishes the
// upload and a new POST is taken, each with its second copy.
func TestAckRefusedWhilePeersStopped(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node processes and ffmpeg")
	}
	c := e2e.New(t, e2e.Opts{Subnet: 106, First: 11, Size: 3, Fast: true},
		"--slots", "1", "--replicas", "3", "--ack-replicas", "2", "--preset", "ultrafast",
		"--gc-grace", "1s", "--gc-interval", "1s")
	c.StartAll(t, 3)
	c.Agree(t, []int{0, 1, 2}, 3, 3)
	const origin = 0
	base := c.HTTP(origin)
	src := nodetest.NoisyClip(t, filepath.Join(t.TempDir(), "noisy.mp4"), 4)
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	hash := fileSum(t, src)
	opts := `{"renditions":["180p@300k"],"chunk_seconds":2}`
	// A tus upload (of another file) with all but its last byte in, before
	// the others stop.
	tdata, err := os.ReadFile(nodetest.NoisyClip(t, filepath.Join(t.TempDir(), "noisy.mp4"), 3))
	if err != nil {
		t.Fatal(err)
	}
	u := tusCreate(t, base, len(tdata), opts)
	if resp, b := tusPatch(t, u, 0, tdata[:len(tdata)-1]); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("first PATCH: %d %s", resp.StatusCode, b)
	}

	for _, i := range []int{1, 2} {
		if err := c.Signal(i, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	stopped := true
	cont := func() {
		if stopped {
			for _, i := range []int{1, 2} {
				c.Signal(i, syscall.SIGCONT)
			}
			stopped = false
		}
	}
	t.Cleanup(cont)

	refused := func(what string, code int, hdr http.Header, body []byte, took time.Duration) {
		t.Helper()
		var e struct {
			Error struct{ Code, Message string }
		}
		if code != http.StatusServiceUnavailable || json.Unmarshal(body, &e) != nil || e.Error.Code != "insufficient_replicas" {
			t.Fatalf("%s with both peers stopped: %d %s", what, code, body)
		}
		if hdr != nil && hdr.Get("Retry-After") == "" {
			t.Errorf("%s: no Retry-After", what)
		}
		t.Logf("%s refused after %v: %s", what, took.Round(time.Millisecond), e.Error.Message)
		if took > 2*time.Minute {
			t.Fatalf("%s took %v to be refused", what, took)
		}
	}
	start := time.Now()
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/jobs?filename=clip.mp4&options="+url.QueryEscape(opts), bytes.NewReader(data))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	resp.Body.Close()
	refused("POST", resp.StatusCode, resp.Header, buf.Bytes(), time.Since(start))

	start = time.Now()
	resp, b := tusPatch(t, u, len(tdata)-1, tdata[len(tdata)-1:])
	refused("last tus PATCH", resp.StatusCode, nil, b, time.Since(start)) // tus answers carry no Retry-After

	// The node is up, holds no temp file, and its copy of the refused POST
	// is collected (the tus bytes stay, for the retry).
	if r, err := http.Get(base + "/healthz"); err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("healthz after the refusals: %v %v", err, r)
	} else {
		r.Body.Close()
	}
	nodetest.WaitFor(t, time.Minute, "the refused upload's copy collected", func() bool {
		return c.Holders([]int{origin}, hash) == 0
	})
	if ents, _ := os.ReadDir(filepath.Join(c.DataDir(origin), "blobs", "tmp")); len(ents) != 0 {
		t.Fatalf("temp files left on the origin: %v", ents)
	}

	cont()
	c.Agree(t, []int{0, 1, 2}, 3, 3)
	var list struct{ Jobs []struct{ ID string } }
	if err := e2e.GetJSON(base+"/api/v1/jobs", &list); err != nil || len(list.Jobs) != 0 {
		t.Fatalf("jobs after the refusals: %v %+v", err, list)
	}
	for _, i := range []int{1, 2} {
		dir := filepath.Join(c.DataDir(i), "blobs", "tmp")
		nodetest.WaitFor(t, time.Minute, c.Name(i)+"'s temp files to go", func() bool {
			ents, _ := os.ReadDir(dir)
			return len(ents) == 0
		})
	}

	// The same PATCH again finishes the upload now.
	resp, b = tusPatch(t, u, len(tdata), nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Gosty-Job-Id") == "" {
		t.Fatalf("the PATCH again: %d %s", resp.StatusCode, b)
	}
	if got := othersHolding(c, origin, sha256Hex(tdata)); len(got) < 1 {
		t.Fatal("the finished tus upload has no second copy")
	}
	code, body := nodetest.Upload(t, base, src, opts)
	if code != http.StatusCreated {
		t.Fatalf("POST with the peers back: %d %s", code, body)
	}
	if got := othersHolding(c, origin, hash); len(got) < 1 {
		t.Fatal("the POST has no second copy")
	}
	if v := metricValue(base, `gosty_upload_ack_seconds_count{outcome="failed"}`); v != 2 {
		t.Errorf(`gosty_upload_ack_seconds_count{outcome="failed"} = %v, want 2`, v)
	}
}
