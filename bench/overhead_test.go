package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosty/gosty/node"
	"github.com/gosty/gosty/node/nodetest"
	"github.com/gosty/gosty/transcoder"
)

// sample is one timed run.
type sample struct {
	wall, cpu time.Duration
	others    float64 // cores busy with other work on the machine meanwhile
}

// machineBusy is the CPU time the whole machine has spent busy so far
// (everything but idle and iowait, all cores).
func machineBusy() time.Duration {
	raw, _ := os.ReadFile("/proc/stat")
	line, _, _ := strings.Cut(string(raw), "\n")
	f := strings.Fields(line)
	var busy int64
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return time.Duration(busy) * time.Second / 100 // USER_HZ
}

// measured fills in how busy the rest of the machine was during s, given
// the machine's busy time before it started.
func (s sample) measured(busy0 time.Duration) sample {
	if other := machineBusy() - busy0 - s.cpu; other > 0 {
		s.others = other.Seconds() / s.wall.Seconds()
	}
	return s
}

// BenchmarkOverhead compares a one-node and a three-node cluster with one
// plain ffmpeg command doing the same encoding (same ladder, same x264
// settings, audio once) on the same clip, in interleaved rounds. A
// cluster's time runs from the first upload byte to the job's done state,
// so it includes the upload, probe, split, every task hand-off through
// raft, transfers between nodes, stitching and packaging; its CPU time
// runs until the published outputs are replicated too.
func BenchmarkOverhead(b *testing.B) {
	width, height, seconds, runs := 1920, 1080, envInt("GOSTY_BENCH_SECONDS", 30), envInt("GOSTY_BENCH_RUNS", 3)
	if testing.Short() {
		width, height, seconds, runs = 640, 360, 6, 1
	}
	dir := b.TempDir()
	src := filepath.Join(dir, "source.mp4")
	// Mild temporal noise keeps the encoder honest: a clean test pattern
	// compresses unrealistically well.
	nodetest.GenClip(b, src, "-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=30:duration=%d", width, height, seconds),
		"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=440:duration=%d", seconds),
		"-vf", "noise=alls=6:allf=t", "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-g", "60",
		"-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest")

	tc, err := transcoder.New(transcoder.Config{})
	if err != nil {
		b.Fatal(err)
	}
	probe, err := tc.Probe(context.Background(), src)
	if err != nil {
		b.Fatal(err)
	}
	rends, err := transcoder.Plan(probe, transcoder.Options{})
	if err != nil {
		b.Fatal(err)
	}
	cfg := node.DefaultConfig()
	settings := transcoder.EncodeSettings{Renditions: rends, FrameRate: probe.Video.FrameRate,
		SegmentSeconds: transcoder.DefaultSegmentSeconds, Preset: cfg.Preset}

	// Every node runs with its defaults, as if it had the machine to
	// itself (the knobs below are for exploring settings).
	tweak := func(c *node.Config) {
		c.EncoderThreads = envInt("GOSTY_BENCH_THREADS", 0)
		c.Slots = envInt("GOSTY_BENCH_SLOTS", c.Slots)
		c.Stabilize = time.Second
	}
	tweak(&cfg)
	options := os.Getenv("GOSTY_BENCH_OPTIONS")
	one, stopOne := startNodes(b, filepath.Join(dir, "one"), 1, tweak)
	defer stopOne()
	three, stopThree := startNodes(b, filepath.Join(dir, "three"), 3, tweak)
	defer stopThree()

	var plain, single, triple []sample
	b.ResetTimer()
	for i := range runs {
		// Rotate the order so drift in the machine's state hits all three.
		steps := []func(){
			func() {
				plain = append(plain, runPlain(b, tc, src, probe, settings, filepath.Join(dir, fmt.Sprint("plain", i))))
			},
			func() { single = append(single, runNode(b, one, src, options)) },
			func() { triple = append(triple, runNode(b, three, src, options)) },
		}
		for k := range steps {
			steps[(k+i)%len(steps)]()
		}
	}
	b.StopTimer()

	wall1, cpu1 := ratios(single, plain)
	wall3, cpu3 := ratios(triple, plain)
	b.ReportMetric(median(wall1), "wall-ratio-1node")
	b.ReportMetric(median(cpu1), "cpu-ratio-1node")
	b.ReportMetric(median(wall3), "wall-ratio-3nodes")
	b.ReportMetric(median(cpu3), "cpu-ratio-3nodes")
	b.ReportMetric(medianDur(plain, func(s sample) time.Duration { return s.wall }).Seconds(), "plain-s")
	if dir := os.Getenv("GOSTY_BENCH_DIR"); dir != "" && !testing.Short() {
		writeReport(b, filepath.Join(dir, "10-overhead.md"), width, height, seconds, len(rends), cfg, plain, single, triple)
	}
}

