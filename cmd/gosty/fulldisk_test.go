package main

import (
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/node/nodetest"
)

// TestFullDiskMidUploadAndEncode: of three node processes, gosty-2 keeps
// its data dir on a small tmpfs that fills up while an upload streams into
// it and while it encodes its share of a job. The upload gets a clean 507
// and leaves nothing; the job loses nothing (the tasks that hit the full
// disk run again elsewhere) and every file downloads with the same sha256
// from every node; gosty-2 stays ready throughout and, once space is
// freed, takes and finishes the next small job. Subnet 127.0.108.x.
func TestFullDiskMidUploadAndEncode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node processes and ffmpeg")
	}
	base := t.TempDir()
	vol := filepath.Join(base, "data", "gosty-2")
	mountTmpfsAt(t, vol, 96) // before the cluster: unmounted after its processes die
	c := e2e.New(t, e2e.Opts{Subnet: 108, Size: 3, Fast: true, Dir: base},
		"--slots", "1", "--disk-reserve", "4MiB", "--raft-reserve", "4MiB")
	all := []int{0, 1, 2}
	for _, i := range all {
		if err := c.Start(i); err != nil {
			t.Fatal(err)
		}
	}
	c.Agree(t, all, 3, 3)
	dir := t.TempDir()
	clip := nodetest.GenClip(t, filepath.Join(dir, "clip.mp4"), "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=20",
		"-f", "lavfi", "-i", "sine=duration=20", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-shortest")
	small := nodetest.GenClip(t, filepath.Join(dir, "small.mp4"), "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=4",
		"-f", "lavfi", "-i", "sine=duration=4", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-shortest")
	ready := func() {
		t.Helper()
		resp, err := http.Get(c.HTTP(2) + "/readyz")
		if err != nil {
			t.Fatalf("gosty-2 /readyz: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("gosty-2 /readyz: %s", resp.Status)
		}
	}

	// 1. Mid-upload: 12 MiB of room left above the reserves, a 40 MiB
	// upload of no declared length streams in.
	filler := filepath.Join(vol, "filler")
	fill(t, filler, int(volFree(t, vol)-20<<20))
	pr, ct := nodetest.StreamForm("growing.mp4", "", io.LimitReader(zeros{}, 40<<20))
	req, _ := http.NewRequest(http.MethodPost, c.HTTP(2)+"/api/v1/jobs", pr)
	req.Header.Set("Content-Type", ct)
	status, body := sendReq(t, req)
	pr.CloseWithError(errors.New("test done"))
	wantInsufficientStorage(t, "an upload that fills the volume", status, body)
	tmp := filepath.Join(vol, "blobs", "tmp")
	nodetest.WaitFor(t, 10*time.Second, "the refused upload's temp file to go", func() bool {
		return len(dirEntries(t, tmp)) == 0
	})
	ready()
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}

	// 2. Mid-encode: a job spread over the three nodes; once it encodes,
	// gosty-2's volume fills up to the last few KiB.
	id := e2e.Upload(t, c.HTTP(0), clip, `{"renditions":["360p","240p"],"chunk_seconds":2,"preset":"medium"}`)
	e2e.WaitJob(t, 2*time.Minute, "the job to encode", "", id, func(j httpapi.JobView) bool {
		return j.State == "transcoding" || j.State == "packaging" || j.State == "done"
	}, c.HTTP(0))
	fillUp(t, filler, volFree(t, vol)-64<<10)
	nodetest.WaitFor(t, 30*time.Second, "gosty-2 to report its volume full", func() bool {
		return memberDisk(c.HTTP(0), "gosty-2") == "full"
	})
	ready()
	for _, i := range all { // done as every node sees it
		waitJobOn(t, c, []int{i}, id)
	}
	t.Logf("gosty-2 logged %d failed tasks while full", c.Logs.Count(`"msg":"task failed","node":"gosty-2"`))
	var view httpapi.JobView
	if err := e2e.GetJSON(c.HTTP(0)+"/api/v1/jobs/"+id, &view); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, u := range publishedFiles(t, c.HTTP(0), view) {
		want[u] = e2e.FetchSum(t, c.HTTP(0)+u)
	}
	for _, i := range all[1:] {
		for u, sum := range want {
			if got := e2e.FetchSum(t, c.HTTP(i)+u); got != sum {
				t.Fatalf("%s served %s with other bytes", c.Name(i), u)
			}
		}
	}
	ready()

	// 3. Space freed: gosty-2 takes the next small job and finishes it.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	nodetest.WaitFor(t, 30*time.Second, "gosty-2 to report room again", func() bool {
		return memberDisk(c.HTTP(0), "gosty-2") == "room"
	})
	next := e2e.Upload(t, c.HTTP(2), small, `{"renditions":["180p@300k"],"chunk_seconds":2}`)
	if j := waitJobOn(t, c, all, next); j.State != "done" {
		t.Fatalf("the next small job through gosty-2: %s", j.State)
	}
	ready()
}

// memberDisk is "full" or "room" as the node at base sees member name's
// volume, or "" while it says nothing of it.
func memberDisk(base, name string) string {
	var v httpapi.ClusterStatus
	if e2e.GetJSON(base+"/api/v1/cluster", &v) != nil {
		return ""
	}
	for _, m := range v.Members {
		if m.Name == name && m.Disk != nil {
			if m.Disk.Full {
				return "full"
			}
			return "room"
		}
	}
	return ""
}

// fillUp writes up to n bytes to path, stopping without error when the
// volume is full first (the node writes to it too).
func fillUp(t *testing.T, path string, n int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, io.LimitReader(zeros{}, n)); err != nil && !errors.Is(err, syscall.ENOSPC) {
		t.Fatal(err)
	}
}
