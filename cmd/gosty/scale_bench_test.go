package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gosty/gosty/node/nodetest"
	"github.com/gosty/gosty/transcoder/synthetic"
)

// scaleSetup is one control-plane benchmark configuration.
type scaleSetup struct {
	nodes, slots, chunks int
	chunkSeconds         float64 // media seconds per chunk
	factor               float64 // encode wall seconds per media second
	bitRate              int64   // source bits/s (chunk sizes)
}

// perChunk is the wall time one chunk encode takes.
func (s scaleSetup) perChunk() time.Duration {
	return time.Duration(s.chunkSeconds * s.factor * float64(time.Second))
}

// ideal is the encode phase with every slot busy all the time.
func (s scaleSetup) ideal() time.Duration {
	return time.Duration(float64(s.chunks) * float64(s.perChunk()) / float64(s.nodes*s.slots))
}

// scaleResult is what one run measured.
type scaleResult struct {
	setup                 scaleSetup
	window, total         time.Duration // first encode assignment → package assignment; submit → job done
	assigns, fails        int           // encode assignments and failed/requeued runs in the window
	leaderCPU, othersCPU  time.Duration // leader; mean of the other nodes
	leaderPeak, leaderHWM int64         // leader's largest sampled RSS in the window; its VmHWM at the end
	othersPeak            int64         // largest RSS of any other node in the window
	leaderChanges         int
	load                  float64 // machine load average at the end of the window
	machineBusy           float64 // fraction of the machine's CPU busy during the window
}

func (r scaleResult) efficiency() float64 { return r.setup.ideal().Seconds() / r.window.Seconds() }

// committed is the task entries (assign, done, fail) the window put through raft.
func (r scaleResult) committed() int { return r.assigns + r.setup.chunks + r.fails }

// BenchmarkControlPlane runs one long job on 5, 10 and 20 node processes
// built with the synthetic encoder (a chunk encode takes a fixed wall
// time per media second and writes blobs of realistic size), so that the
// CPU is not what limits the cluster: the leader's scheduling, raft,
// leases, heartbeats and chunk transfers are. It reports scheduling
// efficiency (ideal encode time / measured), task entries committed per
// second, and the leader's CPU and memory.
func BenchmarkControlPlane(b *testing.B) {
	base := scaleSetup{slots: 2, chunks: envInt("GOSTY_BENCH_CHUNKS", 2000), chunkSeconds: 6, factor: 0.2, bitRate: 1_000_000}
	sizes := envInts("GOSTY_BENCH_NODES", []int{5, 10, 20})
	if testing.Short() {
		base.chunks, base.factor, sizes = 48, 0.05, []int{3}
	}
	bin := buildSynthetic(b)
	var results []scaleResult
	for k, n := range sizes {
		s := base
		s.nodes = n
		r := scaleOnce(b, bin, 44+k, s)
		results = append(results, r)
		b.ReportMetric(r.efficiency(), fmt.Sprintf("efficiency-%dnodes", n))
		b.ReportMetric(float64(r.committed())/r.window.Seconds(), fmt.Sprintf("tasks/s-%dnodes", n))
		b.Logf("%d nodes: window %v (ideal %v), efficiency %.3f, %d task entries (%.1f/s), leader CPU %v, peak RSS %s, machine busy %.0f%%",
			n, r.window.Round(10*time.Millisecond), s.ideal(), r.efficiency(), r.committed(), float64(r.committed())/r.window.Seconds(),
			r.leaderCPU.Round(10*time.Millisecond), mibOf(r.leaderPeak), 100*r.machineBusy)
	}
	var buf bytes.Buffer
	s := results[0].setup
	fmt.Fprintf(&buf, "## Control-plane scale\n\n")
	fmt.Fprintf(&buf, "Measured %s with `make bench BENCH=ControlPlane` (BenchmarkControlPlane in cmd/gosty), one run per size.\n\n", time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&buf, "- Machine: %s\n", machine())
	fmt.Fprintf(&buf, "- Nodes: real `gosty node` processes on 127.0.4x.y built with `-tags gostysynthetic`, production timings (no `--fast`), `--slots %d`, 3 voters, replicas 2\n", s.slots)
	fmt.Fprintf(&buf, "- Encoder: synthetic (`GOSTY_SYNTHETIC_ENCODER=%g`): a %g s chunk takes %v of wall time and writes each rendition at its bit rate (360p ladder: 360p, 240p, 144p, 1.4 Mb/s); chunk sources are %d kb/s; audio 128 kb/s\n",
		s.factor, s.chunkSeconds, s.perChunk(), s.bitRate/1000)
	fmt.Fprintf(&buf, "- Job: %d chunks (%.0f s of media), uploaded to a node that does not lead; *window* runs from the first encode assignment to the package assignment (the last encode committed), read from the nodes' logs\n",
		s.chunks, float64(s.chunks)*s.chunkSeconds)
	fmt.Fprintf(&buf, "- *Ideal* = chunks × per-chunk time / (nodes × slots); *efficiency* = ideal / window; *task entries* = encode assignments + completions + failures committed in the window\n")
	fmt.Fprintf(&buf, "- Leader CPU and RSS from /proc/<pid>/stat and status sampled every 250 ms; *machine busy* is the share of all cores in use during the window (other jobs on the machine included)\n\n")
	fmt.Fprintf(&buf, "| nodes | slots | ideal | window | efficiency | task entries/s | leader CPU (share of window) | leader peak RSS | other nodes: mean CPU, peak RSS | leader changes | machine busy | submit → done |\n")
	fmt.Fprintf(&buf, "|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		fmt.Fprintf(&buf, "| %d | %d | %.1f s | %.1f s | **%.3f** | %.1f | %.1f s (%.0f%%) | %s (VmHWM %s) | %.1f s, %s | %d | %.0f%% | %.1f s |\n",
			r.setup.nodes, r.setup.nodes*r.setup.slots, r.setup.ideal().Seconds(), r.window.Seconds(), r.efficiency(),
			float64(r.committed())/r.window.Seconds(), r.leaderCPU.Seconds(), 100*r.leaderCPU.Seconds()/r.window.Seconds(),
			mibOf(r.leaderPeak), mibOf(r.leaderHWM), r.othersCPU.Seconds(), mibOf(r.othersPeak), r.leaderChanges, 100*r.machineBusy, r.total.Seconds())
	}
	last := results[len(results)-1]
	verdict := "met"
	if last.efficiency() < 0.9 {
		verdict = "**missed**"
	}
	fmt.Fprintf(&buf, "\nTarget: efficiency ≥ 0.9 at %d nodes: %s (%.3f).\n\n", last.setup.nodes, verdict, last.efficiency())
	writeSection(b, "40-control-plane.md", buf.Bytes())
}

