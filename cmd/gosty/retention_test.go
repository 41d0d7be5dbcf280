package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/node/nodetest"
)

// blobFiles lists the blob hashes in pod i's data dir.
func blobFiles(c *e2e.Cluster, i int) map[string]bool {
	out := map[string]bool{}
	root := filepath.Join(c.DataDir(i), "blobs")
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && len(d.Name()) == 64 {
			out[d.Name()] = true
		}
		return nil
	})
	return out
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// TestRetentionExpiresMediaOnEveryNode runs, on three nodes with two
// copies of everything, a job with keep_source:false (its source leaves
// every node once it is done, its outputs stay) and then a job with a 5 s
// TTL: once that passes, the job is listed as expired with the bytes freed,
// and none of its blobs is left in any node's data dir.
func TestRetentionExpiresMediaOnEveryNode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node processes and ffmpeg")
	}
	start := time.Now()
	c := e2e.FastCluster(t, 72, 3, "--slots", "2", "--gc-grace", "1s", "--gc-interval", "1s")
	c.StartAll(t, 3)
	c.Agree(t, []int{0, 1, 2}, 3, 3)
	pods := []int{0, 1, 2}
	dir := t.TempDir()
	clip := func(name string, secs int) string {
		p := filepath.Join(dir, name)
		nodetest.GenClip(t, p, "-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=320x180:rate=25:duration=%d", secs),
			"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p")
		return p
	}
	srcB, srcA := clip("b.mp4", 4), clip("a.mp4", 5)
	hashB, hashA := fileSum(t, srcB), fileSum(t, srcA)
	waitState := func(id string, ok func(httpapi.JobView) bool) httpapi.JobView {
		return e2e.WaitJob(t, 60*time.Second, "job "+id, "", id, ok, c.HTTP(0))
	}
	held := func(hash string) int {
		n := 0
		for _, i := range pods {
			if blobFiles(c, i)[hash] {
				n++
			}
		}
		return n
	}

	code, body := nodetest.Upload(t, c.HTTP(1), srcB, `{"ttl":"soon"}`)
	if code != http.StatusBadRequest || !strings.Contains(string(body), "ttl") {
		t.Fatalf("bad ttl: %d %s", code, body)
	}

	// keep_source:false: the source goes from every node after done.
	idB := e2e.Upload(t, c.HTTP(1), srcB, `{"renditions":["180p@300k"],"chunk_seconds":2,"keep_source":false}`)
	b := waitState(idB, func(j httpapi.JobView) bool { return j.State == "done" })
	if b.KeepSource || b.TTL != "" {
		t.Fatalf("job B: %+v", b)
	}
	nodetest.WaitFor(t, 20*time.Second, "B's source gone from every node", func() bool { return held(hashB) == 0 })
	e2e.FetchSum(t, c.HTTP(2)+b.Outputs.HLS) // its outputs stay
	kept := map[string]bool{}
	for _, i := range pods {
		for h := range blobFiles(c, i) {
			kept[h] = true
		}
	}

	// ttl 5s: everything of job A goes from every node.
	idA := e2e.Upload(t, c.HTTP(2), srcA, `{"renditions":["180p@300k"],"chunk_seconds":2,"ttl":"5s"}`)
	a := waitState(idA, func(j httpapi.JobView) bool { return j.State == "done" })
	if a.TTL != "5s" || a.Outputs == nil {
		t.Fatalf("job A: %+v", a)
	}
	hls := a.Outputs.HLS
	done := time.Now()
	a = waitState(idA, func(j httpapi.JobView) bool { return !j.ExpiredAt.IsZero() })
	if a.FreedBytes <= 0 || a.Outputs != nil || a.State != "done" {
		t.Fatalf("expired job: %+v", a)
	}
	nodetest.WaitFor(t, 20*time.Second, "A's blobs gone from every node", func() bool {
		for _, i := range pods {
			for h := range blobFiles(c, i) {
				if !kept[h] {
					return false
				}
			}
		}
		return held(hashA) == 0
	})
	t.Logf("done → expired → collected everywhere in %v (freed %d bytes)", time.Since(done).Round(100*time.Millisecond), a.FreedBytes)
	if resp, err := http.Get(c.HTTP(0) + hls); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatalf("an expired job's playlist is still served")
		}
	}
	if m := e2e.Metrics(t, c.HTTP(1)); !strings.Contains(m, "gosty_retention_freed_bytes_total "+fmt.Sprint(a.FreedBytes)) {
		t.Errorf("freed bytes metric missing or wrong:\n%s", grepLines(m, "retention"))
	}
	t.Logf("test took %v", time.Since(start).Round(time.Second))
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
