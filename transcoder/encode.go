package transcoder

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DefaultPreset is the x264 preset when EncodeSettings.Preset is empty.
const DefaultPreset = "veryfast"

// EncodeChunk encodes one chunk to every rendition in a single ffmpeg run:
// the chunk is decoded once and the frames are split to one scaler and one
// encoder per rendition. Output i is outDir/r<i>.mp4 for s.Renditions[i].
//
// Every chunk of a job gets identical encoder settings and a keyframe on
// the same local grid (chunk start + k*SegmentSeconds), with scene-cut
// keyframes and open GOPs off, so the chunks stitch with a stream copy and
// segments line up across renditions.
func (t *Transcoder) EncodeChunk(ctx context.Context, c Chunk, s EncodeSettings, outDir string, progress Progress) ([]string, error) {
	if len(s.Renditions) == 0 {
		return nil, errors.New("encode chunk: no renditions")
	}
	if s.FrameRate <= 0 {
		return nil, fmt.Errorf("encode chunk %d: frame rate %g", c.Index, s.FrameRate)
	}
	seg := s.SegmentSeconds
	if seg <= 0 {
		seg = DefaultSegmentSeconds
	}
	preset := s.Preset
	if preset == "" {
		preset = DefaultPreset
	}
	if !validPreset(preset) {
		return nil, fmt.Errorf("encode chunk %d: unknown x264 preset %q", c.Index, preset)
	}
	gop := max(int(math.Round(seg*s.FrameRate)), 1)
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("encode chunk %d: %w", c.Index, err)
	}

	var fc strings.Builder
	fc.WriteString("[0:v]")
	if r := rotationFilter(s.Rotation); r != "" {
		fc.WriteString(r + ",")
	}
	n := len(s.Renditions)
	fmt.Fprintf(&fc, "split=%d", n)
	for i := range n {
		fmt.Fprintf(&fc, "[s%d]", i)
	}
	for i, r := range s.Renditions {
		if r.Width%2 != 0 || r.Height%2 != 0 || r.Width <= 0 || r.Height <= 0 {
			return nil, fmt.Errorf("encode chunk %d: rendition %s has odd or empty size %dx%d", c.Index, r.Name, r.Width, r.Height)
		}
		if r.Codec != "" && r.Codec != "h264" {
			return nil, fmt.Errorf("encode chunk %d: rendition %s: codec %s not supported yet", c.Index, r.Name, r.Codec)
		}
		fmt.Fprintf(&fc, ";[s%d]scale=%d:%d:flags=bicubic,setsar=1,format=yuv420p[o%d]", i, r.Width, r.Height, i)
	}

	// The chunk is our own stream copy, but -noautorotate matters: rotation
	// comes from the probe of the original, applied exactly once above.
	args := ffmpegBase()
	args = append(args, "-progress", "pipe:1", "-nostats", "-noautorotate",
		"-protocol_whitelist", "file", "-i", inputURL(c.Path), "-filter_complex", fc.String())
	if t.threads > 0 {
		args = append(args, "-filter_complex_threads", strconv.Itoa(t.threads))
	}
	finals := make([]string, n)
	temps := make([]string, n)
	forceKF := "expr:gte(t,n_forced*" + fmtSec(seg) + ")"
	for i, r := range s.Renditions {
		finals[i] = filepath.Join(outDir, fmt.Sprintf("r%d.mp4", i))
		temps[i] = finals[i] + ".part"
		b := r.Bitrate
		args = append(args, "-map", fmt.Sprintf("[o%d]", i),
			"-c:v", "libx264", "-preset", preset, "-profile:v", "high",
			"-b:v", strconv.FormatInt(b, 10),
			"-maxrate", strconv.FormatInt(int64(float64(b)*1.07), 10),
			"-bufsize", strconv.FormatInt(2*b, 10),
			"-g", strconv.Itoa(gop), "-keyint_min", strconv.Itoa(gop), "-sc_threshold", "0",
			"-force_key_frames", forceKF,
			"-x264-params", "scenecut=0:open_gop=0",
			"-fps_mode", "passthrough", "-an", "-sn", "-dn")
		if t.threads > 0 {
			args = append(args, "-threads", strconv.Itoa(t.threads))
		}
		args = append(args, "-movflags", "+faststart", "-f", "mp4", "-y", temps[i])
	}
	cleanup := func() {
		for _, p := range temps {
			_ = os.Remove(p)
		}
	}
	if err := t.run(ctx, t.ffmpeg, args, newProgressWriter(c.Duration, progress)); err != nil {
		cleanup()
		return nil, fmt.Errorf("encode chunk %d (%s): %w", c.Index, c.Path, err)
	}
	for i, r := range s.Renditions {
		sc, err := t.countPackets(ctx, temps[i], "v:0")
		if err != nil {
			cleanup()
			return nil, fmt.Errorf("encode chunk %d: verify %s: %w", c.Index, r.Name, err)
		}
		if c.Frames > 0 && sc.Packets != c.Frames {
			cleanup()
			return nil, fmt.Errorf("encode chunk %d: rendition %s has %d frames, chunk has %d", c.Index, r.Name, sc.Packets, c.Frames)
		}
	}
	for i := range temps {
		if err := fsyncFile(temps[i]); err != nil {
			cleanup()
			return nil, fmt.Errorf("encode chunk %d: %w", c.Index, err)
		}
		if err := os.Rename(temps[i], finals[i]); err != nil {
			cleanup()
			return nil, fmt.Errorf("encode chunk %d: %w", c.Index, err)
		}
	}
	fsyncDir(outDir)
	return finals, nil
}

// rotationFilter turns the clockwise display rotation into the filters that
// bake it into the pixels, as ffmpeg's own autorotate would.
func rotationFilter(rot int) string {
	switch normRotation(float64(rot)) {
	case 90:
		return "transpose=clock"
	case 180:
		return "hflip,vflip"
	case 270:
		return "transpose=cclock"
	}
	return ""
}
