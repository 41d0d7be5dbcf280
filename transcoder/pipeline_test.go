package transcoder

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestPipeline runs Probe → Plan → Split → EncodeChunk → EncodeAudio →
// Package on synthetic clips and checks what a player would notice:
// durations, A/V sync, sizes, frame counts, aligned keyframes, playable HLS.
func TestPipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg end to end")
	}
	cases := []struct {
		name        string
		clip        clipSpec
		chunk       float64
		wantHeights []int // displayed heights, high to low
		minChunks   int
		wantRekey   bool
	}{
		{"landscape-audio", clipSpec{W: 640, H: 360, Rate: 25, Seconds: 12, GOP: 1, Audio: true}, 4, []int{360, 240, 144}, 3, false},
		{"portrait", clipSpec{W: 360, H: 640, Rate: 30, Seconds: 6, GOP: 1, Audio: true}, 0, []int{640, 426, 256}, 1, false},
		{"no-audio", clipSpec{W: 320, H: 180, Rate: 24, Seconds: 5, GOP: 2}, 2, []int{144}, 2, false},
		{"rotated", clipSpec{W: 320, H: 180, Rate: 25, Seconds: 4, GOP: 1, Audio: true, Rotate: 90}, 0, []int{256}, 1, false},
		{"sparse-keyframes", clipSpec{W: 320, H: 180, Rate: 15, Seconds: 30, GOP: 20, Audio: true}, 0, []int{144}, 4, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			tr := newTestTranscoder(t)
			dir := t.TempDir()
			src := genClip(t, dir, "src", tc.clip)
			srcFrames, _ := streamFacts(t, src, "v")

			p, err := tr.Probe(ctx, src)
			if err != nil {
				t.Fatalf("Probe: %v", err)
			}
			rs, err := Plan(p, Options{})
			if err != nil {
				t.Fatalf("Plan: %v", err)
			}
			var heights []int
			for _, r := range rs {
				heights = append(heights, r.Height)
			}
			if !slices.Equal(heights, tc.wantHeights) {
				t.Fatalf("planned heights %v, want %v", heights, tc.wantHeights)
			}

			chunks, err := tr.Split(ctx, src, p, ChunkPlan{Seconds: tc.chunk}, filepath.Join(dir, "chunks"))
			if err != nil {
				t.Fatalf("Split: %v", err)
			}
			if len(chunks) < tc.minChunks {
				t.Errorf("got %d chunks, want at least %d", len(chunks), tc.minChunks)
			}
			sum := 0
			for _, c := range chunks {
				sum += c.Frames
				if c.Duration > MaxChunkSeconds+0.01 {
					t.Errorf("chunk %d is %.3f s, above MaxChunkSeconds", c.Index, c.Duration)
				}
			}
			if sum != srcFrames {
				t.Errorf("chunks hold %d frames, source %d", sum, srcFrames)
			}
			if _, err := os.Stat(filepath.Join(dir, "chunks", "rekeyed.mkv")); err == nil {
				t.Errorf("re-key intermediate left behind")
			}
			if tc.wantRekey && len(chunks) < 2 {
				t.Errorf("sparse keyframes should have been re-keyed into several chunks")
			}

			settings := EncodeSettings{Renditions: rs, FrameRate: p.Video.FrameRate, Rotation: p.Video.Rotation}
			perRendition := make([][]string, len(rs))
			for _, c := range chunks {
				var last float64
				outs, err := tr.EncodeChunk(ctx, c, settings, filepath.Join(dir, "enc", c.Path[len(c.Path)-9:len(c.Path)-4]), func(f float64) {
					if f < last || f < 0 || f > 1 {
						t.Errorf("progress went %v -> %v", last, f)
					}
					last = f
				})
				if err != nil {
					t.Fatalf("EncodeChunk %d: %v", c.Index, err)
				}
				if len(outs) != len(rs) {
					t.Fatalf("EncodeChunk returned %d outputs for %d renditions", len(outs), len(rs))
				}
				for i, o := range outs {
					perRendition[i] = append(perRendition[i], o)
				}
			}

			in := PackageInput{Renditions: rs, Chunks: perRendition}
			if p.Audio != nil {
				in.Audio = filepath.Join(dir, "audio.m4a")
				if err := tr.EncodeAudio(ctx, src, p, p.Video.Duration, in.Audio); err != nil {
					t.Fatalf("EncodeAudio: %v", err)
				}
				if _, d := streamFacts(t, in.Audio, "a"); !near(d, p.Video.Duration, 0.1) {
					t.Errorf("audio track is %.3f s, video %.3f s", d, p.Video.Duration)
				}
			}
			out := filepath.Join(dir, "out")
			res, err := tr.Package(ctx, in, out)
			if err != nil {
				t.Fatalf("Package: %v", err)
			}
			for _, f := range []string{res.HLS, res.DASH} {
				if !slices.Contains(res.Files, f) {
					t.Errorf("Files lacks %s: %v", f, res.Files)
				}
			}

			var refKF []string
			for i, r := range rs {
				mp4 := filepath.Join(out, res.MP4[r.Name])
				frames, vdur := streamFacts(t, mp4, "v")
				if frames != srcFrames {
					t.Errorf("%s: %d frames, source %d", r.Name, frames, srcFrames)
				}
				if !near(vdur, p.Video.Duration, 0.1) {
					t.Errorf("%s: video %.3f s, source %.3f s", r.Name, vdur, p.Video.Duration)
				}
				o := ffprobeJSON(t, "-select_streams", "v:0", "-show_entries", "stream=width,height", mp4)
				if o.Streams[0].Width != r.Width || o.Streams[0].Height != r.Height {
					t.Errorf("%s: %dx%d, planned %dx%d", r.Name, o.Streams[0].Width, o.Streams[0].Height, r.Width, r.Height)
				}
				if p.Audio != nil {
					if _, adur := streamFacts(t, mp4, "a"); !near(adur, vdur, 0.1) {
						t.Errorf("%s: audio %.3f s vs video %.3f s", r.Name, adur, vdur)
					}
				}
				kf := keyframeTimes(t, mp4)
				if i == 0 {
					refKF = kf
				} else if !slices.Equal(kf, refKF) {
					t.Errorf("%s keyframes %v differ from %s %v", r.Name, kf, rs[0].Name, refKF)
				}
			}
			t.Logf("%d chunks, keyframes %v", len(chunks), refKF)

			o := ffprobeJSON(t, "-protocol_whitelist", "file", "-show_entries", "stream=codec_type,width,height", filepath.Join(out, res.HLS))
			videos := 0
			for _, s := range o.Streams {
				if s.CodecType == "video" {
					videos++
				}
			}
			if videos != len(rs) {
				t.Errorf("HLS master exposes %d video streams, want %d", videos, len(rs))
			}
			master, err := os.ReadFile(filepath.Join(out, res.HLS))
			t.Logf("files %v\nmaster:\n%s", res.Files, master)
			if err != nil || !masterComplete(master, len(rs)) {
				t.Errorf("master playlist incomplete (%v):\n%s", err, master)
			}
			if _, err := os.Stat(filepath.Join(out, res.DASH)); err != nil {
				t.Errorf("DASH manifest: %v", err)
			}
			if leftovers, _ := filepath.Glob(filepath.Join(dir, ".gosty-pkg-*")); len(leftovers) > 0 {
				t.Errorf("intermediates left: %v", leftovers)
			}
		})
	}
}