func runPlain(b *testing.B, tc *transcoder.Transcoder, src string, p *transcoder.Probe, s transcoder.EncodeSettings, out string) sample {
	if err := os.MkdirAll(out, 0o755); err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(out)
	args, err := tc.BaselineArgs(src, p, s, out)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(tc.FFmpeg(), args...)
	busy0 := machineBusy()
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("plain ffmpeg: %v %s", err, out)
	}
	st := cmd.ProcessState
	return sample{wall: time.Since(start), cpu: st.UserTime() + st.SystemTime()}.measured(busy0)
}

// runNode submits the clip to the first node and waits for the job to be
// done (the wall time) and for its outputs to be replicated (the CPU time
// then includes the copies).
func runNode(b *testing.B, bases []string, src, options string) sample {
	self0, kids0, busy0 := rusage(syscall.RUSAGE_SELF), rusage(syscall.RUSAGE_CHILDREN), machineBusy()
	start := time.Now()
	id := upload(b, bases[0], src, options)
	for {
		state, errText := jobState(b, bases[0], id)
		if state == "done" {
			break
		}
		if state == "failed" || state == "canceled" {
			b.Fatalf("job %s %s: %s", id, state, errText)
		}
		time.Sleep(100 * time.Millisecond) // polling the API as a client would
	}
	wall := time.Since(start)
	if len(bases) > 1 {
		nodetest.WaitFor(b, 2*time.Minute, "outputs replicated", func() bool {
			time.Sleep(100 * time.Millisecond)
			return metric(b, bases[0], "gosty_blobs_under_replicated", "") == 0
		})
	}
	cpu := rusage(syscall.RUSAGE_SELF) - self0 + rusage(syscall.RUSAGE_CHILDREN) - kids0
	end := time.Since(start) // CPU runs until the copies are made
	s := sample{wall: end, cpu: cpu}.measured(busy0)
	s.wall = wall
	return s
}

