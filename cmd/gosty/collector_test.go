package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/node/nodetest"
)

// Loopback subnet: 127.0.105.x (TestCollectorSparesReuploads).

// TestCollectorSparesReuploads stores, deletes and stores again the same
// content while every node's collector runs each second with a
// one-second grace, on three node processes with two copies of
// everything. Each round deletes the jobs of the last one and at once
// uploads the same bytes twice more, through two nodes at the same time:
// the source, chunks, encodes, init segments, playlists and media
// segments are the very blobs the collector was just told to delete. Each
// round, every file of both new jobs must download from every node with
// its sha256 (the ETag), and two nodes must hold a good copy of each on
// disk (a copy the log counts but the collector took would leave one).
func TestCollectorSparesReuploads(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node processes and ffmpeg")
	}
	start := time.Now()
	clip := nodetest.GenClip(t, filepath.Join(t.TempDir(), "clip.mp4"), "-f", "lavfi", "-i", "testsrc2=size=256x144:rate=25:duration=4",
		"-f", "lavfi", "-i", "sine=duration=4", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-shortest")
	data, err := os.ReadFile(clip)
	if err != nil {
		t.Fatal(err)
	}
	source := fileSum(t, clip)
	// A store that finds the source already there stops for 2 s before
	// going on (a slow disk, a descheduled goroutine): two collector rounds
	// run meanwhile, right after the delete released it.
	c := e2e.New(t, e2e.Opts{Subnet: 105, Size: 3, Fast: true,
		Env: []string{envSlowStoreAgain + "=" + source + "=2s"}},
		"--slots", "2", "--replicas", "2", "--gc-grace", "1s", "--gc-interval", "1s", "--preset", "ultrafast")
	c.StartAll(t, 3)
	c.Agree(t, []int{0, 1, 2}, 3, 3)
	const options = `{"renditions":["144p@200k"],"chunk_seconds":2}`

	// first: the files of the first job by path in the job, with their
	// hashes; every later job must be made of the same blobs.
	var first map[string]string
	var prev []string
	const rounds = 8
	for round := range rounds {
		for _, id := range prev {
			if code := send(t, http.DefaultClient, http.MethodDelete, c.HTTP(round%3)+"/api/v1/jobs/"+id, "", nil); code != http.StatusOK && code != http.StatusNoContent {
				t.Fatalf("round %d: delete %s: %d", round, id, code)
			}
		}
		// At once, the same bytes twice, through two nodes.
		ids := make([]string, 2)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for k := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ids[k], errs[k] = postJob(c.HTTP((round+k)%3), data, options)
			}()
		}
		wg.Wait()
		for k, err := range errs {
			if err != nil {
				t.Fatalf("round %d: upload %d: %v", round, k, err)
			}
		}
		for _, id := range ids {
			var j httpapi.JobView
			nodetest.WaitFor(t, 90*time.Second, fmt.Sprintf("round %d: job %s done on every node", round, id), func() bool {
				for i := range 3 {
					j = httpapi.JobView{}
					if e2e.GetJSON(c.HTTP(i)+"/api/v1/jobs/"+id, &j) != nil {
						return false
					}
					if j.State == "failed" || j.State == "canceled" {
						t.Fatalf("round %d: job %s %s: %s", round, id, j.State, j.Error)
					}
					if j.State != "done" {
						return false
					}
				}
				return true
			})
			files := publishedFiles(t, c.HTTP(0), j)
			got := map[string]string{}
			for _, u := range files {
				rel := u[strings.Index(u, id)+len(id):]
				for i := range 3 {
					sum, etag, err := getSum(c.HTTP(i) + u)
					if err != nil {
						t.Fatalf("round %d: %s: %v", round, c.Name(i), err)
					}
					if sum != etag {
						t.Fatalf("round %d: %s served %s with sha256 %s, its ETag says %s", round, c.Name(i), u, sum, etag)
					}
					got[rel] = sum
				}
			}
			if first == nil {
				first = got
				t.Logf("round 0: %d files per job", len(first))
			}
			for rel, sum := range first {
				if got[rel] != sum {
					t.Fatalf("round %d: job %s's %s has sha256 %s, the first job's %s: not the same blobs",
						round, id, rel, got[rel], sum)
				}
			}
		}
		// Two good copies on disk of the source and of every file.
		hashes := []string{source}
		for _, sum := range first {
			hashes = append(hashes, sum)
		}
		nodetest.WaitFor(t, 60*time.Second, fmt.Sprintf("round %d: two good copies of every blob", round), func() bool {
			for _, h := range hashes {
				if goodCopies(c, h) < 2 {
					return false
				}
			}
			return true
		})
		prev = ids
	}
	t.Logf("%d rounds of delete and store again in %v", rounds, time.Since(start).Round(time.Second))
}

// envSlowStoreAgain=<sha256>=<duration> makes a node process of this test
// binary stop for that long whenever a store finds that blob already
// stored, right before it refreshes it (see cluster.TestHooks).
const envSlowStoreAgain = "GOSTY_TEST_SLOW_STORE_AGAIN"

// installTestHooks sets the hooks the environment asks for, in a node
// process of this test binary.
func installTestHooks() {
	spec := os.Getenv(envSlowStoreAgain)
	if spec == "" {
		return
	}
	hash, dur, _ := strings.Cut(spec, "=")
	d, err := time.ParseDuration(dur)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s=%q: %v\n", envSlowStoreAgain, spec, err)
		os.Exit(2)
	}
	cluster.SetTestHooks(&cluster.TestHooks{StoredAgain: func(h string) {
		if h == hash {
			time.Sleep(d)
		}
	}})
}

// postJob uploads body as a raw POST (safe to call from any goroutine)
// and returns the new job's id.
func postJob(base string, body []byte, options string) (string, error) {
	u := base + "/api/v1/jobs?filename=clip.mp4&options=" + url.QueryEscape(options)
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Post(u, "application/octet-stream", strings.NewReader(string(body)))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("POST %s: %s %s", base, resp.Status, b)
	}
	var j struct{ ID string }
	if err := json.Unmarshal(b, &j); err != nil || j.ID == "" {
		return "", fmt.Errorf("POST %s: no job id in %s", base, b)
	}
	return j.ID, nil
}

// getSum fetches url and returns the sha256 of its body and its ETag
// (unquoted).
func getSum(url string) (sum, etag string, err error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return "", "", fmt.Errorf("GET %s: %s %s", url, resp.Status, b)
	}
	h := sha256.New()
	if _, err := io.Copy(h, resp.Body); err != nil {
		return "", "", fmt.Errorf("GET %s: %w", url, err)
	}
	return hex.EncodeToString(h.Sum(nil)), strings.Trim(resp.Header.Get("ETag"), `"`), nil
}
