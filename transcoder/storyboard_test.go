package transcoder

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestStoryboard encodes a clip in several chunks with thumbnails and
// assembles the storyboard: one frame per interval on the job's timeline,
// each chunk holding exactly the grid points inside it, cues contiguous
// over the duration, every xywh inside its sprite, the poster at the top
// rendition's size, rotation applied (a rotated source gives portrait
// frames).
func TestStoryboard(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	cases := []struct {
		name     string
		clip     clipSpec
		chunk    float64
		interval float64
		w, h     int // the one rendition (display size)
	}{
		{"landscape", clipSpec{W: 160, H: 90, Rate: 15, Seconds: 7, GOP: 1, Preset: "ultrafast"}, 3, 0.75, 160, 90},
		{"rotated", clipSpec{W: 160, H: 90, Rate: 15, Seconds: 4, GOP: 1, Preset: "ultrafast", Rotate: 90}, 2, 1, 90, 160},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			tr := newTestTranscoder(t)
			dir := t.TempDir()
			src := genClip(t, dir, "src", tc.clip)
			p, err := tr.Probe(ctx, src)
			if err != nil {
				t.Fatalf("Probe: %v", err)
			}
			chunks, err := tr.Split(ctx, src, p, ChunkPlan{Seconds: tc.chunk}, filepath.Join(dir, "chunks"))
			if err != nil {
				t.Fatalf("Split: %v", err)
			}
			if len(chunks) < 2 {
				t.Fatalf("want several chunks, got %d", len(chunks))
			}
			dur := p.Video.Duration
			ts := ThumbSettingsFor(dur, tc.w, tc.h, p.Video.DynamicRange())
			ts.Interval = tc.interval
			s := EncodeSettings{
				Renditions: []Rendition{{Name: "r", Width: tc.w, Height: tc.h, Bitrate: 100_000, Codec: "h264"}},
				FrameRate:  p.Video.FrameRate, Rotation: p.Video.Rotation, SegmentSeconds: 1, Preset: "ultrafast",
				Thumbs: ts,
			}
			in := StoryboardInput{Interval: tc.interval, Duration: dur}
			for _, c := range chunks {
				out := filepath.Join(dir, fmt.Sprintf("enc%d", c.Index))
				if _, err := tr.EncodeChunk(ctx, c, s, out, nil); err != nil {
					t.Fatalf("EncodeChunk %d: %v", c.Index, err)
				}
				bundle := filepath.Join(out, ThumbsFile)
				// Exactly the grid points k*interval in [start, start+duration).
				var want []string
				for k := int(math.Ceil(c.Start/tc.interval - 1e-9)); float64(k)*tc.interval < c.Start+c.Duration-1e-9; k++ {
					want = append(want, fmt.Sprintf("t-%d.jpg", k))
				}
				if ts.Poster >= c.Start && ts.Poster < c.Start+c.Duration {
					want = append(want, "poster.jpg")
				}
				if got := tarNames(t, bundle); !slices.Equal(got, want) {
					t.Errorf("chunk %d [%.3f, %.3f): bundle holds %v, want %v", c.Index, c.Start, c.Start+c.Duration, got, want)
				}
				in.Bundles = append(in.Bundles, bundle)
			}
			checkThumbFrames(t, src, in.Bundles, ts, tc.interval, p.Video.FrameRate)
			pkg := filepath.Join(dir, "pkg")
			res, err := WriteStoryboard(in, pkg)
			if err != nil {
				t.Fatalf("WriteStoryboard: %v", err)
			}
			if res.Poster != PosterFile || res.Storyboard != StoryboardFile {
				t.Fatalf("result %+v", res)
			}
			pw, ph := jpegSize(t, filepath.Join(pkg, PosterFile))
			if pw != tc.w || ph != tc.h {
				t.Errorf("poster is %dx%d, want %dx%d", pw, ph, tc.w, tc.h)
			}
			cues := readCues(t, filepath.Join(pkg, filepath.FromSlash(StoryboardFile)))
			if n := int(math.Ceil(dur / tc.interval)); len(cues) != n {
				t.Fatalf("%d cues for %.3f s at %.2f s, want %d", len(cues), dur, tc.interval, n)
			}
			for i, c := range cues {
				if !near(c.start, float64(i)*tc.interval, 0.002) {
					t.Errorf("cue %d starts at %.3f, want %.3f", i, c.start, float64(i)*tc.interval)
				}
				if i > 0 && c.start != cues[i-1].end {
					t.Errorf("cue %d starts at %.3f, the previous ended at %.3f", i, c.start, cues[i-1].end)
				}
				sw, sh := jpegSize(t, filepath.Join(pkg, "storyboard", c.sprite))
				if c.x < 0 || c.y < 0 || c.x+c.w > sw || c.y+c.h > sh {
					t.Errorf("cue %d: %s#xywh=%d,%d,%d,%d outside its %dx%d sprite", i, c.sprite, c.x, c.y, c.w, c.h, sw, sh)
				}
				if c.w != ts.Width || c.h != ts.Height {
					t.Errorf("cue %d: tile %dx%d, want %dx%d", i, c.w, c.h, ts.Width, ts.Height)
				}
			}
			if last := cues[len(cues)-1].end; !near(last, dur, 0.002) {
				t.Errorf("cues end at %.3f, the video at %.3f", last, dur)
			}
			if tc.clip.Rotate != 0 && ts.Height <= ts.Width {
				t.Errorf("rotated source gave %dx%d thumbnails, want portrait", ts.Width, ts.Height)
			}
		})
	}
}

