package transcoder

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestEncodeChunkCancel checks that canceling the context kills ffmpeg (and
// its process group) promptly and leaves no output behind.
func TestEncodeChunkCancel(t *testing.T) {
	tr := newTestTranscoder(t)
	dir := t.TempDir()
	src := genClip(t, dir, "long", clipSpec{W: 640, H: 360, Rate: 25, Seconds: 20, GOP: 2, Preset: "ultrafast", Ext: "mkv"})
	c := Chunk{Index: 0, Duration: 20, Frames: 500, Path: src}
	s := EncodeSettings{
		Renditions: []Rendition{{Name: "360p", Width: 640, Height: 360, Bitrate: 800_000, Codec: "h264"}, {Name: "240p", Width: 426, Height: 240, Bitrate: 400_000, Codec: "h264"}},
		FrameRate:  25,
		Preset:     "veryslow", // slow enough that the run is surely still going
	}
	outDir := filepath.Join(dir, "out")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan struct{})
	var once bool
	type result struct {
		outs []string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		outs, err := tr.EncodeChunk(ctx, c, s, outDir, func(float64) {
			if !once {
				once = true
				close(started)
			}
		})
		done <- result{outs, err}
	}()

	select {
	case <-started:
	case r := <-done:
		t.Fatalf("EncodeChunk finished before any progress: %v", r.err)
	case <-time.After(60 * time.Second):
		t.Fatal("no progress from ffmpeg within 60 s")
	}
	if _, err := os.Stat(filepath.Join(outDir, "r0.mp4.part")); err != nil {
		t.Fatalf("ffmpeg should be writing its temp output by now: %v", err)
	}
	canceledAt := time.Now()
	cancel()
	var r result
	select {
	case r = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("EncodeChunk did not return within 5 s of cancel")
	}
	t.Logf("returned %v after cancel: %v", time.Since(canceledAt), r.err)
	if !errors.Is(r.err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", r.err)
	}
	if r.outs != nil {
		t.Errorf("outputs %v returned on cancel", r.outs)
	}
	left, _ := filepath.Glob(filepath.Join(outDir, "*"))
	if len(left) != 0 {
		t.Errorf("files left after cancel: %v", left)
	}
	// Nothing still running that mentions our output dir: the group is gone.
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(outDir)) {
			t.Errorf("process still running after cancel: %s", bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		}
	}
}

func TestEncodeChunkRejectsBadSettings(t *testing.T) {
	tr := newTestTranscoder(t)
	c := Chunk{Path: "/nonexistent.mkv", Frames: 1, Duration: 1}
	for name, s := range map[string]EncodeSettings{
		"no renditions": {FrameRate: 25},
		"no frame rate": {Renditions: []Rendition{{Name: "144p", Width: 256, Height: 144, Bitrate: 1e5}}},
		"odd size":      {FrameRate: 25, Renditions: []Rendition{{Name: "144p", Width: 255, Height: 144, Bitrate: 1e5}}},
		"bad preset":    {FrameRate: 25, Preset: "turbo", Renditions: []Rendition{{Name: "144p", Width: 256, Height: 144, Bitrate: 1e5}}},
		"vp9":           {FrameRate: 25, Renditions: []Rendition{{Name: "144p", Width: 256, Height: 144, Bitrate: 1e5, Codec: "vp9"}}},
	} {
		if _, err := tr.EncodeChunk(context.Background(), c, s, t.TempDir(), nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
