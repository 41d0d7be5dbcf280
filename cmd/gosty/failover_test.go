package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/node/nodetest"
)

// tasksOn is how many tasks the cluster has assigned to a node.
func tasksOn(c *e2e.Cluster, pod int, name string) int {
	v, err := c.Status(pod)
	if err != nil {
		return 0
	}
	for _, m := range v.Members {
		if m.Name == name {
			return m.TasksActive
		}
	}
	return 0
}

// failoverSetup starts three nodes and submits a job long enough to kill
// something in the middle of it.
func failoverSetup(t *testing.T, subnet int, submitTo func(leader int) int) (*e2e.Cluster, int, string, int) {
	t.Helper()
	c := e2e.FastCluster(t, subnet, 3, "--slots", "1", "--drain-timeout", "5s")
	c.StartAll(t, 3)
	v := c.Agree(t, []int{0, 1, 2}, 3, 3)
	leader := c.Ordinal(v.Leader)
	src := filepath.Join(t.TempDir(), "clip.mp4")
	nodetest.AVClip(t, src, "640x360", 24)
	origin := submitTo(leader)
	id := e2e.Upload(t, c.HTTP(origin), src, `{"chunk_seconds":2,"preset":"medium"}`)
	return c, leader, id, origin
}

func waitJobOn(t testing.TB, c *e2e.Cluster, pods []int, id string) httpapi.JobView {
	t.Helper()
	bases := make([]string, len(pods))
	for k, p := range pods {
		bases[k] = c.HTTP(p)
	}
	return e2e.WaitDone(t, 4*time.Minute, "", id, bases...)
}

func checkPlayable(t *testing.T, base string, j httpapi.JobView) {
	t.Helper()
	checkPlayableDuration(t, base, j, 24)
}

// checkPlayableDuration checks the HLS output opens through base and lasts
// secs, and that every chunk has one recorded encode.
func checkPlayableDuration(t *testing.T, base string, j httpapi.JobView, secs float64) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-protocol_whitelist", "http,tcp",
		"-show_entries", "format=duration", "-of", "csv=p=0", base+j.Outputs.HLS).Output()
	if err != nil {
		t.Fatalf("ffprobe HLS: %v", err)
	}
	d, _ := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if d < secs-0.2 || d > secs+0.2 {
		t.Fatalf("HLS duration %v, want %v", d, secs)
	}
	for _, ch := range j.Chunks {
		if ch.EncodedBy == "" || ch.Encoded == 0 {
			t.Fatalf("chunk %d has no recorded encode: %+v", ch.Index, ch)
		}
	}
}

// TestKillWorkerMidJob SIGKILLs a worker while it encodes: its task is
// reassigned, lost intermediate media are redone, and the job completes
// with exactly one recorded encode per chunk.
func TestKillWorkerMidJob(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node processes and ffmpeg")
	}
	c, leader, id, origin := failoverSetup(t, 12, func(leader int) int { return leader })
	victim := (origin + 1) % 3
	vname := c.Name(victim)
	e2e.WaitJob(t, 2*time.Minute, vname+" encoding a chunk mid-job", "", id, func(j httpapi.JobView) bool {
		return j.State == "transcoding" && e2e.Encoded(j) >= 1 && e2e.RunningOn(j, vname)
	}, c.HTTP(leader))
	c.Kill(victim)
	killed := time.Now()
	survivors := []int{origin, 3 - origin - victim}
	nodetest.WaitFor(t, time.Minute, "the victim's task back in the queue", func() bool {
		return tasksOn(c, leader, vname) == 0
	})
	t.Logf("worker kill → its tasks taken back: %v", time.Since(killed).Round(10*time.Millisecond))
	j := waitJobOn(t, c, survivors, id)
	reassigned := 0
	for _, ch := range j.Chunks {
		if ch.Attempts > 1 {
			reassigned++
		}
	}
	if reassigned == 0 {
		t.Fatalf("no chunk was reassigned: %+v", j.Chunks)
	}
	checkPlayable(t, c.HTTP(survivors[0]), j)
}

// TestKillLeaderMidJob SIGKILLs the leader while a job runs: a new leader
// is elected within seconds and the job completes.
func TestKillLeaderMidJob(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node processes and ffmpeg")
	}
	c, leader, id, origin := failoverSetup(t, 13, func(leader int) int { return (leader + 1) % 3 })
	e2e.WaitJob(t, 2*time.Minute, "the job mid-way", "", id, func(j httpapi.JobView) bool {
		return j.State == "transcoding" && e2e.Encoded(j) >= 1
	}, c.HTTP(origin))
	old := c.Name(leader)
	c.Kill(leader)
	killed := time.Now()
	var survivors []int
	for i := range 3 {
		if i != leader {
			survivors = append(survivors, i)
		}
	}
	c.WaitNewLeader(t, survivors[0], old, 15*time.Second)
	t.Logf("leader kill → new leader: %v", time.Since(killed).Round(10*time.Millisecond))
	j := waitJobOn(t, c, survivors, id)
	checkPlayable(t, c.HTTP(survivors[0]), j)
}

// TestPausedWorkerLateResultIgnored SIGSTOPs a worker mid-task for longer
// than its lease: its work is done elsewhere, the job completes once, and
// when the worker resumes its late result changes nothing.
func TestPausedWorkerLateResultIgnored(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node processes and ffmpeg")
	}
	c, leader, id, origin := failoverSetup(t, 14, func(leader int) int { return leader })
	victim := (origin + 1) % 3
	vname := c.Name(victim)
	e2e.WaitJob(t, 2*time.Minute, vname+" encoding a chunk mid-job", "", id, func(j httpapi.JobView) bool {
		return j.State == "transcoding" && e2e.RunningOn(j, vname)
	}, c.HTTP(leader))
	if err := c.Signal(victim, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			c.Signal(victim, syscall.SIGCONT)
		}
	}()
	survivors := []int{origin, 3 - origin - victim}
	j := waitJobOn(t, c, survivors, id)
	before := fmt.Sprint(j.Chunks)

	c.Signal(victim, syscall.SIGCONT)
	resumed = true
	// Back in the cluster, with nothing assigned: its stale run was dropped.
	c.Agree(t, []int{0, 1, 2}, 3, 3)
	nodetest.WaitFor(t, 30*time.Second, vname+" idle", func() bool { return tasksOn(c, leader, vname) == 0 })
	// Reads are local: the resumed node answers from its own log, which
	// catches up from the leader after the pause.
	after := e2e.WaitJob(t, 30*time.Second, vname+" caught up with the finished job", "", id,
		func(j httpapi.JobView) bool { return j.State == "done" }, c.HTTP(victim))
	if fmt.Sprint(after.Chunks) != before {
		t.Fatalf("the paused worker changed the finished job:\nbefore %s\nafter  %s %s", before, after.State, fmt.Sprint(after.Chunks))
	}
	checkPlayable(t, c.HTTP(victim), after)
}