// TestStoryboardWithoutBundles: jobs encoded before thumbnails (no bundle
// for some chunk) package without a storyboard.
func TestStoryboardWithoutBundles(t *testing.T) {
	res, err := WriteStoryboard(StoryboardInput{Bundles: []string{"", ""}, Interval: 2, Duration: 8}, t.TempDir())
	if err != nil || res.Storyboard != "" || res.Poster != "" || len(res.Files) != 0 {
		t.Fatalf("WriteStoryboard without bundles = %+v, %v; want nothing", res, err)
	}
}

func TestStoryboardIntervalFor(t *testing.T) {
	for _, c := range []struct{ dur, want float64 }{{10, 2}, {1200, 2}, {1201, 3}, {86400, 144}} {
		got := StoryboardIntervalFor(c.dur)
		if got != c.want {
			t.Errorf("StoryboardIntervalFor(%g) = %g, want %g", c.dur, got, c.want)
		}
		if n := StoryboardCount(c.dur, got); n > StoryboardMax {
			t.Errorf("%g s gives %d frames", c.dur, n)
		}
	}
}

// checkThumbFrames compares every storyboard frame with the source's frames
// (decoded apart, display-rotated and scaled alike): the closest must be
// the last frame at or before k*interval.
func checkThumbFrames(t *testing.T, src string, bundles []string, ts ThumbSettings, interval, fps float64) {
	t.Helper()
	raw, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", src, "-vf",
		fmt.Sprintf("scale=%d:%d,format=gray", ts.Width, ts.Height), "-f", "rawvideo", "-").Output()
	if err != nil {
		t.Fatalf("decode source: %v", err)
	}
	size := ts.Width * ts.Height
	nf := len(raw) / size
	for _, b := range bundles {
		_ = readBundle(b, func(name string, data []byte) {
			s, ok := strings.CutPrefix(name, "t-")
			if !ok {
				return
			}
			k, _ := strconv.Atoi(strings.TrimSuffix(s, ".jpg"))
			img, err := jpeg.Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			ycc, ok := img.(*image.YCbCr)
			if !ok {
				t.Fatalf("%s: %T", name, img)
			}
			best, bestD := -1, math.MaxFloat64
			for f := range nf {
				d := 0.0
				for y := range ts.Height {
					for x := range ts.Width {
						d += math.Abs(float64(ycc.Y[y*ycc.YStride+x]) - float64(raw[f*size+y*ts.Width+x]))
					}
				}
				if d < bestD {
					best, bestD = f, d
				}
			}
			if want := int(math.Floor(float64(k)*interval*fps + 1e-6)); best != want {
				t.Errorf("storyboard frame %d (%.2f s) looks like source frame %d, want %d", k, float64(k)*interval, best, want)
			}
		})
	}
}

func tarNames(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("bundle: %v", err)
	}
	defer f.Close()
	var names []string
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		if err != nil {
			t.Fatalf("bundle %s: %v", path, err)
		}
		b, _ := io.ReadAll(tr)
		if _, err := jpeg.DecodeConfig(bytes.NewReader(b)); err != nil {
			t.Errorf("bundle %s: %s is no JPEG: %v", path, h.Name, err)
		}
		names = append(names, h.Name)
	}
}

func jpegSize(t *testing.T, path string) (int, int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v", err)
	}
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img.Bounds().Dx(), img.Bounds().Dy()
}

type cue struct {
	start, end float64
	sprite     string
	x, y, w, h int
}

var cueRe = regexp.MustCompile(`(?m)^(\d\d):(\d\d):(\d\d\.\d{3}) --> (\d\d):(\d\d):(\d\d\.\d{3})\n([^#\n]+)#xywh=(\d+),(\d+),(\d+),(\d+)$`)

func readCues(t *testing.T, path string) []cue {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v", err)
	}
	if !strings.HasPrefix(string(b), "WEBVTT\n") {
		t.Fatalf("%s does not start with WEBVTT", path)
	}
	sec := func(h, m, s string) float64 {
		hh, _ := strconv.Atoi(h)
		mm, _ := strconv.Atoi(m)
		ss, _ := strconv.ParseFloat(s, 64)
		return float64(hh*3600+mm*60) + ss
	}
	var out []cue
	for _, m := range cueRe.FindAllStringSubmatch(string(b), -1) {
		c := cue{start: sec(m[1], m[2], m[3]), end: sec(m[4], m[5], m[6]), sprite: m[7]}
		c.x, _ = strconv.Atoi(m[8])
		c.y, _ = strconv.Atoi(m[9])
		c.w, _ = strconv.Atoi(m[10])
		c.h, _ = strconv.Atoi(m[11])
		out = append(out, c)
	}
	if strings.Count(string(b), "-->") != len(out) {
		t.Fatalf("%s has cues the test cannot read:\n%s", path, b)
	}
	return out
}

