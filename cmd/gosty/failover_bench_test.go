package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/node/nodetest"
)

// attemptsSum adds up the assignment attempts of a job's chunks: it grows
// by one with every new assignment of an encode task.
func attemptsSum(c *e2e.Cluster, pod int, id string) (int, bool) {
	var j httpapi.JobView
	if e2e.GetJSON(c.HTTP(pod)+"/api/v1/jobs/"+id, &j) != nil {
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
	var restart []restartTimes
	// Runs take turns (leader kill, worker kill, full restart), each on
	// fresh processes: run r of each kind uses 127.0.4x.(10r+1..).
	for r := range runs {
		leaderKill = append(leaderKill, failoverRun(b, 40, 1+10*r, true))
		workerKill = append(workerKill, failoverRun(b, 41, 1+10*r, false))
		restart = append(restart, restartOnce(b, 42, 1+10*r))
	}
	pick := func(f func(restartTimes) time.Duration) []time.Duration {
		var out []time.Duration
		for _, r := range restart {
			out = append(out, f(r))
		}
		return out
	}
	leader, running, committed, done := pick(func(r restartTimes) time.Duration { return r.leader }),
		pick(func(r restartTimes) time.Duration { return r.running }),
		pick(func(r restartTimes) time.Duration { return r.committed }),
		pick(func(r restartTimes) time.Duration { return r.done })
	b.ReportMetric(medianDur(leaderKill).Seconds(), "leader-kill-s")
	b.ReportMetric(medianDur(workerKill).Seconds(), "worker-kill-s")
	b.ReportMetric(medianDur(running).Seconds(), "restart-running-s")
	b.Logf("leader kill %v, worker kill %v, full restart: leader %v, task running %v, task committed %v, job done %v",
		roundAll(leaderKill), roundAll(workerKill), roundAll(leader), roundAll(running), roundAll(committed), roundAll(done))
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "## Failover\n\nMeasured %s with `make bench BENCH=Failover` (BenchmarkFailover in cmd/gosty): three node processes on loopback\n", time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&buf, "with `--fast` timings (gossip probe 500 ms, raft heartbeat 500 ms, lease 4 s + 0.5 s per media second), `--slots 1`, a job of\n")
	fmt.Fprintf(&buf, "12 two-second chunks (x264 medium) in flight, SIGKILL mid-job; %d runs of each, taking turns, each on fresh processes.\n", runs)
	fmt.Fprintf(&buf, "A full restart SIGKILLs all three nodes at once and starts them again at once on the same addresses and data dirs;\n")
	fmt.Fprintf(&buf, "every restarted job finished. Times run from the SIGKILL (from the restart for a full restart) to the event as a client polling\n")
	fmt.Fprintf(&buf, "the API every 50 ms sees it.\n\n")
	fmt.Fprintf(&buf, "- Machine: %s\n\n", machine())
	fmt.Fprintf(&buf, "| event | median | worst | all runs |\n|---|---|---|---|\n")
	fmt.Fprintf(&buf, "| leader kill → next task assignment | %v | %v | %v |\n", medianDur(leaderKill), maxDur(leaderKill), roundAll(leaderKill))
	fmt.Fprintf(&buf, "| worker kill → the chunk it was encoding assigned to another node | %v | %v | %v |\n", medianDur(workerKill), maxDur(workerKill), roundAll(workerKill))
	fmt.Fprintf(&buf, "| full restart → a leader elected | %v | %v | %v |\n", medianDur(leader), maxDur(leader), roundAll(leader))
	fmt.Fprintf(&buf, "| full restart → job resumed (an encode running again) | %v | %v | %v |\n", medianDur(running), maxDur(running), roundAll(running))
	fmt.Fprintf(&buf, "| full restart → first task entry committed (assign, done or fail) | %v | %v | %v |\n", medianDur(committed), maxDur(committed), roundAll(committed))
	fmt.Fprintf(&buf, "| full restart → job done | %v | %v | %v |\n\n", medianDur(done), maxDur(done), roundAll(done))
	writeSection(b, "30-failover.md", buf.Bytes())
}

