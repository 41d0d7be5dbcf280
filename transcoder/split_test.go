package transcoder

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// An open-GOP source (x265's default: CRA keyframes whose leading pictures
// refer to the GOP before) is not cut at such keyframes: a stream copy
// starting there leaves the leading pictures undecodable, and the chunk's
// encode would come out a frame short. The split re-keys instead, and every
// chunk encodes with all its frames.
func TestSplitOpenGOP(t *testing.T) {
	tr := newTestTranscoder(t)
	dir := t.TempDir()
	mustGen(t, dir, "open.mp4", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=16",
		"-c:v", "libx265", "-x265-params", "keyint=25:min-keyint=25:log-level=error", "-pix_fmt", "yuv420p")
	src := filepath.Join(dir, "open.mp4")
	ctx := context.Background()
	p, err := tr.Probe(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := tr.keyframes(ctx, src, "v:0", true, p.Video.Duration)
	if err != nil {
		t.Fatal(err)
	}
	if len(idx.keyframes) >= 16 {
		t.Fatalf("open keyframes offered as cut points: %v", idx.keyframes)
	}
	chunks, err := tr.Split(ctx, src, p, ChunkPlan{Seconds: 2}, filepath.Join(dir, "chunks"))
	if err != nil {
		t.Fatal(err)
	}
	if len(chunks) < 2 {
		t.Fatalf("%d chunks, want at least 2", len(chunks))
	}
	frames := 0
	s := EncodeSettings{Renditions: []Rendition{{Name: "90p", Width: 160, Height: 90, Bitrate: 100_000, Codec: "h264"}},
		FrameRate: 25, Preset: "ultrafast"}
	for _, c := range chunks {
		if _, err := tr.EncodeChunk(ctx, c, s, filepath.Join(dir, "enc", c.Path[len(c.Path)-9:]), nil); err != nil {
			t.Fatalf("chunk %d: %v", c.Index, err)
		}
		frames += c.Frames
	}
	if frames != 400 {
		t.Fatalf("chunks hold %d frames, want 400", frames)
	}
}

// A Matroska file whose media start late (here at 1.5 s) states its
// duration as the end timestamp; the probe counts 4 s of video, not 5.5,
// and the split does not take the file for truncated.
func TestMatroskaStartOffset(t *testing.T) {
	tr := newTestTranscoder(t)
	dir := t.TempDir()
	mustGen(t, dir, "late.mkv", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=4",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-output_ts_offset", "1.5")
	src := filepath.Join(dir, "late.mkv")
	ctx := context.Background()
	p, err := tr.Probe(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if !near(p.Video.Duration, 4, 0.05) || !near(p.Video.StartTime, 1.5, 0.01) {
		t.Fatalf("video probed as %.3f s from %.3f s; want 4 s from 1.5 s", p.Video.Duration, p.Video.StartTime)
	}
	chunks, err := tr.Split(ctx, src, p, ChunkPlan{Seconds: 2}, filepath.Join(dir, "chunks"))
	if err != nil {
		t.Fatal(err)
	}
	frames := 0
	for _, c := range chunks {
		frames += c.Frames
	}
	if frames != 100 {
		t.Fatalf("chunks hold %d frames, want 100", frames)
	}
}

// A 20 s clip with a 2 s GOP, planned for the slots free for it, comes
// out in the planned number of equal chunks, each starting on a source
// keyframe, the longer ones first, holding every frame.
func TestSplitPlannedForSlots(t *testing.T) {
	ctx, tr, dir := ffmpegTest(t, 2*time.Minute)
	src := genClip(t, dir, "src", clipSpec{W: 160, H: 90, Rate: 25, Seconds: 20, GOP: 2})
	p, err := tr.Probe(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := tr.keyframes(ctx, src, "v:0", true, p.Video.Duration)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		slots   int
		lengths []float64
	}{
		{1, []float64{6, 6, 4, 4}}, // chunks no longer than the default
		{2, []float64{6, 6, 4, 4}}, // two full rounds on two slots
		{3, []float64{4, 4, 4, 4, 2, 2}},
		{6, []float64{4, 4, 4, 4, 2, 2}},
		{10, []float64{2, 2, 2, 2, 2, 2, 2, 2, 2, 2}},
		{20, []float64{2, 2, 2, 2, 2, 2, 2, 2, 2, 2}}, // none under 2 s
	} {
		plan := ChunkPlan{Seconds: PlanChunkSeconds(p.Video.Duration, tc.slots), Equal: true}
		chunks, err := tr.Split(ctx, src, p, plan, filepath.Join(dir, fmt.Sprint("chunks", tc.slots)))
		if err != nil {
			t.Fatal(err)
		}
		if len(chunks) != PlanChunks(p.Video.Duration, tc.slots) {
			t.Errorf("%d slots: %d chunks, planned %d", tc.slots, len(chunks), PlanChunks(p.Video.Duration, tc.slots))
		}
		frames := 0
		var got []float64
		for _, c := range chunks {
			frames += c.Frames
			got = append(got, math.Round(c.Duration))
			if !slices.ContainsFunc(idx.keyframes, func(k float64) bool { return near(k-idx.videoStart, c.Start, 0.001) }) {
				t.Errorf("%d slots: chunk %d starts at %.3f s, no source keyframe", tc.slots, c.Index, c.Start)
			}
			first := ffprobeJSON(t, "-select_streams", "v:0", "-show_entries", "packet=flags", "-read_intervals", "%+#1", c.Path)
			if len(first.Packets) == 0 || !strings.Contains(first.Packets[0].Flags, "K") {
				t.Errorf("%d slots: chunk %d does not open on a keyframe: %+v", tc.slots, c.Index, first.Packets)
			}
		}
		if frames != 500 {
			t.Errorf("%d slots: chunks hold %d frames, want 500", tc.slots, frames)
		}
		if !slices.Equal(got, tc.lengths) {
			t.Errorf("%d slots: chunks of %v s, want %v", tc.slots, got, tc.lengths)
		}
	}
	// A user's chunk_seconds cuts from the start as before (the 2 s tail
	// is not shorter than MinChunkSeconds).
	chunks, err := tr.Split(ctx, src, p, ChunkPlan{Seconds: 6}, filepath.Join(dir, "user"))
	if err != nil {
		t.Fatal(err)
	}
	var got []float64
	for _, c := range chunks {
		got = append(got, math.Round(c.Duration))
	}
	if !slices.Equal(got, []float64{6, 6, 6, 2}) {
		t.Errorf("chunk_seconds 6: chunks of %v s, want [6 6 6 2]", got)
	}
}
