package transcoder

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLowRateSourceGetsNoRicherRung runs a 250 kb/s 720p source through
// the real probe, plan and encoder: the plan keeps 720p at the source's
// rate and 144p (the rungs between would repeat the 720p's bandwidth), and
// ffprobe finds no encoded rung above the source's own video rate.
func TestLowRateSourceGetsNoRicherRung(t *testing.T) {
	ctx, tr, dir := ffmpegTest(t, 2*time.Minute)
	src := genClip(t, dir, "src", clipSpec{W: 1280, H: 720, Rate: 25, Seconds: 4, GOP: 2,
		OutExtra: []string{"-b:v", "250k", "-maxrate", "250k", "-bufsize", "500k"}})
	p, err := tr.Probe(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if p.Video.BitRate <= 0 || p.Video.BitRate > 300_000 {
		t.Fatalf("the generated source is %d b/s, want a rate near 250k", p.Video.BitRate)
	}
	rs, err := Plan(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var heights []int
	for _, r := range rs {
		heights = append(heights, r.Height)
		if r.Bitrate > p.Video.BitRate {
			t.Errorf("%s planned at %d b/s, above the source's %d", r.Name, r.Bitrate, p.Video.BitRate)
		}
	}
	if !slices.Equal(heights, []int{720, 144}) {
		t.Fatalf("planned heights %v, want [720 144]", heights)
	}

	chunks, err := tr.Split(ctx, src, p, ChunkPlan{Seconds: 0}, filepath.Join(dir, "chunks"))
	if err != nil {
		t.Fatal(err)
	}
	settings := EncodeSettings{Renditions: rs, FrameRate: p.Video.FrameRate}
	outs, err := tr.EncodeChunk(ctx, chunks[0], settings, filepath.Join(dir, "enc"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range outs {
		rate := videoRate(t, o)
		// ABR over a few seconds lands within a few percent of its target.
		if float64(rate) > 1.15*float64(p.Video.BitRate) {
			t.Errorf("%s encoded at %d b/s, above the source's %d", rs[i].Name, rate, p.Video.BitRate)
		}
		t.Logf("%s: planned %d, encoded %d b/s (source %d)", rs[i].Name, rs[i].Bitrate, rate, p.Video.BitRate)
	}
}

// videoRate is the first video stream's bit rate as ffprobe reads it.
func videoRate(t *testing.T, path string) int64 {
	t.Helper()
	b, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "stream=bit_rate", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatalf("ffprobe %s: bit rate %q: %v", path, b, err)
	}
	return n
}

// TestCappedCRF encodes an easy, richly coded source with both rate
// controls: ABR spends about each rung's rate, capped CRF less (and never
// above the rung's ceiling), and the quality report says so in its bitrate.
func TestCappedCRF(t *testing.T) {
	ctx, tr, dir := ffmpegTest(t, 2*time.Minute)
	src := genClip(t, dir, "src", clipSpec{W: 640, H: 360, Rate: 25, Seconds: 4, GOP: 2,
		OutExtra: []string{"-crf", "12"}})
	p, err := tr.Probe(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	chunks, err := tr.Split(ctx, src, p, ChunkPlan{Seconds: 4}, filepath.Join(dir, "chunks"))
	if err != nil || len(chunks) != 1 {
		t.Fatalf("split: %d chunks, %v", len(chunks), err)
	}
	windows := QualitySample(chunks, p.Video.FrameRate)
	for i := range windows {
		windows[i].Source = chunks[windows[i].Chunk].Path
	}
	got := map[string][]Quality{}
	var rs []Rendition
	for _, rc := range []string{RateABR, RateCappedCRF} {
		rs, err = Plan(p, Options{RateControl: rc})
		if err != nil {
			t.Fatal(err)
		}
		s := EncodeSettings{Renditions: rs, FrameRate: p.Video.FrameRate, RateControl: rc}
		outs, err := tr.EncodeChunk(ctx, chunks[0], s, filepath.Join(dir, rc), nil)
		if err != nil {
			t.Fatalf("%s: %v", rc, err)
		}
		if got[rc], err = tr.MeasureQuality(ctx, windows, Reference{}, p.Video.FrameRate, rs, outs, filepath.Join(dir, rc+"-q")); err != nil {
			t.Fatalf("%s: %v", rc, err)
		}
	}
	for i, r := range rs {
		a, c := got[RateABR][i], got[RateCappedCRF][i]
		t.Logf("%s at %d: ABR %d b/s SSIM %.4f, capped CRF %d b/s SSIM %.4f", r.Name, r.Bitrate, a.Bitrate, a.SSIM, c.Bitrate, c.SSIM)
		if a.Bitrate < r.Bitrate/2 || float64(a.Bitrate) > 1.15*float64(r.Bitrate) {
			t.Errorf("%s: ABR encoded at %d b/s, far from its %d", r.Name, a.Bitrate, r.Bitrate)
		}
		if c.Bitrate <= 0 || c.Bitrate >= a.Bitrate {
			t.Errorf("%s: capped CRF encoded at %d b/s, ABR at %d: want less on easy content", r.Name, c.Bitrate, a.Bitrate)
		}
		if float64(c.Bitrate) > 1.15*float64(r.Bitrate) {
			t.Errorf("%s: capped CRF encoded at %d b/s, above its ceiling %d", r.Name, c.Bitrate, r.Bitrate)
		}
	}
}