func envInts(name string, def []int) []int {
	var out []int
	for _, f := range strings.Split(os.Getenv(name), ",") {
		if v, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && v > 0 {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		return def
	}
	return out
}

// machineCPU is the busy and total jiffies of the whole machine.
func machineCPU() (busy, total int64) {
	b, _ := os.ReadFile("/proc/stat")
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

func scaleOnce(b *testing.B, bin string, subnet int, s scaleSetup) scaleResult {
	dir, err := os.MkdirTemp("", "gosty-scale-")
	if err != nil {
		b.Fatal(err)
	}
	// Each run's media go now, not at the end of the benchmark.
	defer os.RemoveAll(dir)
	c, l := newCluster(b, clusterOpts{subnet: subnet, size: s.nodes, bin: bin, dir: dir,
		env: []string{"GOSTY_SYNTHETIC_ENCODER=" + strconv.FormatFloat(s.factor, 'g', -1, 64)}},
		"--slots", strconv.Itoa(s.slots), "--log-level", "info")
	defer func() {
		for _, i := range c.Running() {
			c.Kill(i)
		}
	}()
	for i := range s.nodes {
		if err := c.Start(i); err != nil {
			b.Fatal(err)
		}
	}
	pods := make([]int, s.nodes)
	for i := range pods {
		pods[i] = i
	}
	v := agreeWithin(b, c, pods, s.nodes, min(3, s.nodes), 3*time.Minute)
	lead := podOf(c, v.Leader)
	origin := (lead + 1) % s.nodes
	pids := map[int]int{}
	var all []int
	for _, i := range pods {
		c.mu.Lock()
		pids[i] = c.procs[i].Process.Pid
		c.mu.Unlock()
		all = append(all, pids[i])
	}
	smp := startSampler(all, 250*time.Millisecond)
	defer smp.Stop()
	busy0, total0 := machineCPU()

	src := filepath.Join(dir, "source.gsy")
	desc := synthetic.Source{Duration: float64(s.chunks) * s.chunkSeconds, Width: 640, Height: 360, FPS: 25,
		BitRate: s.bitRate, Audio: true, Name: fmt.Sprintf("scale-%d", s.nodes)}
	if err := os.WriteFile(src, desc.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	submitted := time.Now()
	id := uploadTo(b, c.HTTP(origin), src, fmt.Sprintf(`{"chunk_seconds":%g,"renditions":["360p","240p","144p"]}`, s.chunkSeconds))
	// Waiting reads the logs, not the API: a 2,000-chunk job's JSON is
	// large, and polling it would load the nodes being measured.
	w := &logWatch{}
	nodetest.WaitFor(b, 30*time.Minute, "the package task done", func() bool {
		time.Sleep(200 * time.Millisecond)
		return w.found(l, `"msg":"task done"`, `"kind":"package"`) || w.found(l, `"msg":"task failed"`, `"permanent":true`)
	})
	var j failJob
	nodetest.WaitFor(b, time.Minute, "the job done", func() bool {
		time.Sleep(200 * time.Millisecond)
		var cur failJob
		if getJSON(c.HTTP(origin)+"/api/v1/jobs/"+id, &cur) != nil {
			return false
		}
		j = cur
		return j.State == "done" || j.State == "failed"
	})
	total := time.Since(submitted)
	if j.State != "done" {
		b.Fatalf("job %s: %s", j.State, j.Error)
	}
	if len(j.Chunks) != s.chunks {
		b.Fatalf("job has %d chunks, want %d", len(j.Chunks), s.chunks)
	}

	r := scaleResult{setup: s, total: total}
	var start, end time.Time
	leaders := map[string]bool{}
	for _, ll := range l.lines() {
		switch {
		case ll.Msg == "task assigned" && strings.Contains(ll.Task, "/encode/"):
			if start.IsZero() {
				start = ll.Time
			}
			r.assigns++
		case ll.Msg == "task assigned" && strings.HasSuffix(ll.Task, "/package") && end.IsZero():
			end = ll.Time
		case ll.Msg == "task taken back" || (ll.Msg == "task failed" && ll.Kind == "encode"):
			r.fails++
		case ll.Msg == "scheduling as leader":
			leaders[ll.node] = true
		}
	}
	if start.IsZero() || end.IsZero() {
		b.Fatalf("no encode window in the logs (start %v, end %v)", start, end)
	}
	r.window = end.Sub(start)
	r.leaderChanges = len(leaders) - 1
	r.leaderCPU, r.leaderPeak = smp.between(pids[lead], start, end)
	r.leaderHWM = readProc(pids[lead]).hwm
	for _, i := range pods {
		if i == lead {
			continue
		}
		cpu, peak := smp.between(pids[i], start, end)
		r.othersCPU += cpu
		r.othersPeak = max(r.othersPeak, peak)
	}
	r.othersCPU /= time.Duration(max(1, s.nodes-1))
	busy1, total1 := machineCPU()
	r.machineBusy = float64(busy1-busy0) / float64(max(1, total1-total0))
	r.load = loadAvg()
	// The leader must not have changed: its CPU would be split.
	var after clusterView
	if getJSON(c.HTTP(origin)+"/api/v1/cluster", &after) == nil && after.Leader != v.Leader {
		b.Logf("leader changed during the run: %s → %s", v.Leader, after.Leader)
	}
	return r
}

// agreeWithin is agree with a longer deadline (many processes on few cores).
func agreeWithin(t testing.TB, c *localCluster, pods []int, alive, voters int, d time.Duration) clusterView {
	t.Helper()
	var v clusterView
	nodetest.WaitFor(t, d, fmt.Sprintf("%d pods to agree on %d alive, %d voters", len(pods), alive, voters), func() bool {
		var first string
		for k, i := range pods {
			var cur clusterView
			if err := getJSON(c.HTTP(i)+"/api/v1/cluster", &cur); err != nil || cur.Leader == "" {
				return false
			}
			a, vs := 0, 0
			for _, m := range cur.Members {
				if m.State == "alive" {
					a++
					if m.Voter {
						vs++
					}
				}
			}
			if a != alive || vs != voters {
				return false
			}
			if k == 0 {
				first, v = cur.summary(), cur
			} else if cur.summary() != first {
				return false
			}
		}
		return true
	})
	return v
}