func rusage(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func upload(b *testing.B, base, src, options string) string {
	f, err := os.Open(src)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	form, ct := nodetest.StreamForm(filepath.Base(src), options, f)
	resp, err := http.Post(base+"/api/v1/jobs", ct, form)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var j struct{ ID string }
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(body, &j) != nil {
		b.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	return j.ID
}

func jobState(b *testing.B, base, id string) (string, string) {
	resp, err := http.Get(base + "/api/v1/jobs/" + id)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var j struct{ State, Error string }
	json.NewDecoder(resp.Body).Decode(&j)
	return j.State, j.Error
}

func ratios(num, den []sample) (wall, cpu []float64) {
	for i := range min(len(num), len(den)) {
		wall = append(wall, num[i].wall.Seconds()/den[i].wall.Seconds())
		cpu = append(cpu, num[i].cpu.Seconds()/den[i].cpu.Seconds())
	}
	return wall, cpu
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianDur(ss []sample, f func(sample) time.Duration) time.Duration {
	xs := make([]float64, len(ss))
	for i, s := range ss {
		xs[i] = float64(f(s))
	}
	return time.Duration(median(xs))
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			if _, v, ok := strings.Cut(l, ":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return "unknown CPU"
}

func writeReport(b *testing.B, path string, w, h, secs, nRend int, cfg node.Config, plain, single, triple []sample) {
	ffv, _ := exec.Command("ffmpeg", "-version").Output()
	ffLine, _, _ := strings.Cut(string(ffv), "\n")
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "## Overhead of a cluster against plain ffmpeg\n\n")
	fmt.Fprintf(&buf, "Measured %s with `GOSTY_BENCH_SECONDS=%d GOSTY_BENCH_RUNS=%d make bench BENCH=Overhead` (BenchmarkOverhead in bench/).\n", time.Now().UTC().Format("2006-01-02"), secs, len(plain))
	fmt.Fprintf(&buf, "Ratios come from interleaved rounds in one run (the order rotates every round); absolute times are only comparable\n")
	fmt.Fprintf(&buf, "within this table.\n\n")
	fmt.Fprintf(&buf, "- Machine: %s, %d cores, %s, %s; shared with other work (load average %.1f at the end)\n", cpuModel(), runtime.NumCPU(), runtime.Version(), ffLine, loadAverage())
	fmt.Fprintf(&buf, "- Clip: %dx%d, 30 fps, %d s, with AAC audio (testsrc2 plus temporal noise, x264 CRF 18 source)\n", w, h, secs)
	fmt.Fprintf(&buf, "- Ladder: the default for the source, %d renditions, x264 preset %s, 2 s GOP, AAC once\n", nRend, cfg.Preset)
	fmt.Fprintf(&buf, "- Clusters: in-process nodes on loopback, each with its defaults as if alone on the machine (%d slots, x264 threads = cores / slots), replicas 2;\n", cfg.Slots)
	fmt.Fprintf(&buf, "  the three nodes share this machine's %d cores. Wall: first upload byte to `done` (upload, probe, split, raft hand-offs,\n", runtime.NumCPU())
	fmt.Fprintf(&buf, "  chunk transfers, encodes, audio, stitching, HLS+DASH+MP4 packaging). CPU: every node and its ffmpegs until `done`\n")
	fmt.Fprintf(&buf, "  and, with three nodes, until the source and outputs have their second copy\n")
	fmt.Fprintf(&buf, "- Plain: one `ffmpeg` decoding once and encoding every rendition and the audio with the same settings (`Transcoder.BaselineArgs`), MP4 outputs, no packaging\n\n")
	fmt.Fprintf(&buf, "*Others* is how many cores other work on the machine kept busy during each run (machine busy time from /proc/stat minus the run's own CPU,\n")
	fmt.Fprintf(&buf, "over its wall time): a round is only fair when its three runs saw about the same.\n\n")
	fmt.Fprintf(&buf, "| round | plain wall | 1 node wall | 3 nodes wall | 1 node / plain | 3 nodes / plain | plain CPU | 1 node CPU | 3 nodes CPU | 1 node / plain | 3 nodes / plain | others (plain, 1, 3) |\n")
	fmt.Fprintf(&buf, "|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	wall1, cpu1 := ratios(single, plain)
	wall3, cpu3 := ratios(triple, plain)
	for i := range wall1 {
		fmt.Fprintf(&buf, "| %d | %.1f s | %.1f s | %.1f s | %.3f | %.3f | %.1f s | %.1f s | %.1f s | %.3f | %.3f | %.2f, %.2f, %.2f |\n", i+1,
			plain[i].wall.Seconds(), single[i].wall.Seconds(), triple[i].wall.Seconds(), wall1[i], wall3[i],
			plain[i].cpu.Seconds(), single[i].cpu.Seconds(), triple[i].cpu.Seconds(), cpu1[i], cpu3[i],
			plain[i].others, single[i].others, triple[i].others)
	}
	line := func(name string, wall, cpu []float64) {
		v := "met"
		if median(wall) > 1.10 {
			v = "**missed**"
		}
		fmt.Fprintf(&buf, "- %s: **median wall ratio %.3f** (spread %.3f–%.3f), median CPU ratio %.3f (spread %.3f–%.3f). Target wall ratio ≤ 1.10: %s.\n",
			name, median(wall), slices.Min(wall), slices.Max(wall), median(cpu), slices.Min(cpu), slices.Max(cpu), v)
	}
	buf.WriteString("\n")
	line("One node", wall1, cpu1)
	line("Three nodes", wall3, cpu3)
	buf.WriteString("\n")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
}

// loadAverage is the 1-minute load average.
func loadAverage() float64 {
	raw, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(raw))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}
