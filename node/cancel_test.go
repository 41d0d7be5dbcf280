package node

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func del(t *testing.T, base, id string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, base+"/api/v1/jobs/"+id, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestCancelThenDeleteRemovesMedia cancels a job mid-encode (its ffmpeg
// runs stop), deletes it, and waits for every blob it made to leave the
// disk, while a finished job's published media stay.
func TestCancelThenDeleteRemovesMedia(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	dir := t.TempDir()
	n := startNode(t, filepath.Join(dir, "data"), func(c *Config) {
		c.Slots = 1
		c.Preset = "medium"
		c.GCGrace = 0
	})

	keep := submit(t, n.base, genClip(t, filepath.Join(dir, "keep.mp4"), "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=3",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"), "")
	if j := waitJob(t, n.base, keep.ID, 2*time.Minute); j.State != "done" {
		t.Fatalf("first job: %s %s", j.State, j.Error)
	}

	src := genClip(t, filepath.Join(dir, "long.mp4"), "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=30",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p")
	j := submit(t, n.base, src, `{"chunk_seconds":3}`)
	waitFor(t, 2*time.Minute, "an encode running", func() bool {
		cur, _ := getJob(t, n.base, j.ID)
		return cur.State == "transcoding" && n.worker.active() > 0
	})
	if code := del(t, n.base, j.ID); code != http.StatusOK {
		t.Fatalf("cancel: %d", code)
	}
	if cur, _ := getJob(t, n.base, j.ID); cur.State != "canceled" || cur.Error == "" {
		t.Fatalf("after cancel: %s %q", cur.State, cur.Error)
	}
	waitFor(t, 20*time.Second, "the worker to stop its runs", func() bool { return n.worker.active() == 0 })

	if code := del(t, n.base, j.ID); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
	if _, code := getJob(t, n.base, j.ID); code != http.StatusNotFound {
		t.Fatalf("deleted job answers %d", code)
	}

	// What must remain: the kept job's source and outputs. Everything else
	// (the deleted job's source and chunks, the kept job's chunks) goes.
	want := referenced(t, n.Node)
	if len(want) == 0 {
		t.Fatal("the kept job references nothing")
	}
	waitFor(t, 30*time.Second, "unreferenced blobs collected", func() bool {
		list, err := n.blobs.List()
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range list {
			if !want[b.Ref.Hash] {
				return false
			}
		}
		return len(list) == len(want)
	})
	// The kept job still plays.
	kj, _ := getJob(t, n.base, keep.ID)
	resp, err := http.Get(n.base + kj.Outputs.HLS)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("kept job's playlist: %v %v", err, resp)
	}
	resp.Body.Close()
	if ents, _ := os.ReadDir(n.blobs.TempDir()); len(ents) != 0 {
		t.Fatalf("work files left behind: %d", len(ents))
	}
}