func medianDur(ds []time.Duration) time.Duration { return e2e.Median(ds).Round(10 * time.Millisecond) }

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
// until the cluster assigned a task again (or the victim's chunk to another
// node), and whether that was measured.
func failoverOnce(b *testing.B, subnet, first int, leader bool) (time.Duration, bool) {
	c := e2e.New(b, e2e.Opts{Subnet: subnet, First: first, Size: 3, Fast: true}, "--slots", "1", "--drain-timeout", "5s")
	defer func() { // each run's processes go now, not at the end of the benchmark
		for _, i := range c.Running() {
			c.Kill(i)
		}
	}()
	c.StartAll(b, 3)
	v := c.Agree(b, []int{0, 1, 2}, 3, 3)
	lead := c.Ordinal(v.Leader)
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
	id := e2e.Upload(b, c.HTTP(origin), src, `{"chunk_seconds":2,"preset":"medium"}`)
	vname := c.Name(victim)
	nodetest.WaitFor(b, 2*time.Minute, "mid-job with work on the victim", func() bool {
		var j httpapi.JobView
		e2e.GetJSON(c.HTTP(origin)+"/api/v1/jobs/"+id, &j)
		return j.State == "transcoding" && e2e.Encoded(j) >= 1 && e2e.RunningOn(j, vname)
	})
	if leader {
		before, _ := attemptsSum(c, observer, id)
		c.Kill(victim)
		start := time.Now()
		nodetest.WaitFor(b, time.Minute, "a new assignment", func() bool {
			n, ok := attemptsSum(c, observer, id)
			return ok && n > before
		})
		return time.Since(start), true
	}
	// The chunks the victim runs right before it dies, and their attempts
	// (read from the leader, which the job was submitted to).
	var j httpapi.JobView
	if err := e2e.GetJSON(c.HTTP(origin)+"/api/v1/jobs/"+id, &j); err != nil {
		b.Fatal(err)
	}
	mine := map[int]int{}
	for _, ch := range j.Chunks {
		if ch.RunningOn == vname {
			mine[ch.Index] = ch.Attempts
		}
	}
	c.Kill(victim)
	start := time.Now()
	if len(mine) == 0 {
		return 0, false // its chunk finished in between: not a measurement
	}
	valid := true
	nodetest.WaitFor(b, time.Minute, "the victim's chunk assigned elsewhere", func() bool {
		var cur httpapi.JobView
		if e2e.GetJSON(c.HTTP(observer)+"/api/v1/jobs/"+id, &cur) != nil {
			return false
		}
		for _, ch := range cur.Chunks {
			att, ok := mine[ch.Index]
			switch {
			case !ok:
			case ch.EncodedBy == vname: // it finished just before the kill
				valid = false
				return true
			case ch.Attempts > att && ch.RunningOn != "" && ch.RunningOn != vname:
				return true
			}
		}
		return false
	})
	return time.Since(start), valid
}

// failoverRun repeats failoverOnce until it measures (a worker's chunk can
// finish in the instant before the kill), at most three times.
func failoverRun(b *testing.B, subnet, first int, leader bool) time.Duration {
	for try := range 3 {
		if d, ok := failoverOnce(b, subnet, first+3*try, leader); ok {
			return d
		}
		b.Logf("the victim's chunk finished before it died; again")
	}
	b.Fatal("no failover measured in three tries")
	return 0
}

// restartTimes are the moments after a full restart, from the restart.
type restartTimes struct {
	leader    time.Duration // every node sees the same leader
	running   time.Duration // some node runs an encode again
	committed time.Duration // the first new task entry is committed
	done      time.Duration // the job is done
}

// restartOnce SIGKILLs every node mid-job (a power cut), starts them all
// again on the same addresses and data dirs, and times how long the
// cluster takes to elect a leader, run the job's work again, commit new
// progress and finish.
func restartOnce(b *testing.B, subnet, first int) restartTimes {
	c := e2e.New(b, e2e.Opts{Subnet: subnet, First: first, Size: 3, Fast: true}, "--slots", "1", "--drain-timeout", "5s")
	defer func() {
		for _, i := range c.Running() {
			c.Kill(i)
		}
	}()
	c.StartAll(b, 3)
	c.Agree(b, []int{0, 1, 2}, 3, 3)
	src := nodetest.GenClip(b, filepath.Join(b.TempDir(), "clip.mp4"), "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=24",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p")
	id := e2e.Upload(b, c.HTTP(1), src, `{"chunk_seconds":2,"preset":"medium"}`)
	nodetest.WaitFor(b, 2*time.Minute, "mid-job", func() bool {
		var j httpapi.JobView
		e2e.GetJSON(c.HTTP(1)+"/api/v1/jobs/"+id, &j)
		return j.State == "transcoding" && e2e.Encoded(j) >= 1 && e2e.Encoded(j) < len(j.Chunks)-3
	})
	// All at once: signal every process, then reap them.
	for _, i := range c.Running() {
		c.Signal(i, syscall.SIGKILL)
	}
	for i := range 3 {
		c.Kill(i)
	}
	killed := time.Now()
	c.StartAll(b, 3)
	restarted := time.Now()
	var t restartTimes
	nodetest.WaitFor(b, 2*time.Minute, "the job resumed", func() bool {
		since := time.Since(restarted)
		if t.leader == 0 {
			var views [3]httpapi.ClusterStatus
			same := true
			for i := range 3 {
				same = same && e2e.GetJSON(c.HTTP(i)+"/api/v1/cluster", &views[i]) == nil && views[i].Leader != "" && views[i].Leader == views[0].Leader
			}
			if same {
				t.leader = since
			}
		}
		for i := range 3 {
			if t.running == 0 && metricValue(c.HTTP(i), "gosty_tasks_in_flight") > 0 {
				t.running = since
			}
			var j struct {
				UpdatedAt time.Time `json:"updated_at"`
			}
			if t.committed == 0 && e2e.GetJSON(c.HTTP(i)+"/api/v1/jobs/"+id, &j) == nil && j.UpdatedAt.After(killed) {
				t.committed = since
			}
		}
		return t.leader > 0 && t.running > 0 && t.committed > 0
	})
	waitJobOn(b, c, []int{0, 1, 2}, id)
	t.done = time.Since(restarted)
	return t
}

// metricValue is the value of an unlabelled metric on a node (-1 when it
// cannot be read).
func metricValue(base, name string) float64 {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}
