package transcoder

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestFragmentChunksPlayAsOneTimeline splits a clip, encodes its chunks,
// remuxes each to fMP4 and checks that init(chunk 0) + every chunk's
// fragments shifted to its start decode as one continuous stream, the way
// the live HLS view serves them.
func TestFragmentChunksPlayAsOneTimeline(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	tr := newTestTranscoder(t)
	dir := t.TempDir()
	src := genClip(t, dir, "src", clipSpec{W: 320, H: 180, Rate: 25, Seconds: 8, GOP: 2})
	ctx := context.Background()
	p, err := tr.Probe(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	chunks, err := tr.Split(ctx, src, p, ChunkPlan{Seconds: 2}, filepath.Join(dir, "chunks"))
	if err != nil {
		t.Fatal(err)
	}
	if len(chunks) < 3 {
		t.Fatalf("want several chunks, got %d", len(chunks))
	}
	s := EncodeSettings{Renditions: []Rendition{{Name: "180p", Width: 320, Height: 180, Bitrate: 300_000, Codec: "h264"}}, FrameRate: 25, SegmentSeconds: 2}
	var all bytes.Buffer
	var codec string
	var playlist []LiveSegment
	for i, c := range chunks {
		outs, err := tr.EncodeChunk(ctx, c, s, filepath.Join(dir, "enc", c.Path[len(c.Path)-8:]), nil)
		if err != nil {
			t.Fatal(err)
		}
		f, err := tr.Fragment(ctx, outs[0], 0, c.Duration)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			all.Write(f.Init)
			codec = f.Codec()
		}
		b, err := f.Media(f.Ticks(c.Start - chunks[0].Start))
		if err != nil {
			t.Fatal(err)
		}
		all.Write(b)
		playlist = append(playlist, LiveSegment{Duration: c.Duration, URI: "x"})
	}
	if !strings.HasPrefix(codec, "avc1.") || len(codec) != len("avc1.64000c") {
		t.Errorf("codec %q", codec)
	}
	out := filepath.Join(dir, "live.mp4")
	if err := os.WriteFile(out, all.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// Decodes cleanly, with every frame, and timestamps that never go back.
	cmd := exec.Command("ffmpeg", "-v", "error", "-xerror", "-i", out, "-f", "null", "-")
	if b, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(b)) > 0 {
		t.Fatalf("decode: %v %s", err, b)
	}
	kf := keyframeTimes(t, out)
	if len(kf) != 4 || kf[0] != "0.000000" || kf[1] != "2.000000" || kf[3] != "6.000000" {
		t.Errorf("keyframes %v, want every 2 s from 0", kf)
	}
	n, dur := streamFacts(t, out, "v")
	if n != 200 || !near(dur, 8, 0.05) {
		t.Errorf("%d frames, %.3f s; want 200 frames, 8 s", n, dur)
	}
	pl := string(EventPlaylist("init.m4s", 2, playlist, false))
	for _, want := range []string{"#EXT-X-PLAYLIST-TYPE:EVENT\n", "#EXT-X-TARGETDURATION:2\n", "#EXT-X-MAP:URI=\"init.m4s\"\n", "#EXT-X-INDEPENDENT-SEGMENTS\n"} {
		if !strings.Contains(pl, want) {
			t.Errorf("playlist lacks %q:\n%s", want, pl)
		}
	}
	if strings.Contains(pl, "ENDLIST") {
		t.Error("an unfinished EVENT playlist has ENDLIST")
	}
}

// TestFragmentAudio remuxes an AAC track into ~2 s fragments whose timing
// adds up to the track.
func TestFragmentAudio(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	tr := newTestTranscoder(t)
	dir := t.TempDir()
	mustGen(t, dir, "a.m4a", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=7", "-c:a", "aac", "-movflags", "+faststart")
	f, err := tr.Fragment(context.Background(), filepath.Join(dir, "a.m4a"), 2, 7)
	if err != nil {
		t.Fatal(err)
	}
	if f.Codec() != "mp4a.40.2" || len(f.Fragments) < 3 {
		t.Fatalf("codec %q, %d fragments", f.Codec(), len(f.Fragments))
	}
	var next int64
	for i, fr := range f.Fragments {
		if fr.Start != next || fr.Duration <= 0 {
			t.Fatalf("fragment %d starts at %d (want %d), lasts %d", i, fr.Start, next, fr.Duration)
		}
		next += fr.Duration
	}
	if d := float64(next) / float64(f.Timescale); !near(d, 7, 0.1) {
		t.Errorf("fragments add up to %.3f s", d)
	}
}

// FuzzSplitFragmented: the fMP4 box reader and the tfdt shifter never
// panic or read out of bounds, whatever the bytes.
func FuzzSplitFragmented(f *testing.F) {
	moof := []byte{0, 0, 0, 52, 'm', 'o', 'o', 'f', 0, 0, 0, 44, 't', 'r', 'a', 'f',
		0, 0, 0, 20, 't', 'f', 'd', 't', 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10,
		0, 0, 0, 16, 't', 'r', 'u', 'n', 0, 0, 1, 0, 0, 0, 0, 1}
	f.Add(moof)
	f.Add(append([]byte{0, 0, 0, 8, 'm', 'o', 'o', 'v'}, append(moof, 0, 0, 0, 8, 'm', 'd', 'a', 't')...))
	f.Add([]byte{0, 0, 0, 1, 'm', 'o', 'o', 'f', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		if fr, err := splitFragmented(b); err == nil {
			_ = fr.Codec()
			_, _ = fr.Media(12345)
		}
		_ = shiftTFDT(bytes.Clone(b), 1<<40)
		_ = (&Fragmented{Init: b}).Codec()
	})
}
