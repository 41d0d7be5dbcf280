package main

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/node/nodetest"
)

// started reports whether some chunk of a job is encoded or encoding.
func started(j httpapi.JobView) bool {
	for _, c := range j.Chunks {
		if c.EncodedBy != "" || c.RunningOn != "" {
			return true
		}
	}
	return false
}

// TestHighPriorityOvertakesLowOnOneSlot: on one node with one slot, a long
// low-priority job (many 2 s chunks) runs; a short high-priority job
// submitted later gets its first encode within about one chunk's time of
// its split finishing (the running low chunk finishes, then the high job
// goes first), and finishes long before the low job.
func TestHighPriorityOvertakesLowOnOneSlot(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a node process and ffmpeg")
	}
	start := time.Now()
	c := e2e.FastCluster(t, 73, 1, "--slots", "1")
	if err := c.Start(0); err != nil {
		t.Fatal(err)
	}
	c.Agree(t, []int{0}, 1, 1)
	dir := t.TempDir()
	long, short := filepath.Join(dir, "long.mp4"), filepath.Join(dir, "short.mp4")
	nodetest.GenClip(t, long, "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=20",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p")
	nodetest.GenClip(t, short, "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=4",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p")
	base := c.HTTP(0)
	get := func(id string) httpapi.JobView {
		j, _ := e2e.Job(base, "", id)
		return j
	}

	lowID := e2e.Upload(t, base, long, `{"renditions":["360p","240p@400k"],"chunk_seconds":2,"preset":"medium","priority":"low","client_id":"batch"}`)
	// The low job's chunk time: the longest gap between two of its chunks
	// finishing, while it runs alone.
	var gaps []time.Duration
	last, lastN := time.Time{}, 0
	nodetest.WaitFor(t, 60*time.Second, "a few low chunks encoded", func() bool {
		n := e2e.Encoded(get(lowID))
		if n > lastN {
			if !last.IsZero() {
				gaps = append(gaps, time.Since(last))
			}
			last, lastN = time.Now(), n
		}
		time.Sleep(20 * time.Millisecond)
		return len(gaps) >= 3
	})
	chunk := max(gaps[0], gaps[1], gaps[2])

	highID := e2e.Upload(t, base, short, `{"renditions":["360p","240p@400k"],"chunk_seconds":2,"preset":"medium","priority":"high","client_id":"editor"}`)
	var splitDone, firstEncode time.Time
	nodetest.WaitFor(t, 60*time.Second, "the high job's first encode", func() bool {
		j := get(highID)
		now := time.Now()
		if splitDone.IsZero() && len(j.Chunks) > 0 {
			splitDone = now
		}
		if started(j) {
			firstEncode = now
			return true
		}
		time.Sleep(20 * time.Millisecond)
		return false
	})
	delay := firstEncode.Sub(splitDone)
	t.Logf("low chunk time ≤ %v; high split done → first high encode: %v", chunk.Round(10*time.Millisecond), delay.Round(10*time.Millisecond))
	// One chunk's time, plus the poll and a scheduling round of slack.
	if delay > chunk+time.Second {
		t.Fatalf("the high job waited %v for its first encode; a low chunk takes %v", delay, chunk)
	}
	nodetest.WaitFor(t, 60*time.Second, "the high job done", func() bool { return get(highID).State == "done" })
	if lj := get(lowID); lj.State == "done" {
		t.Fatalf("the low job finished before the high one")
	} else {
		t.Logf("high job done with the low job at %d/%d chunks; test took %v", e2e.Encoded(lj), len(lj.Chunks), time.Since(start).Round(time.Second))
	}
}
