package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gosty/gosty/transcoder"
)

// contentKinds are the sources BenchmarkRateControl encodes: lavfi
// graphs standing in for what users upload.
var contentKinds = []struct{ name, graph string }{
	{"graphics (testsrc2)", "testsrc2=size=%dx%d:rate=25"},
	{"detailed motion (mandelbrot zoom)", "mandelbrot=size=%dx%d:rate=25"},
	{"grainy camera (testsrc2 + temporal noise)", "testsrc2=size=%dx%d:rate=25,noise=alls=14:allf=t+u"},
}

// rungResult is one rendition of one ladder.
type rungResult struct {
	name       string
	rate, enc  int64 // the rung's rate and its average rate as encoded, bits/s
	ssim, psnr float64
}

// BenchmarkRateControl encodes each kind of content with the default
// ladder twice, with ABR (the default) and with capped CRF, through the
// transcoder's own encoder settings, and reports each rung's rate as
// encoded and its SSIM against the source: what capped CRF saves, and what
// it costs in quality.
func BenchmarkRateControl(b *testing.B) {
	w, h, secs := 1280, 720, 10.0
	if testing.Short() {
		w, h, secs = 320, 180, 2.0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	tc, err := transcoder.New(transcoder.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	results := map[string]map[string][]rungResult{}
	for range b.N {
		for _, k := range contentKinds {
			results[k.name] = map[string][]rungResult{}
			dir := b.TempDir()
			src := filepath.Join(dir, "src.mp4")
			gen := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
				"-f", "lavfi", "-i", fmt.Sprintf(k.graph, w, h), "-t", fmt.Sprint(secs),
				"-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-pix_fmt", "yuv420p", "-g", "50", src)
			if out, err := gen.CombinedOutput(); err != nil {
				b.Fatalf("generate %s: %v\n%s", k.name, err, out)
			}
			p, err := tc.Probe(ctx, src)
			if err != nil {
				b.Fatal(err)
			}
			chunks, err := tc.Split(ctx, src, p, transcoder.ChunkPlan{Seconds: secs}, filepath.Join(dir, "chunks"))
			if err != nil || len(chunks) != 1 {
				b.Fatalf("split %s: %d chunks, %v", k.name, len(chunks), err)
			}
			for _, rc := range []string{transcoder.RateABR, transcoder.RateCappedCRF} {
				rs, err := transcoder.Plan(p, transcoder.Options{RateControl: rc})
				if err != nil {
					b.Fatal(err)
				}
				s := transcoder.EncodeSettings{Renditions: rs, FrameRate: p.Video.FrameRate, RateControl: rc}
				outs, err := tc.EncodeChunk(ctx, chunks[0], s, filepath.Join(dir, rc), nil)
				if err != nil {
					b.Fatalf("encode %s %s: %v", k.name, rc, err)
				}
				windows := transcoder.QualitySample(chunks, p.Video.FrameRate)
				for i := range windows {
					windows[i].Source = chunks[windows[i].Chunk].Path
				}
				qs, err := tc.MeasureQuality(ctx, windows, transcoder.Reference{}, p.Video.FrameRate, rs, outs, filepath.Join(dir, rc+"-q"))
				if err != nil {
					b.Fatalf("quality %s %s: %v", k.name, rc, err)
				}
				for i, r := range rs {
					results[k.name][rc] = append(results[k.name][rc], rungResult{r.Name, r.Bitrate, qs[i].Bitrate, qs[i].SSIM, qs[i].PSNR})
				}
			}
		}
	}
	var abr, crf int64
	for _, k := range contentKinds {
		for i, a := range results[k.name][transcoder.RateABR] {
			abr += a.enc
			crf += results[k.name][transcoder.RateCappedCRF][i].enc
		}
	}
	if abr > 0 {
		b.ReportMetric(float64(crf)/float64(abr), "crf/abr-bytes")
	}
	if dir := os.Getenv("GOSTY_BENCH_DIR"); dir != "" && !testing.Short() {
		writeRateControl(b, filepath.Join(dir, "60-rate-control.md"), w, h, secs, results)
	}
}

func writeRateControl(b *testing.B, path string, w, h int, secs float64, results map[string]map[string][]rungResult) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "## Rate control: ABR against capped CRF\n\n")
	fmt.Fprintf(&sb, "`make bench BENCH=RateControl`: %d s %dx%d sources of three kinds (lavfi, x264 CRF 16), the default h264 ladder encoded by the transcoder with `\"rate_control\": \"abr\"` (the default: each rung aims at its rate) and with `\"capped_crf\"` (CRF 23, the rung's rate as the VBV ceiling). Rate is the rung's average video rate as encoded (the job's `quality.bitrate`); SSIM and PSNR are the job's quality report (sampled windows against the source scaled to the rung).\n\n", int(secs), w, h)
	for _, k := range contentKinds {
		a, c := results[k.name][transcoder.RateABR], results[k.name][transcoder.RateCappedCRF]
		var ta, tcrf int64
		fmt.Fprintf(&sb, "**%s**\n\n| rung | rate | ABR kb/s | ABR SSIM | capped CRF kb/s | capped CRF SSIM | bytes saved |\n|---|---|---|---|---|---|---|\n", k.name)
		for i := range a {
			ta += a[i].enc
			tcrf += c[i].enc
			fmt.Fprintf(&sb, "| %s | %d k | %d | %.4f | %d | %.4f | %.0f%% |\n", a[i].name, a[i].rate/1000, a[i].enc/1000, a[i].ssim, c[i].enc/1000, c[i].ssim, 100*(1-float64(c[i].enc)/float64(a[i].enc)))
		}
		fmt.Fprintf(&sb, "| ladder | | %d | | %d | | %.0f%% |\n\n", ta/1000, tcrf/1000, 100*(1-float64(tcrf)/float64(ta)))
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
}