// TestStoryboardHDR: an HDR10 source's storyboard frames are tone-mapped
// to SDR whatever the ladder does (here a ladder that keeps the source's
// range): they differ clearly from the same frames taken as they are.
func TestStoryboardHDR(t *testing.T) {
	ctx, tr, dir := ffmpegTest(t, 2*time.Minute)
	h := hdrSources[0]
	src := genHDR(t, dir, h.name, h.transfer, h.x265)
	p, err := tr.Probe(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	chunks, err := tr.Split(ctx, src, p, ChunkPlan{Seconds: 2}, filepath.Join(dir, "chunks"))
	if err != nil {
		t.Fatal(err)
	}
	first := func(rng, name string) []byte {
		ts := ThumbSettingsFor(p.Video.Duration, 320, 180, rng)
		s := EncodeSettings{Renditions: []Rendition{{Name: "r", Width: 320, Height: 180, Bitrate: 300_000, Codec: "h264"}},
			FrameRate: p.Video.FrameRate, Preset: "ultrafast", Thumbs: ts}
		out := filepath.Join(dir, name)
		if _, err := tr.EncodeChunk(ctx, chunks[0], s, out, nil); err != nil {
			t.Fatalf("EncodeChunk (%s): %v", name, err)
		}
		var b []byte
		if err := readBundle(filepath.Join(out, ThumbsFile), func(n string, data []byte) {
			if n == "t-0.jpg" {
				b = data
			}
		}); err != nil || b == nil {
			t.Fatalf("%s: no first frame (%v)", name, err)
		}
		return b
	}
	mapped, err := decodeThumb(first(p.Video.DynamicRange(), "mapped"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := decodeThumb(first("", "raw"))
	if err != nil {
		t.Fatal(err)
	}
	if b := mapped.Bounds(); b.Dx() != 160 || b.Dy() != 90 {
		t.Fatalf("frame is %dx%d, want 160x90", b.Dx(), b.Dy())
	}
	ym, yr := mapped.(*image.YCbCr), raw.(*image.YCbCr)
	var diff float64
	for i := range ym.Y {
		diff += math.Abs(float64(ym.Y[i]) - float64(yr.Y[i]))
	}
	diff /= float64(len(ym.Y))
	t.Logf("tone mapping moved luma by %.1f levels on average", diff)
	if diff < 5 {
		t.Errorf("tone-mapped frame differs from the raw one by %.1f luma levels on average: not tone-mapped?", diff)
	}
}

// TestThumbBranchKeepsProgressLocal: the thumbnails branch of a chunk far
// into the job names its frames by their place on the job's grid, but its
// timestamps stay within the chunk, so ffmpeg's progress (the latest time
// of any output, which EncodeChunk reports) is not thrown past the chunk.
func TestThumbBranchKeepsProgressLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	tr := newTestTranscoder(t)
	dir := t.TempDir()
	src := genClip(t, dir, "src", clipSpec{W: 160, H: 90, Rate: 15, Seconds: 4, GOP: 1, Preset: "ultrafast"})
	c := Chunk{Index: 9, Start: 1000, Duration: 4, Frames: 60, Path: src}
	s := EncodeSettings{FrameRate: 15, Thumbs: ThumbSettings{Interval: 1, Width: 160, Height: 90}}
	b, ok, err := tr.newThumbBranch("[0:v]null[o0]", c, s, filepath.Join(dir, "out"))
	if err != nil || !ok {
		t.Fatalf("newThumbBranch: %v %v", ok, err)
	}
	args := append([]string{"-nostdin", "-v", "error", "-nostats", "-progress", "pipe:1", "-i", src,
		"-filter_complex", b.filter, "-map", "[o0]", "-f", "null", "-"}, b.args...)
	out, err := exec.Command("ffmpeg", args...).Output()
	if err != nil {
		t.Fatalf("ffmpeg: %v", err)
	}
	latest := 0.0
	for _, m := range regexp.MustCompile(`(?m)^out_time_us=(\d+)$`).FindAllStringSubmatch(string(out), -1) {
		us, _ := strconv.ParseFloat(m[1], 64)
		latest = max(latest, us/1e6)
	}
	if latest <= 0 || latest > c.Duration+0.1 {
		t.Errorf("ffmpeg's progress reached %.3f s in a %.3f s chunk", latest, c.Duration)
	}
	if err := b.bundle(); err != nil {
		t.Fatal(err)
	}
	if got, want := tarNames(t, b.out), []string{"t-1000.jpg", "t-1001.jpg", "t-1002.jpg", "t-1003.jpg"}; !slices.Equal(got, want) {
		t.Errorf("bundle holds %v, want %v", got, want)
	}
}
