package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/node/nodetest"
)

// raftMatches waits until the raft configuration holds exactly the running
// pods, with min(3, pods) voters.
func raftMatches(t *testing.T, c *e2e.Cluster) {
	t.Helper()
	running := c.Running()
	var want []string
	for _, i := range running {
		want = append(want, c.Name(i))
	}
	sort.Strings(want)
	var last string
	nodetest.WaitFor(t, 90*time.Second, "raft configuration = "+strings.Join(want, ","), func() bool {
		v, err := c.Status(running[0])
		if err != nil {
			return false
		}
		got, voters := e2e.Raft(v)
		last = fmt.Sprintf("%v voters=%d", got, voters)
		return strings.Join(got, ",") == strings.Join(want, ",") && voters == min(3, len(want))
	})
	t.Logf("raft: %s", last)
}

// TestScaleWhileJobsRun scales 3→5→2→3 the way the StatefulSet controller
// does while jobs run: every job completes, the raft configuration follows
// the live pods, and after the scale-down every source and output still
// has two copies on live pods.
func TestScaleWhileJobsRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node processes and ffmpeg")
	}
	c := e2e.FastCluster(t, 15, 5, "--slots", "1", "--drain-timeout", "5s")
	const grace = 60 * time.Second
	if err := c.Scale(3, grace); err != nil {
		t.Fatal(err)
	}
	c.Agree(t, []int{0, 1, 2}, 3, 3)

	dir := t.TempDir()
	clip := func(name string, secs int) string {
		return nodetest.GenClip(t, filepath.Join(dir, name), "-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=480x270:rate=25:duration=%d", secs),
			"-f", "lavfi", "-i", fmt.Sprintf("sine=duration=%d", secs), "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
			"-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest")
	}
	var jobs []string
	submit := func(name string) {
		jobs = append(jobs, e2e.Upload(t, c.HTTP(0), clip(name, 12), `{"chunk_seconds":2,"preset":"medium"}`))
	}
	submit("a.mp4")
	if err := c.Scale(5, grace); err != nil {
		t.Fatal(err)
	}
	submit("b.mp4")
	raftMatches(t, c)
	if err := c.Scale(2, grace); err != nil {
		t.Fatal(err)
	}
	submit("c.mp4")
	raftMatches(t, c)
	if err := c.Scale(3, grace); err != nil {
		t.Fatal(err)
	}
	submit("d.mp4")
	raftMatches(t, c)

	live := c.Running()
	var want []string
	for _, id := range jobs {
		j := e2e.WaitDone(t, 4*time.Minute, "", id, c.HTTP(0))
		checkPlayableDuration(t, c.HTTP(0), j, 12)
		want = append(want, e2e.FetchSum(t, c.HTTP(0)+j.Outputs.HLS))
	}
	for _, name := range []string{"a.mp4", "b.mp4", "c.mp4", "d.mp4"} {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		sum := sha256.Sum256(b)
		want = append(want, hex.EncodeToString(sum[:]))
	}
	nodetest.WaitFor(t, 60*time.Second, "two live copies of every source and playlist", func() bool {
		for _, h := range want {
			if c.Holders(live, h) < 2 {
				return false
			}
		}
		return true
	})
}

// stopAtOnce stops these pods the way the StatefulSet controller does
// with podManagementPolicy Parallel: SIGTERM to all of them at the same
// moment, each with the grace period, then their volumes are deleted
// (whenScaled: Delete).
func stopAtOnce(t *testing.T, c *e2e.Cluster, pods []int, grace time.Duration) {
	t.Helper()
	errs := make(chan error, len(pods))
	for _, i := range pods {
		go func() { errs <- c.Stop(i, grace) }()
	}
	for range pods {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, i := range pods {
		if err := os.RemoveAll(filepath.Join(c.DataDir(i))); err != nil {
			t.Fatal(err)
		}
	}
}

// TestScaleDownAtOnce scales 3→1 with both scaled-away nodes stopping at
// the same moment, while one of them leads (gosty-0 is restarted first,
// which hands leadership to another node): leadership must end up on the
// node that stays, and the raft configuration must shrink to it. Then back
// to 3, and down again: the cluster keeps working.
func TestScaleDownAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node processes and ffmpeg")
	}
	c := e2e.FastCluster(t, 69, 3, "--slots", "1", "--drain-timeout", "5s")
	const grace = 60 * time.Second
	src := nodetest.GenClip(t, filepath.Join(t.TempDir(), "a.mp4"), "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=6",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p")
	for round := range 3 {
		if err := c.Scale(3, grace); err != nil {
			t.Fatal(err)
		}
		c.Agree(t, []int{0, 1, 2}, 3, 3)
		// Leadership away from gosty-0, which stays.
		if err := c.Stop(0, grace); err != nil {
			t.Fatal(err)
		}
		if err := c.Start(0); err != nil {
			t.Fatal(err)
		}
		v := c.Agree(t, []int{0, 1, 2}, 3, 3)
		t.Logf("round %d: before the scale-down: %s", round, e2e.Summary(v))
		id := e2e.Upload(t, c.HTTP(1), src, `{"chunk_seconds":2,"preset":"ultrafast"}`)

		stopAtOnce(t, c, []int{1, 2}, grace)
		raftMatches(t, c)
		e2e.WaitDone(t, 2*time.Minute, "", id, c.HTTP(0))
	}
}
