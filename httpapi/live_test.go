package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/transcoder"
)

func liveJob(state cluster.JobState, encoded []bool, audio bool) cluster.Job {
	j := cluster.Job{ID: "livejob", State: state, Renditions: []cluster.Rendition{{Name: "180p"}, {Name: "144p"}}}
	j.Source.Audio = &cluster.AudioStream{Codec: "aac"}
	if audio {
		j.Audio = cluster.BlobRef{Hash: strings.Repeat("a", 64), Size: 1}
	}
	for i, e := range encoded {
		c := cluster.Chunk{Index: i, Start: float64(2 * i), Duration: 2}
		if e {
			c.Outputs = []cluster.BlobRef{{Hash: strings.Repeat("b", 64), Size: 1}, {Hash: strings.Repeat("c", 64), Size: 1}}
		}
		j.Chunks = append(j.Chunks, c)
	}
	return j
}

func TestLiveStatusOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		j    cluster.Job
		want LiveStatus
	}{
		{"queued", liveJob(cluster.JobQueued, nil, false), LiveStatus{}},
		{"no chunk yet", liveJob(cluster.JobTranscoding, []bool{false, false}, true), LiveStatus{}},
		{"waits for the audio", liveJob(cluster.JobTranscoding, []bool{true, false}, false), LiveStatus{Segments: 1, Seconds: 2}},
		{"first chunk and audio", liveJob(cluster.JobTranscoding, []bool{true, false}, true), LiveStatus{Ready: true, Segments: 1, Seconds: 2}},
		// A chunk done out of order waits for the ones before it.
		{"contiguous prefix", liveJob(cluster.JobTranscoding, []bool{true, true, false, true}, true), LiveStatus{Ready: true, Segments: 2, Seconds: 4}},
		{"only a later chunk", liveJob(cluster.JobTranscoding, []bool{false, true}, true), LiveStatus{}},
		{"packaging", liveJob(cluster.JobPackaging, []bool{true, true}, true), LiveStatus{Ready: true, Segments: 2, Seconds: 4, Complete: true}},
		{"failed", liveJob(cluster.JobFailed, []bool{true, true}, true), LiveStatus{}},
	} {
		if got := LiveStatusOf(tc.j); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

type fakeLive struct{}

func (fakeLive) Fragments(context.Context, cluster.BlobRef, float64, float64) (*transcoder.Fragmented, error) {
	panic("not reached in these tests")
}

// TestLiveRoutes: the job JSON carries the live view only when the node
// serves one; a job not ready yet answers not_ready, a failed one
// not_found, and a done one redirects to the final playlists.
func TestLiveRoutes(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Live = fakeLive{} })
	j := liveJob(cluster.JobTranscoding, []bool{true, false}, false)
	e.jobs.put(j)
	resp, err := http.Get(e.srv.URL + "/api/v1/jobs/livejob")
	if err != nil {
		t.Fatal(err)
	}
	var v JobView
	json.NewDecoder(resp.Body).Decode(&v)
	resp.Body.Close()
	if v.Live == nil || v.Live.Ready || v.Live.Segments != 1 || v.Live.HLS != "/api/v1/jobs/livejob/files/live/master.m3u8" {
		t.Fatalf("live view %+v", v.Live)
	}
	get := func(rel string) (*http.Response, string) {
		t.Helper()
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Get(e.srv.URL + "/api/v1/jobs/livejob/files/" + rel)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		resp.Body.Close()
		return resp, b.String()
	}
	if resp, b := get("live/master.m3u8"); resp.StatusCode != 404 || !strings.Contains(b, "not_ready") {
		t.Errorf("not ready: %d %s", resp.StatusCode, b)
	}

	j.State = cluster.JobFailed
	e.jobs.put(j)
	if resp, b := get("live/master.m3u8"); resp.StatusCode != 404 || !strings.Contains(b, `"not_found"`) {
		t.Errorf("failed: %d %s", resp.StatusCode, b)
	}

	j.State = cluster.JobDone
	j.HLS = "master.m3u8"
	j.Outputs = map[string]cluster.BlobRef{"master.m3u8": {Hash: strings.Repeat("d", 64), Size: 1}, "media_1.m3u8": {Hash: strings.Repeat("e", 64), Size: 1}}
	e.jobs.put(j)
	for rel, want := range map[string]string{"live/master.m3u8": "/files/master.m3u8", "live/media_1.m3u8": "/files/media_1.m3u8"} {
		if resp, b := get(rel); resp.StatusCode != http.StatusFound || !strings.HasSuffix(resp.Header.Get("Location"), want) {
			t.Errorf("%s: %d %q %s", rel, resp.StatusCode, resp.Header.Get("Location"), b)
		}
	}
	for _, rel := range []string{"live/media_0.m3u8", "live/seg-0-0.m4s", "live/init-0.m4s"} {
		if resp, _ := get(rel); resp.StatusCode != 404 {
			t.Errorf("%s after done: %d", rel, resp.StatusCode)
		}
	}

	// Without a live source the job JSON has no live view.
	e2 := newEnv(t, nil)
	e2.jobs.put(liveJob(cluster.JobTranscoding, []bool{true}, true))
	resp, err = http.Get(e2.srv.URL + "/api/v1/jobs/livejob")
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	json.NewDecoder(resp.Body).Decode(&raw)
	resp.Body.Close()
	if _, ok := raw["live"]; ok {
		t.Errorf("live view without a live source: %v", raw["live"])
	}
}

// TestFragCache: one load per key however many ask at once, errors are not
// kept, and the least recently used entries go beyond the byte bound.
func TestFragCache(t *testing.T) {
	c := &fragCache{max: 250, m: map[string]*fragEntry{}}
	loads := map[string]int{}
	var mu sync.Mutex
	load := func(key string, size int, err error) func(context.Context) (*transcoder.Fragmented, error) {
		return func(context.Context) (*transcoder.Fragmented, error) {
			mu.Lock()
			loads[key]++
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
			if err != nil {
				return nil, err
			}
			return &transcoder.Fragmented{Init: make([]byte, size)}, nil
		}
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if f, err := c.get(context.Background(), "a", load("a", 100, nil)); err != nil || len(f.Init) != 100 {
				t.Errorf("a: %v", err)
			}
		})
	}
	wg.Wait()
	if loads["a"] != 1 {
		t.Errorf("a loaded %d times", loads["a"])
	}
	if _, err := c.get(context.Background(), "bad", load("bad", 0, errors.New("boom"))); err == nil {
		t.Error("error lost")
	}
	c.get(context.Background(), "bad", load("bad", 10, nil))
	if loads["bad"] != 2 {
		t.Errorf("a failed load was cached")
	}
	c.get(context.Background(), "b", load("b", 100, nil))
	c.get(context.Background(), "a", load("a", 100, nil)) // a is now more recent than b
	c.get(context.Background(), "c", load("c", 100, nil)) // over 250: the oldest goes
	c.mu.Lock()
	_, hasA := c.m["a"]
	_, hasB := c.m["b"]
	size := c.size
	c.mu.Unlock()
	if !hasA || hasB || size > 250 {
		t.Errorf("after eviction: a %v, b %v, size %d", hasA, hasB, size)
	}
}
