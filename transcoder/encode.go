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

	"github.com/gosty/gosty/transcoder/confine"
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
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("encode chunk %d: %w", c.Index, err)
	}
	filter, outArgs, err := t.ladder(s)
	if err != nil {
		return nil, fmt.Errorf("encode chunk %d: %w", c.Index, err)
	}
	thumbs, withThumbs, err := t.newThumbBranch(filter, c, s, outDir) // thumbs.go
	if err != nil {
		return nil, fmt.Errorf("encode chunk %d: %w", c.Index, err)
	}
	if withThumbs {
		filter = thumbs.filter
	}
	// The chunk is our own stream copy, but -noautorotate matters: rotation
	// comes from the probe of the original, applied exactly once in the filter.
	args := ffmpegBase()
	args = append(args, "-progress", "pipe:1", "-nostats", "-noautorotate",
		"-protocol_whitelist", "file", "-i", inputURL(c.Path), "-filter_complex", filter)
	if t.threads > 0 {
		args = append(args, "-filter_complex_threads", strconv.Itoa(t.threads))
	}
	n := len(s.Renditions)
	finals := make([]string, n)
	temps := make([]string, n)
	for i := range s.Renditions {
		finals[i] = filepath.Join(outDir, fmt.Sprintf("r%d.mp4", i))
		temps[i] = finals[i] + ".part"
		args = append(args, outArgs[i]...)
		args = append(args, "-an", "-sn", "-dn", "-movflags", "+faststart", "-f", "mp4", "-y", temps[i])
	}
	if withThumbs {
		args = append(args, thumbs.args...)
	}
	cleanup := func() {
		for _, p := range temps {
			_ = os.Remove(p)
		}
	}
	if err := t.run(ctx, encodeDeadline(c.Duration), t.ffmpeg, args, newProgressWriter(c.Duration, progress),
		confine.Policy{Read: []string{c.Path}, Write: []string{outDir}}); err != nil {
		cleanup()
		return nil, fmt.Errorf("encode chunk %d (%s): %w", c.Index, c.Path, err)
	}
	for i, r := range s.Renditions {
		frames, err := mp4VideoFrames(temps[i])
		if err != nil {
			cleanup()
			return nil, fmt.Errorf("encode chunk %d: verify %s: %w", c.Index, r.Name, err)
		}
		if c.Frames > 0 && frames != c.Frames {
			cleanup()
			return nil, fmt.Errorf("encode chunk %d: rendition %s has %d frames, chunk has %d", c.Index, r.Name, frames, c.Frames)
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
	if withThumbs {
		if err := thumbs.bundle(); err != nil {
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

// ladder builds what every encode of a job shares: the filter graph that
// decodes once and scales to every rendition (outputs [o0], [o1], ...), and
// per rendition the encoder arguments: fixed GOP, keyframes forced on the
// segment grid, no scene cuts, closed GOPs, frame timing passed through.
func (t *Transcoder) ladder(s EncodeSettings) (filter string, outArgs [][]string, err error) {
	seg := s.SegmentSeconds
	if seg <= 0 {
		seg = DefaultSegmentSeconds
	}
	preset := s.Preset
	if preset == "" {
		preset = DefaultPreset
	}
	if !validPreset(preset) {
		return "", nil, fmt.Errorf("unknown x264 preset %q", preset)
	}
	if s.FrameRate <= 0 {
		return "", nil, fmt.Errorf("frame rate %g", s.FrameRate)
	}
	gop := max(int(math.Round(seg*s.FrameRate)), 1)

	var fc strings.Builder
	fc.WriteString("[0:v]")
	if r := rotationFilter(s.Rotation); r != "" {
		fc.WriteString(r + ",")
	}
	split, err := rangeSplit(s.ToneMap, s.Renditions, "s")
	if err != nil {
		return "", nil, err
	}
	fc.WriteString(split)
	forceKF := "expr:gte(t,n_forced*" + fmtSec(seg) + ")"
	for i, r := range s.Renditions {
		if r.Width%2 != 0 || r.Height%2 != 0 || r.Width <= 0 || r.Height <= 0 {
			return "", nil, fmt.Errorf("rendition %s has odd or empty size %dx%d", r.Name, r.Width, r.Height)
		}
		fmt.Fprintf(&fc, ";[s%d]scale=%d:%d:flags=bicubic,setsar=1,format=%s[o%d]", i, r.Width, r.Height, rungPixFmt(r), i)
		enc, err := encoderArgs(r.Codec, preset, s.RateControl, r.Bitrate, gop, forceKF, t.threads)
		if err != nil {
			return "", nil, fmt.Errorf("rendition %s: %w", r.Name, err)
		}
		if enc, err = hdrEncoderArgs(enc, r, s.HDR10); err != nil {
			return "", nil, err
		}
		a := append([]string{"-map", fmt.Sprintf("[o%d]", i)}, enc...)
		a = append(a, colorTags(s.ToneMap, r)...)
		a = append(a, "-fps_mode", "passthrough")
		outArgs = append(outArgs, a)
	}
	return fc.String(), outArgs, nil
}

// BaselineArgs is the ffmpeg command line that does a whole job's encoding
// in one process, the way a user would without gosty: decode src once, encode
// every rendition with exactly the encoder settings EncodeChunk uses to
// outDir/r<i>.mp4, and the audio (if any) once to outDir/audio.m4a. The
// benchmarks run it next to a node to measure gosty's overhead.
func (t *Transcoder) BaselineArgs(src string, p *Probe, s EncodeSettings, outDir string) ([]string, error) {
	filter, outArgs, err := t.ladder(s)
	if err != nil {
		return nil, err
	}
	args := ffmpegBase()
	args = append(args, "-noautorotate", "-i", inputURL(src), "-filter_complex", filter)
	for i, a := range outArgs {
		args = append(args, a...)
		args = append(args, "-an", "-movflags", "+faststart", "-y", filepath.Join(outDir, fmt.Sprintf("r%d.mp4", i)))
	}
	if p.Audio != nil {
		args = append(args, "-map", "0:"+strconv.Itoa(p.Audio.Index), "-vn", "-c:a", "aac",
			"-b:a", strconv.Itoa(DefaultAudioBitrate), "-y", filepath.Join(outDir, "audio.m4a"))
	}
	return args, nil
}

// FFmpeg is the path of the ffmpeg binary in use.
func (t *Transcoder) FFmpeg() string { return t.ffmpeg }

// toneMapFilter maps an HDR picture (RangePQ or RangeHLG, as the decoded
// frames are tagged) to SDR BT.709: to linear light, Hable's curve in
// BT.709 primaries, then BT.709's transfer and matrix in limited range.
// "" for SDR sources. Debian's ffmpeg has zscale (zimg) and tonemap.
func toneMapFilter(rng string) string {
	if rng != RangePQ && rng != RangeHLG {
		return ""
	}
	return "zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,tonemap=tonemap=hable:desat=0,zscale=t=bt709:m=bt709:r=tv,format=yuv420p"
}

// sdrTags label a tone-mapped output as BT.709 in the bitstream, so
// players do not take it for the source's HDR.
var sdrTags = []string{"-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709", "-color_range", "tv"}
