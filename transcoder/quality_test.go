package transcoder

import (
	"context"
	"math"
	"testing"
)

func TestQualitySample(t *testing.T) {
	chunks := []Chunk{{Index: 0, Start: 0, Duration: 6}, {Index: 1, Start: 6, Duration: 6}, {Index: 2, Start: 12, Duration: 4.5}}
	ws := QualitySample(chunks, 25)
	if len(ws) != QualityWindows {
		t.Fatalf("%+v", ws)
	}
	for k, w := range ws {
		c := chunks[w.Chunk]
		if w.SourceAt < 0 || w.SourceAt+w.Seconds > c.Duration+1e-9 || math.Abs(w.At-(c.Start+w.SourceAt)) > 1e-9 {
			t.Errorf("window %d %+v is not inside chunk %+v", k, w, c)
		}
		if f := w.SourceAt*25 + 0.5; math.Abs(f-math.Round(f)) > 1e-6 {
			t.Errorf("window %d at %v is not half a frame before a frame", k, w.SourceAt)
		}
	}
	if ws[0].Chunk != 0 || ws[1].Chunk != 1 || ws[2].Chunk != 2 {
		t.Errorf("windows not spread: %+v", ws)
	}
	// 16.5 s sampled on 5%: below QualityMinFrames a window, so 10 frames.
	if want := 10.0 / 25; ws[0].Seconds != want || QualityWindowLength(16.5, 25) != want {
		t.Errorf("16.5 s at 25 fps: windows of %v s, want %v", ws[0].Seconds, want)
	}
	for _, tc := range []struct{ total, fps, want float64 }{{60, 25, 1}, {600, 30, 1}, {30, 25, 0.5}, {2, 50, 0.2}} {
		if got := QualityWindowLength(tc.total, tc.fps); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("QualityWindowLength(%g, %g) = %g, want %g", tc.total, tc.fps, got, tc.want)
		}
	}
	// Each opens on the frame after a keyframe of the renditions' grid
	// (every DefaultSegmentSeconds from its chunk's start), so no seek
	// decodes frames only to drop them.
	for k, w := range ws {
		key := w.SourceAt - 0.5/25
		if g := key / DefaultSegmentSeconds; math.Abs(g-math.Round(g)) > 1e-6 || w.Index != k {
			t.Errorf("window %d %+v does not open after a grid keyframe", k, w)
		}
	}
	// A 0.8 s video: two windows of 10 frames inside it, apart.
	ws = QualitySample([]Chunk{{Index: 0, Duration: 0.8}}, 30)
	if len(ws) != 2 || ws[0].SourceAt < 0 || ws[0].SourceAt+ws[0].Seconds > ws[1].SourceAt || ws[1].SourceAt+ws[1].Seconds > 0.8 {
		t.Errorf("short video: %+v", ws)
	}
	// A chunk shorter than a window is sampled whole.
	ws = QualitySample([]Chunk{{Index: 0, Duration: 0.2}}, 30)
	if len(ws) != 1 || ws[0].SourceAt != 0 || ws[0].Seconds < 0.2 {
		t.Errorf("0.2 s video: %+v", ws)
	}
}

// TestMeasureQuality encodes one chunk (the whole clip) to a well-fed and
// a starved rendition of the same size and measures both against the
// source: the good one scores high, the starved one lower on SSIM and
// PSNR, and the frame counts are the clip's.
func TestMeasureQuality(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	tr := newTestTranscoder(t)
	dir := t.TempDir()
	src := genClip(t, dir, "src", clipSpec{W: 320, H: 180, Rate: 25, Seconds: 4, Audio: true})
	p, err := tr.Probe(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	rs := []Rendition{
		{Name: "good", Width: 320, Height: 180, Bitrate: 1_500_000, Codec: "h264"},
		{Name: "starved", Width: 320, Height: 180, Bitrate: 50_000, Codec: "h264"},
	}
	outs, err := tr.EncodeChunk(context.Background(), Chunk{Path: src, Duration: p.Video.Duration, Frames: 100},
		EncodeSettings{Renditions: rs, FrameRate: p.Video.FrameRate, Preset: "ultrafast"}, dir+"/enc", nil)
	if err != nil {
		t.Fatal(err)
	}
	ws := QualitySample([]Chunk{{Index: 0, Duration: p.Video.Duration}}, p.Video.FrameRate)
	for i := range ws {
		ws[i].Source = src
	}
	q, err := tr.MeasureQuality(context.Background(), ws, Reference{}, p.Video.FrameRate, rs, outs, dir+"/q")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("good %+v, starved %+v", q[0], q[1])
	good, bad := q[0], q[1]
	if good.SSIM < 0.9 || good.SSIM > 1 || good.PSNR < 30 {
		t.Errorf("clean encode: %+v", good)
	}
	if !(bad.SSIM < good.SSIM && bad.PSNR < good.PSNR) {
		t.Errorf("starved rung %+v does not score below the good one %+v", bad, good)
	}
	for i, x := range q {
		if x.Frames != 100 || x.SampledFrames < QualityWindows*(QualityMinFrames-1) || x.SampledFrames > 100 || x.SampledSeconds <= 0 {
			t.Errorf("%s: frames %+v", rs[i].Name, x)
		}
	}
}
