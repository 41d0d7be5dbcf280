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
	"github.com/gosty/gosty/node/nodetest"
)

type failJob struct {
	State, Error string
	Chunks       []struct {
		Index     int    `json:"index"`
		EncodedBy string `json:"encoded_by"`
		RunningOn string `json:"running_on"`
		Attempts  int    `json:"attempts"`
		Encoded   int64  `json:"encoded_bytes"`
	}
	Outputs struct {
		HLS string `json:"hls"`
	}
}

// runningOn reports whether some chunk is being encoded on node.
func (j failJob) runningOn(node string) bool {
	for _, c := range j.Chunks {
		if c.RunningOn == node {
			return true
		}
	}
	return false
}

func (j failJob) encoded() int {
	n := 0
	for _, c := range j.Chunks {
		if c.EncodedBy != "" {
			n++
		}
	}
	return n
}

// tasksOn is how many tasks the cluster has assigned to a node.
func tasksOn(c *localCluster, pod int, name string) int {
	var v struct {
		Members []struct {
			Name        string `json:"name"`
			TasksActive int    `json:"tasks_active"`
		} `json:"members"`
	}
	if getJSON(c.HTTP(pod)+"/api/v1/cluster", &v) != nil {
		return 0
	}
	for _, m := range v.Members {
		if m.Name == name {
			return m.TasksActive
		}
	}
	return 0
}

func podOf(c *localCluster, name string) int {
	i, _ := strconv.Atoi(strings.TrimPrefix(name, c.prefix+"-"))
	return i
}

// failoverSetup starts three nodes and submits a job long enough to kill
// something in the middle of it.
func failoverSetup(t *testing.T, subnet int, submitTo func(leader int) int) (*localCluster, int, string, int) {
	t.Helper()
	c := newTestCluster(t, subnet, 3, "--slots", "1", "--drain-timeout", "5s")
	for i := range 3 {
		if err := c.Start(i); err != nil {
			t.Fatal(err)
		}
	}
	v := agree(t, c, []int{0, 1, 2}, 3, 3)
	leader := podOf(c, v.Leader)
	src := filepath.Join(t.TempDir(), "clip.mp4")
	nodetest.GenClip(t, src, "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=24",
		"-f", "lavfi", "-i", "sine=duration=24", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
		"-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest")
	origin := submitTo(leader)
	id := uploadTo(t, c.HTTP(origin), src, `{"chunk_seconds":2,"preset":"medium"}`)
	return c, leader, id, origin
}

func waitJobOn(t testing.TB, c *localCluster, pods []int, id string) failJob {
	t.Helper()
	var j failJob
	nodetest.WaitFor(t, 4*time.Minute, "job to finish", func() bool {
		for _, p := range pods {
			var cur failJob // fresh each time: omitted fields must not linger
			if getJSON(c.HTTP(p)+"/api/v1/jobs/"+id, &cur) == nil {
				j = cur
				return j.State == "done" || j.State == "failed"
			}
		}
		return false
	})
	if j.State != "done" {
		t.Fatalf("job ended %s: %s", j.State, j.Error)
	}
	return j
}

func checkPlayable(t *testing.T, base string, j failJob) {
	t.Helper()
	checkPlayableDuration(t, base, j, 24)
}

// checkPlayableDuration checks the HLS output opens through base and lasts
// secs, and that every chunk has one recorded encode.
func checkPlayableDuration(t *testing.T, base string, j failJob, secs float64) {
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
	vname := c.name(victim)
	nodetest.WaitFor(t, 2*time.Minute, vname+" encoding a chunk mid-job", func() bool {
		var j failJob
		getJSON(c.HTTP(leader)+"/api/v1/jobs/"+id, &j)
		return j.State == "transcoding" && j.encoded() >= 1 && j.runningOn(vname)
	})
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
	nodetest.WaitFor(t, 2*time.Minute, "the job mid-way", func() bool {
		var j failJob
		getJSON(c.HTTP(origin)+"/api/v1/jobs/"+id, &j)
		return j.State == "transcoding" && j.encoded() >= 1
	})
	old := c.name(leader)
	c.Kill(leader)
	killed := time.Now()
	var survivors []int
	for i := range 3 {
		if i != leader {
			survivors = append(survivors, i)
		}
	}
	nodetest.WaitFor(t, 15*time.Second, "a new leader", func() bool {
		var v httpapi.ClusterStatus
		return getJSON(c.HTTP(survivors[0])+"/api/v1/cluster", &v) == nil && v.Leader != "" && v.Leader != old
	})
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
	vname := c.name(victim)
	nodetest.WaitFor(t, 2*time.Minute, vname+" encoding a chunk mid-job", func() bool {
		var j failJob
		getJSON(c.HTTP(leader)+"/api/v1/jobs/"+id, &j)
		return j.State == "transcoding" && j.runningOn(vname)
	})
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
	agree(t, c, []int{0, 1, 2}, 3, 3)
	nodetest.WaitFor(t, 30*time.Second, vname+" idle", func() bool { return tasksOn(c, leader, vname) == 0 })
	// Reads are local: the resumed node answers from its own log, which
	// catches up from the leader after the pause.
	var after failJob
	nodetest.WaitFor(t, 30*time.Second, vname+" caught up with the finished job", func() bool {
		var j failJob
		if getJSON(c.HTTP(victim)+"/api/v1/jobs/"+id, &j) != nil {
			return false
		}
		after = j
		return j.State == "done"
	})
	if fmt.Sprint(after.Chunks) != before {
		t.Fatalf("the paused worker changed the finished job:\nbefore %s\nafter  %s %s", before, after.State, fmt.Sprint(after.Chunks))
	}
	checkPlayable(t, c.HTTP(victim), after)
}
