package transcoder

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func newTestTranscoder(t *testing.T) *Transcoder {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	tr, err := New(Config{Logger: log})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return tr
}

type clipSpec struct {
	W, H     int
	Rate     int
	Seconds  float64
	GOP      float64 // seconds between source keyframes
	Audio    bool
	Ext      string   // container extension, default mp4
	Preset   string   // default veryfast (B-frames, like real sources)
	OutExtra []string // extra output options of the encode
	Rotate   int      // if set, stream-copied again with a display rotation
}

// genClip renders a synthetic test clip with ffmpeg's lavfi sources.
func genClip(t *testing.T, dir, name string, c clipSpec) string {
	t.Helper()
	if c.Ext == "" {
		c.Ext = "mp4"
	}
	if c.Preset == "" {
		c.Preset = "veryfast"
	}
	if c.GOP == 0 {
		c.GOP = 1
	}
	out := filepath.Join(dir, name+"."+c.Ext)
	gop := strconv.Itoa(int(c.GOP * float64(c.Rate)))
	args := []string{"-nostdin", "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", c.W, c.H, c.Rate)}
	if c.Audio {
		args = append(args, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000")
	}
	args = append(args, "-t", strconv.FormatFloat(c.Seconds, 'f', 3, 64),
		"-c:v", "libx264", "-preset", c.Preset, "-pix_fmt", "yuv420p",
		"-g", gop, "-keyint_min", gop, "-sc_threshold", "0")
	if c.Audio {
		args = append(args, "-c:a", "aac", "-b:a", "96k")
	}
	args = append(args, c.OutExtra...)
	args = append(args, out)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if b, err := exec.CommandContext(ctx, "ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("generate %s: %v\n%s", name, err, b)
	}
	if c.Rotate != 0 {
		// ffmpeg 5.1 has no -display_rotation, and the rotate tag is only
		// turned into a display matrix on a stream copy, not when encoding.
		rot := filepath.Join(dir, name+"-rot."+c.Ext)
		b, err := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
			"-i", out, "-c", "copy", "-metadata:s:v", "rotate="+strconv.Itoa(c.Rotate), rot).CombinedOutput()
		if err != nil {
			t.Fatalf("rotate %s: %v\n%s", name, err, b)
		}
		out = rot
	}
	return out
}

type fpStream struct {
	CodecType     string `json:"codec_type"`
	Width         int    `json:"width"`
	Height        int    `json:"height"`
	Duration      string `json:"duration"`
	NbReadPackets string `json:"nb_read_packets"`

	PixFmt         string `json:"pix_fmt"`
	ColorTransfer  string `json:"color_transfer"`
	ColorPrimaries string `json:"color_primaries"`
	ColorSpace     string `json:"color_space"`
}

type fpOut struct {
	Streams  []fpStream `json:"streams"`
	Programs []struct {
		Streams []fpStream `json:"streams"`
	} `json:"programs"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
	Packets []struct {
		PTSTime string `json:"pts_time"`
		Flags   string `json:"flags"`
	} `json:"packets"`
}

func ffprobeJSON(t *testing.T, args ...string) fpOut {
	t.Helper()
	full := append([]string{"-v", "error", "-of", "json"}, args...)
	b, err := exec.Command("ffprobe", full...).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("ffprobe %s: %v %s", strings.Join(args, " "), err, stderr)
	}
	var o fpOut
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatalf("ffprobe json: %v", err)
	}
	return o
}

// streamFacts returns the packet count and duration of the first stream of
// the given type ("v" or "a") of a file.
func streamFacts(t *testing.T, path, sel string) (packets int, dur float64) {
	t.Helper()
	o := ffprobeJSON(t, "-count_packets", "-select_streams", sel+":0",
		"-show_entries", "stream=codec_type,nb_read_packets,duration:format=duration", path)
	if len(o.Streams) == 0 {
		t.Fatalf("%s: no %s stream", path, sel)
	}
	packets, _ = strconv.Atoi(o.Streams[0].NbReadPackets)
	dur = parseF(o.Streams[0].Duration)
	if dur == 0 {
		dur = parseF(o.Format.Duration)
	}
	return packets, dur
}

func keyframeTimes(t *testing.T, path string) []string {
	t.Helper()
	o := ffprobeJSON(t, "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags", path)
	var kf []string
	for _, p := range o.Packets {
		if strings.Contains(p.Flags, "K") {
			kf = append(kf, p.PTSTime)
		}
	}
	return kf
}

func near(a, b, tol float64) bool { d := a - b; return d <= tol && d >= -tol }

// mustGen runs ffmpeg with the given input/output options into dir/name and
// returns the bytes written.
func mustGen(t *testing.T, dir, name string, args ...string) []byte {
	t.Helper()
	out := filepath.Join(dir, name)
	full := append([]string{"-nostdin", "-hide_banner", "-loglevel", "error", "-y"}, args...)
	if b, err := exec.Command("ffmpeg", append(full, out)...).CombinedOutput(); err != nil {
		t.Fatalf("generate %s: %v\n%s", name, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ffmpegTest starts a test that runs ffmpeg (skipped under -short): a
// context bounded by limit, a transcoder and a temporary directory.
func ffmpegTest(t *testing.T, limit time.Duration) (context.Context, *Transcoder, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	t.Cleanup(cancel)
	return ctx, newTestTranscoder(t), t.TempDir()
}

// splitAndEncode splits src into chunks of about chunkSeconds, encodes each
// with s and returns the package input of the encoded chunks (no audio,
// no subtitles).
func splitAndEncode(t *testing.T, ctx context.Context, tr *Transcoder, src string, p *Probe, chunkSeconds float64, s EncodeSettings, dir string) PackageInput {
	t.Helper()
	chunks, err := tr.Split(ctx, src, p, ChunkPlan{Seconds: chunkSeconds}, filepath.Join(dir, "chunks"))
	if err != nil {
		t.Fatal(err)
	}
	in := PackageInput{Renditions: s.Renditions, Chunks: make([][]string, len(s.Renditions)), Duration: p.Video.Duration}
	for _, c := range chunks {
		outs, err := tr.EncodeChunk(ctx, c, s, filepath.Join(dir, "enc", strconv.Itoa(c.Index)), nil)
		if err != nil {
			t.Fatal(err)
		}
		for i, o := range outs {
			in.Chunks[i] = append(in.Chunks[i], o)
		}
	}
	return in
}
