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
