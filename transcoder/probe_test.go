package transcoder

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestProbe(t *testing.T) {
	tr := newTestTranscoder(t)
	dir := t.TempDir()
	cases := []struct {
		name      string
		clip      clipSpec
		w, h, rot int
		audio     bool
	}{
		{"landscape with audio", clipSpec{W: 320, H: 180, Rate: 25, Seconds: 2, Audio: true}, 320, 180, 0, true},
		{"portrait", clipSpec{W: 180, H: 320, Rate: 30, Seconds: 2, Audio: true}, 180, 320, 0, true},
		{"no audio", clipSpec{W: 320, H: 180, Rate: 24, Seconds: 2}, 320, 180, 0, false},
		{"matroska", clipSpec{W: 320, H: 180, Rate: 25, Seconds: 2, Audio: true, Ext: "mkv"}, 320, 180, 0, true},
		{"rotated 90", clipSpec{W: 320, H: 180, Rate: 25, Seconds: 2, Audio: true, Rotate: 90}, 180, 320, 0, true},
		{"rotated 180", clipSpec{W: 320, H: 180, Rate: 25, Seconds: 2, Audio: true, Rotate: 180}, 320, 180, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := genClip(t, dir, strings.ReplaceAll(tc.name, " ", "_"), tc.clip)
			p, err := tr.Probe(context.Background(), path)
			if err != nil {
				t.Fatalf("Probe: %v", err)
			}
			v := p.Video
			if v.Width != tc.w || v.Height != tc.h {
				t.Errorf("size %dx%d, want %dx%d", v.Width, v.Height, tc.w, tc.h)
			}
			switch tc.clip.Rotate {
			case 0:
				if v.Rotation != 0 {
					t.Errorf("rotation %d, want 0", v.Rotation)
				}
			case 180:
				if v.Rotation != 180 {
					t.Errorf("rotation %d, want 180", v.Rotation)
				}
			default:
				if v.Rotation != 90 && v.Rotation != 270 {
					t.Errorf("rotation %d, want 90 or 270", v.Rotation)
				}
			}
			if !near(v.FrameRate, float64(tc.clip.Rate), 0.01) {
				t.Errorf("fps %v, want %d", v.FrameRate, tc.clip.Rate)
			}
			if !near(v.Duration, tc.clip.Seconds, 0.1) || !near(p.Duration, tc.clip.Seconds, 0.1) {
				t.Errorf("durations video %v format %v, want %v", v.Duration, p.Duration, tc.clip.Seconds)
			}
			if v.Codec != "h264" || v.PixFmt != "yuv420p" || p.Size <= 0 || p.Format == "" {
				t.Errorf("facts: %+v %+v", p, v)
			}
			if (p.Audio != nil) != tc.audio {
				t.Fatalf("audio = %+v, want present=%v", p.Audio, tc.audio)
			}
			if p.Audio != nil && (p.Audio.Channels != 1 || p.Audio.SampleRate != 48000 || p.Audio.Codec != "aac") {
				t.Errorf("audio facts %+v", p.Audio)
			}
		})
	}

	good := genClip(t, dir, "good", clipSpec{W: 320, H: 180, Rate: 25, Seconds: 2, Audio: true})
	goodBytes, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	png := mustGen(t, dir, "img.png", "-f", "lavfi", "-i", "testsrc2=size=64x64", "-frames:v", "1")
	random := make([]byte, 64<<10)
	_, _ = rand.Read(random)
	bad := []struct {
		name, content, reason string
	}{
		{"zero bytes", "", "empty"},
		{"text file", strings.Repeat("just some notes about a video, not a video.\n", 50), "text"},
		{"hls playlist", "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n", "playlist"},
		{"ffconcat", "ffconcat version 1.0\nfile '/etc/passwd'\n", "concat"},
		{"concat without header", "file '/etc/passwd'\nfile '/etc/passwd'\n", "text"},
		{"dash manifest", `<?xml version="1.0"?><MPD><BaseURL>file:///etc/passwd</BaseURL></MPD>`, "XML"},
		{"truncated mp4", string(goodBytes[:len(goodBytes)/2]), "unsupported or damaged media"},
		{"random bytes", string(random), ""},
		{"png image", string(png), "container format png_pipe is not accepted"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".mp4")
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := tr.Probe(context.Background(), path)
			if !IsMediaError(err) {
				t.Fatalf("err = %v, want a MediaError", err)
			}
			me := err.(*MediaError)
			if !strings.Contains(me.Reason, tc.reason) {
				t.Errorf("reason %q, want it to mention %q", me.Reason, tc.reason)
			}
			if strings.Contains(me.Reason, dir) || strings.Contains(me.Reason, " @ 0x") {
				t.Errorf("reason leaks internals: %q", me.Reason)
			}
			t.Logf("reason: %s", me.Reason)
		})
	}

	t.Run("canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := tr.Probe(ctx, good); err == nil || IsMediaError(err) {
			t.Fatalf("err = %v, want a non-media context error", err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		if _, err := tr.Probe(context.Background(), filepath.Join(dir, "nope.mp4")); err == nil || IsMediaError(err) {
			t.Fatalf("err = %v, want a non-media error", err)
		}
	})
}

func TestNewMissingBinary(t *testing.T) {
	_, err := New(Config{FFmpeg: "/nonexistent/ffmpeg"})
	if err == nil || !strings.Contains(err.Error(), "ffmpeg not found") {
		t.Fatalf("err = %v", err)
	}
	_, err = New(Config{FFprobe: "/bin/false"})
	if err == nil || !strings.Contains(err.Error(), "does not run") {
		t.Fatalf("err = %v", err)
	}
}
