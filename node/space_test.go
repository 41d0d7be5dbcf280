package node

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gosty/gosty/node/nodetest"
	"github.com/gosty/gosty/transcoder"
)

// outOfSpaceOnce fails the first chunk encode as ffmpeg does on a full
// disk, in words that would otherwise fail the job at once (a media
// error), and records which encodes ran while the node said it was full.
type outOfSpaceOnce struct {
	Transcoder
	failed atomic.Bool
	n      *Node

	mu        sync.Mutex
	whileFull int
}

func (o *outOfSpaceOnce) EncodeChunk(ctx context.Context, c transcoder.Chunk, s transcoder.EncodeSettings, outDir string, p transcoder.Progress) ([]string, error) {
	if !o.failed.Swap(true) {
		return nil, &transcoder.MediaError{Reason: "ffmpeg: av_interleaved_write_frame(): No space left on device",
			Err: &os.PathError{Op: "write", Path: filepath.Join(outDir, "0.mp4"), Err: syscall.ENOSPC}}
	}
	if o.n.space.Full() {
		o.mu.Lock()
		o.whileFull++
		o.mu.Unlock()
	}
	return o.Transcoder.EncodeChunk(ctx, c, s, outDir, p)
}

// TestTaskOutOfSpaceIsRetried: a task that runs out of disk space is not
// the media's fault. It counts as one ordinary failure; the node holds
// itself full for the hold and says so (so no task is given to it
// meanwhile), and then the retry finishes the job.
func TestTaskOutOfSpaceIsRetried(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "clip.mp4")
	nodetest.GenClip(t, src, "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=4",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p")
	const hold = 3 * time.Second
	var tc *outOfSpaceOnce
	n := startNodeWith(t, filepath.Join(dir, "data"), func(c *Config) { c.Slots = 1 }, func(n *Node) {
		tc = &outOfSpaceOnce{Transcoder: n.tc, n: n}
		n.tc, n.worker.tc = tc, tc
		n.noSpaceHold = hold
	})
	j := submit(t, n.base, src, `{"renditions":["240p"],"chunk_seconds":2}`)

	// The node says it is full (in gossip, seen in the cluster view) for
	// the hold after the failure.
	nodetest.WaitFor(t, 60*time.Second, "the node to say it is full after the failed encode", func() bool {
		return tc.failed.Load() && selfDiskFull(n.base)
	})
	start := time.Now()
	done := waitJob(t, n.base, j.ID, 2*time.Minute)
	if done.State != "done" {
		t.Fatalf("job %s: %q", done.State, done.Error)
	}
	if took := time.Since(start); took < hold/2 {
		t.Errorf("the job finished %v after the failure: the hold of %v did not keep work away", took, hold)
	}
	if tc.whileFull != 0 {
		t.Errorf("%d encodes ran while the node said it was full", tc.whileFull)
	}
	attempts := 0
	for _, c := range done.Chunks {
		attempts += c.Attempts
	}
	// One retry of the encode that failed; an encode queued on the node
	// when it went full is handed back and placed again (one attempt more,
	// no failure).
	if attempts < len(done.Chunks)+1 || attempts > len(done.Chunks)+2 {
		t.Errorf("%d attempts for %d chunks, want one retry (and at most one queued encode handed back)", attempts, len(done.Chunks))
	}
	nodetest.WaitFor(t, 30*time.Second, "the node to say it has room again after the hold", func() bool {
		return !selfDiskFull(n.base)
	})
}

func selfDiskFull(base string) bool {
	resp, err := http.Get(base + "/api/v1/cluster")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var v struct {
		Node    string `json:"node"`
		Members []struct {
			Name string `json:"name"`
			Disk *struct {
				Full bool `json:"full"`
			} `json:"disk"`
		} `json:"members"`
	}
	if json.NewDecoder(resp.Body).Decode(&v) != nil {
		return false
	}
	for _, m := range v.Members {
		if m.Name == v.Node && m.Disk != nil {
			return m.Disk.Full
		}
	}
	return false
}

// A finished resumable upload becomes the job's source without a second
// copy: the blob is a hard link to the upload's file (which tus then
// deletes), so a tus upload never needs twice its size on the volume.
func TestTusUploadIsLinkedNotCopied(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "clip.mp4")
	nodetest.GenClip(t, src, "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p")
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var linked atomic.Int64 // link count of the source blob seen while the finish runs
	var n *testNode
	n = startNodeWith(t, filepath.Join(dir, "data"), nil, func(nd *Node) {
		tc := &probeHook{Transcoder: nd.tc, hook: func(path string) {
			if fi, err := os.Stat(path); err == nil {
				if st, ok := fi.Sys().(*syscall.Stat_t); ok {
					linked.Store(int64(st.Nlink))
				}
			}
		}}
		nd.tc, nd.worker.tc = tc, tc
	})
	req, _ := http.NewRequest(http.MethodPost, n.base+"/api/v1/uploads/", nil)
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Length", strconv.Itoa(len(data)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %v %v", resp, err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "http") {
		loc = n.base + loc
	}
	req, _ = http.NewRequest(http.MethodPatch, loc, bytes.NewReader(data))
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Offset", "0")
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("patch: %v %v", resp, err)
	}
	resp.Body.Close()
	if got := linked.Load(); got != 2 {
		t.Fatalf("the source blob had %d links while it was probed, want 2 (the blob and the upload's file)", got)
	}
	id := resp.Header.Get("Gosty-Job-Id")
	if j := waitJob(t, n.base, id, 2*time.Minute); j.State != "done" {
		t.Fatalf("job %s %q", j.State, j.Error)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "data", "uploads")); len(ents) != 0 {
		t.Fatalf("upload files left: %v", ents)
	}
}

// probeHook calls hook with the path of every file probed (an upload's
// source blob).
type probeHook struct {
	Transcoder
	hook func(path string)
}

func (p *probeHook) Probe(ctx context.Context, path string) (*transcoder.Probe, error) {
	p.hook(path)
	return p.Transcoder.Probe(ctx, path)
}
