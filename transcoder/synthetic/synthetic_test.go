package synthetic

import (
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gosty/gosty/transcoder"
)

func TestParse(t *testing.T) {
	for spec, want := range map[string]Config{"0.2": {Factor: 0.2}, "1,175000": {Factor: 1, BytesPerSecond: 175000}, " 0 , 0 ": {}} {
		got, err := Parse(spec)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", spec, got, err, want)
		}
	}
	for _, bad := range []string{"", "x", "-1", "1,2,3", "1,-5", "NaN"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestPipeline(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.gsy")
	s := Source{Duration: 60, Width: 640, Height: 360, FPS: 25, BitRate: 800_000, Audio: true}
	if err := os.WriteFile(src, s.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	tc := New(Config{Factor: 0.01})
	ctx := context.Background()
	p, err := tc.Probe(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if p.Duration != 60 || p.Video.Height != 360 || p.Audio == nil {
		t.Fatalf("probe: %+v", p)
	}
	rends, err := transcoder.Plan(p, transcoder.Options{})
	if err != nil {
		t.Fatal(err)
	}
	chunks, err := tc.Split(ctx, src, p, transcoder.ChunkPlan{Seconds: 6}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(chunks) != 10 || chunks[9].Start != 54 || chunks[3].Frames != 150 {
		t.Fatalf("split: %d chunks, last %+v", len(chunks), chunks[len(chunks)-1])
	}
	sums := map[[32]byte]bool{}
	for _, c := range chunks {
		b, err := os.ReadFile(c.Path)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != 600_000 { // 800 kb/s × 6 s
			t.Fatalf("chunk %d: %d bytes", c.Index, len(b))
		}
		sums[sha256.Sum256(b)] = true
	}
	if len(sums) != len(chunks) {
		t.Fatalf("chunks share content: %d distinct of %d", len(sums), len(chunks))
	}

	var last float64
	start := time.Now()
	outs, err := tc.EncodeChunk(ctx, chunks[0], transcoder.EncodeSettings{Renditions: rends, FrameRate: 25}, filepath.Join(dir, "enc"), func(p float64) { last = p })
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 60*time.Millisecond {
		t.Fatalf("encode took %v, want at least 6 s × 0.01", el)
	}
	if last != 1 || len(outs) != len(rends) {
		t.Fatalf("progress %v, %d outputs for %d renditions", last, len(outs), len(rends))
	}
	fi, _ := os.Stat(outs[0])
	if want := rends[0].Bitrate / 8 * 6; fi.Size() != want {
		t.Fatalf("rendition %s: %d bytes, want %d", rends[0].Name, fi.Size(), want)
	}

	cctx, cancel := context.WithCancel(ctx)
	slow := New(Config{Factor: 100})
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	if _, err := slow.EncodeChunk(cctx, chunks[1], transcoder.EncodeSettings{Renditions: rends}, filepath.Join(dir, "enc2"), nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled encode: %v", err)
	}

	audio := filepath.Join(dir, "audio.m4a")
	if err := tc.EncodeAudio(ctx, src, p, 60, audio); err != nil {
		t.Fatal(err)
	}
	in := transcoder.PackageInput{Renditions: rends, Chunks: make([][]string, len(rends)), Audio: audio}
	for i := range rends {
		in.Chunks[i] = []string{outs[i], outs[i]}
	}
	res, err := tc.Package(ctx, in, filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	if res.HLS == "" || res.DASH == "" || len(res.MP4) != len(rends) || len(res.Files) != len(rends)+2 {
		t.Fatalf("package: %+v", res)
	}
	for _, f := range res.Files {
		if _, err := os.Stat(filepath.Join(dir, "out", filepath.FromSlash(f))); err != nil {
			t.Fatal(err)
		}
	}

	if _, err := tc.Probe(ctx, audio); !transcoder.IsMediaError(err) {
		t.Fatalf("probe of a non-descriptor: %v", err)
	}
}
