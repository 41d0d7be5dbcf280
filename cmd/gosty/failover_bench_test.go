package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gosty/gosty/node/nodetest"
)

// attemptsSum adds up the assignment attempts of a job's chunks: it grows
// by one with every new assignment of an encode task.
func attemptsSum(c *localCluster, pod int, id string) (int, bool) {
	var j failJob
	if getJSON(c.HTTP(pod)+"/api/v1/jobs/"+id, &j) != nil {
		return 0, false
	}
	n := 0
	for _, ch := range j.Chunks {
		n += ch.Attempts
	}
	return n, true
}

// BenchmarkFailover measures, on real processes with --fast gossip timings,
// how long the cluster takes to act after a leader or a worker is killed
// mid-job: leader kill → the next task assignment (by the new leader);
// worker kill → the killed worker's chunk assigned elsewhere.
func BenchmarkFailover(b *testing.B) {
	runs := envInt("GOSTY_BENCH_RUNS", 3)
	if testing.Short() {
		runs = 1
	}
	var leaderKill, workerKill []time.Duration
	for r := range runs {
		leaderKill = append(leaderKill, failoverOnce(b, 20+2*r, true))
		workerKill = append(workerKill, failoverOnce(b, 21+2*r, false))
	}
	b.ReportMetric(medianDur(leaderKill).Seconds(), "leader-kill-s")
	b.ReportMetric(medianDur(workerKill).Seconds(), "worker-kill-s")
	if dir := os.Getenv("GOSTY_BENCH_DIR"); dir != "" && !testing.Short() {
		var buf bytes.Buffer
		fmt.Fprintf(&buf, "## Failover\n\nMeasured %s with `make bench` (BenchmarkFailover in cmd/gosty): three node processes on loopback\n", time.Now().UTC().Format("2006-01-02"))
		fmt.Fprintf(&buf, "with `--fast` gossip timings (probe 500 ms), a job of 12 two-second chunks in flight, SIGKILL mid-job; %d runs each.\n\n", runs)
		fmt.Fprintf(&buf, "| event | median | worst | all runs |\n|---|---|---|---|\n")
		fmt.Fprintf(&buf, "| leader kill → next task assignment | %v | %v | %v |\n", medianDur(leaderKill), maxDur(leaderKill), roundAll(leaderKill))
		fmt.Fprintf(&buf, "| worker kill → its chunk assigned elsewhere | %v | %v | %v |\n\n", medianDur(workerKill), maxDur(workerKill), roundAll(workerKill))
		if err := os.WriteFile(filepath.Join(dir, "30-failover.md"), buf.Bytes(), 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

func medianDur(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2].Round(10 * time.Millisecond)
}

func maxDur(ds []time.Duration) time.Duration { return slices.Max(ds).Round(10 * time.Millisecond) }

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(10 * time.Millisecond)
	}
	return out
}

func envInt(name string, def int) int {
	var v int
	if _, err := fmt.Sscan(os.Getenv(name), &v); err == nil && v > 0 {
		return v
	}
	return def
}

// failoverOnce kills the leader (or a worker) mid-job and returns the time
// until the cluster assigned a task again (or reassigned the victim's).
func failoverOnce(b *testing.B, subnet int, leader bool) time.Duration {
	c := newTestCluster(b, subnet, 3, "--slots", "1", "--drain-timeout", "5s")
	defer func() { // each run's processes go now, not at the end of the benchmark
		for _, i := range c.Running() {
			c.Kill(i)
		}
	}()
	for i := range 3 {
		if err := c.Start(i); err != nil {
			b.Fatal(err)
		}
	}
	v := agree(b, c, []int{0, 1, 2}, 3, 3)
	lead := podOf(c, v.Leader)
	origin := lead
	if leader {
		origin = (lead + 1) % 3
	}
	victim := lead
	if !leader {
		victim = (origin + 1) % 3
	}
	observer := 3 - origin - victim
	if observer == victim || observer == origin {
		observer = origin
	}
	src := nodetest.GenClip(b, filepath.Join(b.TempDir(), "clip.mp4"), "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=24",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p")
	id := uploadTo(b, c.HTTP(origin), src, `{"chunk_seconds":2,"preset":"medium"}`)
	vname := c.name(victim)
	nodetest.WaitFor(b, 2*time.Minute, "mid-job with work on the victim", func() bool {
		var j failJob
		getJSON(c.HTTP(origin)+"/api/v1/jobs/"+id, &j)
		return j.State == "transcoding" && j.encoded() >= 1 && j.runningOn(vname)
	})
	before, _ := attemptsSum(c, observer, id)
	c.Kill(victim)
	start := time.Now()
	if !leader {
		// The victim's own task must be taken back before the next
		// assignment can be its chunk going elsewhere.
		nodetest.WaitFor(b, time.Minute, "the victim's task taken back", func() bool {
			return tasksOn(c, observer, vname) == 0
		})
		before, _ = attemptsSum(c, observer, id)
	}
	nodetest.WaitFor(b, time.Minute, "a new assignment", func() bool {
		n, ok := attemptsSum(c, observer, id)
		return ok && n > before
	})
	return time.Since(start)
}
