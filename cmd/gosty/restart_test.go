package main

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/node/nodetest"
)

// TestFullRestart stops every node mid-job twice: first all at once with
// SIGKILL and back on new addresses (a power cut and a reschedule), then
// all gracefully with SIGTERM. Each time the cluster re-forms by itself
// and finishes the jobs.
func TestFullRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node processes and ffmpeg")
	}
	c, _, id, _ := failoverSetup(t, 16, func(leader int) int { return leader })
	e2e.WaitJob(t, 2*time.Minute, "the job mid-way", "", id, func(j httpapi.JobView) bool {
		return j.State == "transcoding" && e2e.Encoded(j) >= 1
	}, c.HTTP(0))
	for i := range 3 {
		c.Kill(i)
	}
	restarted := time.Now()
	for i := range 3 {
		c.Move(i, fmt.Sprintf("%s.%d", c.Net, 100+i))
	}
	c.StartAll(t, 3)
	c.Agree(t, []int{0, 1, 2}, 3, 3)
	t.Logf("power cut → cluster re-formed on new addresses: %v", time.Since(restarted).Round(10*time.Millisecond))
	j := waitJobOn(t, c, []int{1}, id) // the node we read from has caught up
	checkPlayable(t, c.HTTP(1), j)

	// Now gracefully, with a new job in flight.
	src := nodetest.GenClip(t, filepath.Join(t.TempDir(), "b.mp4"), "-f", "lavfi", "-i", "testsrc2=size=480x270:rate=25:duration=12",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p")
	id2 := e2e.Upload(t, c.HTTP(1), src, `{"chunk_seconds":2,"preset":"medium"}`)
	e2e.WaitJob(t, 2*time.Minute, "the second job started", "", id2, func(j httpapi.JobView) bool {
		return j.State == "transcoding"
	}, c.HTTP(1))
	stopped := time.Now()
	c.StopAll(60 * time.Second)
	t.Logf("graceful stop of all nodes: %v", time.Since(stopped).Round(10*time.Millisecond))
	c.StartAll(t, 3)
	c.Agree(t, []int{0, 1, 2}, 3, 3)
	j2 := waitJobOn(t, c, []int{2}, id2)
	checkPlayableDuration(t, c.HTTP(2), j2, 12)
}
