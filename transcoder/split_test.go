package transcoder

import (
	"context"
	"path/filepath"
	"testing"
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
	chunks, err := tr.Split(ctx, src, p, 2, filepath.Join(dir, "chunks"))
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
	chunks, err := tr.Split(ctx, src, p, 2, filepath.Join(dir, "chunks"))
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
