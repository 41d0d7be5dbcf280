package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
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
type sample struct{ wall, cpu time.Duration }

// BenchmarkOverhead compares a one-node cluster with one plain ffmpeg
// command doing the same encoding (same ladder, same x264 settings, audio
// once) on the same clip, in interleaved rounds. The node's time runs from
// the first upload byte to the job's done state, so it includes the upload,
// probe, split, every task hand-off through raft, stitching and packaging.
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

	cfg.Name, cfg.DataDir, cfg.HTTPAddr, cfg.BindAddr = "bench", filepath.Join(dir, "data"), "127.0.0.1:0", "127.0.0.1"
	cfg.RaftPort, cfg.GossipPort, cfg.InternalPort = 0, 0, 0
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.EncoderThreads = envInt("GOSTY_BENCH_THREADS", 0)
	cfg.Slots = envInt("GOSTY_BENCH_SLOTS", cfg.Slots)
	options := os.Getenv("GOSTY_BENCH_OPTIONS")
	n, err := node.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { n.Run(ctx); close(stopped) }()
	defer func() { cancel(); <-stopped }()
	base := "http://" + n.HTTPAddr()
	nodetest.WaitReady(b, base, 20*time.Second)

	var plain, gosty []sample
	b.ResetTimer()
	for i := range runs {
		// Alternate the order so drift in the machine's state hits both.
		steps := []func(){
			func() {
				plain = append(plain, runPlain(b, tc, src, probe, settings, filepath.Join(dir, fmt.Sprint("plain", i))))
			},
			func() { gosty = append(gosty, runNode(b, base, src, options)) },
		}
		if i%2 == 1 {
			steps[0], steps[1] = steps[1], steps[0]
		}
		for _, s := range steps {
			s()
		}
	}
	b.StopTimer()

	wall, cpu := ratios(gosty, plain)
	b.ReportMetric(median(wall), "wall-ratio")
	b.ReportMetric(median(cpu), "cpu-ratio")
	b.ReportMetric(medianDur(plain, func(s sample) time.Duration { return s.wall }).Seconds(), "plain-s")
	b.ReportMetric(medianDur(gosty, func(s sample) time.Duration { return s.wall }).Seconds(), "node-s")
	if dir := os.Getenv("GOSTY_BENCH_DIR"); dir != "" && !testing.Short() {
		writeReport(b, filepath.Join(dir, "10-overhead.md"), width, height, seconds, len(rends), cfg, plain, gosty, wall, cpu)
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
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("plain ffmpeg: %v %s", err, out)
	}
	st := cmd.ProcessState
	return sample{wall: time.Since(start), cpu: st.UserTime() + st.SystemTime()}
}

func runNode(b *testing.B, base, src, options string) sample {
	self0, kids0 := rusage(syscall.RUSAGE_SELF), rusage(syscall.RUSAGE_CHILDREN)
	start := time.Now()
	id := upload(b, base, src, options)
	for {
		state, errText := jobState(b, base, id)
		if state == "done" {
			break
		}
		if state == "failed" || state == "canceled" {
			b.Fatalf("job %s %s: %s", id, state, errText)
		}
		time.Sleep(100 * time.Millisecond) // polling the API as a client would
	}
	wall := time.Since(start)
	cpu := rusage(syscall.RUSAGE_SELF) - self0 + rusage(syscall.RUSAGE_CHILDREN) - kids0
	return sample{wall: wall, cpu: cpu}
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
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		if options != "" {
			mw.WriteField("options", options)
		}
		fw, _ := mw.CreateFormFile("file", filepath.Base(src))
		_, err := io.Copy(fw, f)
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	resp, err := http.Post(base+"/api/v1/jobs", mw.FormDataContentType(), pr)
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

func writeReport(b *testing.B, path string, w, h, secs, nRend int, cfg node.Config, plain, gosty []sample, wall, cpu []float64) {
	ffv, _ := exec.Command("ffmpeg", "-version").Output()
	ffLine, _, _ := strings.Cut(string(ffv), "\n")
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "## Overhead of a one-node cluster against plain ffmpeg\n\n")
	fmt.Fprintf(&buf, "Measured %s. Ratios come from interleaved rounds in one run (alternating which goes first);\n", time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&buf, "absolute times are only comparable within this table.\n\n")
	fmt.Fprintf(&buf, "- Machine: %s, %d cores, %s, %s\n", cpuModel(), runtime.NumCPU(), runtime.Version(), ffLine)
	fmt.Fprintf(&buf, "- Clip: %dx%d, 30 fps, %d s, with AAC audio (testsrc2 plus temporal noise, x264 CRF 18 source)\n", w, h, secs)
	fmt.Fprintf(&buf, "- Ladder: the default for the source, %d renditions, x264 preset %s, 2 s GOP, AAC once\n", nRend, cfg.Preset)
	fmt.Fprintf(&buf, "- Node: %d slots; time from the first upload byte to `done` (upload, probe, split, raft hand-offs, encodes, audio, stitching, HLS+DASH+MP4 packaging)\n", cfg.Slots)
	fmt.Fprintf(&buf, "- Plain: one `ffmpeg` decoding once and encoding every rendition and the audio with the same settings (`Transcoder.BaselineArgs`), MP4 outputs, no packaging\n")
	fmt.Fprintf(&buf, "- Command: `GOSTY_BENCH_SECONDS=%d GOSTY_BENCH_RUNS=%d make bench`\n\n", secs, len(wall))
	fmt.Fprintf(&buf, "| round | plain wall | node wall | wall ratio | plain CPU | node CPU | CPU ratio |\n|---|---|---|---|---|---|---|\n")
	for i := range wall {
		fmt.Fprintf(&buf, "| %d | %.1f s | %.1f s | %.3f | %.1f s | %.1f s | %.3f |\n", i+1,
			plain[i].wall.Seconds(), gosty[i].wall.Seconds(), wall[i], plain[i].cpu.Seconds(), gosty[i].cpu.Seconds(), cpu[i])
	}
	fmt.Fprintf(&buf, "\n**Median wall ratio %.3f** (spread %.3f–%.3f), median CPU ratio %.3f (spread %.3f–%.3f). Target: wall ratio ≤ 1.10.\n",
		median(wall), slices.Min(wall), slices.Max(wall), median(cpu), slices.Min(cpu), slices.Max(cpu))
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
}
