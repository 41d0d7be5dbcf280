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

// EncodeAudio encodes the source's first audio stream once for the whole job
// to AAC-LC in an .m4a at out. The track is aligned to the video: audio
// that starts after the video is preceded by silence, audio that starts
// before it is trimmed, and the result is padded or cut to exactly
// videoDuration so every rendition's A/V lengths agree.
func (t *Transcoder) EncodeAudio(ctx context.Context, src string, p *Probe, videoDuration float64, out string) error {
	return t.EncodeAudioProgress(ctx, src, p, videoDuration, out, nil)
}

// EncodeAudioProgress is EncodeAudio with progress reports (progress may be nil).
func (t *Transcoder) EncodeAudioProgress(ctx context.Context, src string, p *Probe, videoDuration float64, out string, progress Progress) error {
	if p == nil || p.Audio == nil {
		return errors.New("encode audio: source has no audio stream")
	}
	if videoDuration <= 0 {
		return fmt.Errorf("encode audio: video duration %g", videoDuration)
	}
	a := p.Audio
	var vStart float64
	if p.Video != nil {
		vStart = p.Video.StartTime
	}
	offset := a.StartTime - vStart

	rate := 48000
	if a.SampleRate == 44100 {
		rate = 44100
	}
	channels := 2
	if a.Channels == 1 {
		channels = 1
	}
	filters := []string{"asetpts=PTS-STARTPTS"}
	switch {
	case offset > 0.0005:
		filters = append(filters, fmt.Sprintf("adelay=delays=%d:all=1", int(math.Round(offset*1000))))
	case offset < -0.0005:
		filters = append(filters, "atrim=start="+fmtSec(-offset), "asetpts=PTS-STARTPTS")
	}
	// async resampling fills timestamp gaps in the source with silence so
	// the track cannot drift.
	filters = append(filters, fmt.Sprintf("aresample=%d:async=1", rate), "apad=whole_dur="+fmtSec(videoDuration))

	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("encode audio %s: %w", src, err)
	}
	tmp := out + ".part"
	args := ffmpegBase()
	args = append(args, "-progress", "pipe:1", "-nostats")
	args = append(args, userInputArgs()...)
	args = append(args, "-i", inputURL(src), "-map", "0:"+strconv.Itoa(a.Index), "-vn", "-sn", "-dn",
		"-af", strings.Join(filters, ","),
		"-c:a", "aac", "-b:a", strconv.Itoa(DefaultAudioBitrate), "-ac", strconv.Itoa(channels),
		"-ar", strconv.Itoa(rate), "-t", fmtSec(videoDuration),
		"-map_metadata", "-1", "-movflags", "+faststart", "-f", "mp4", "-y", tmp)
	if err := t.run(ctx, audioDeadline(videoDuration), t.ffmpeg, args, newProgressWriter(videoDuration, progress),
		confine.Policy{Read: []string{src}, Write: []string{filepath.Dir(out)}}); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("encode audio %s: %w", src, err)
	}
	if err := fsyncFile(tmp); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("encode audio %s: %w", src, err)
	}
	if err := os.Rename(tmp, out); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("encode audio %s: %w", src, err)
	}
	fsyncDir(filepath.Dir(out))
	return nil
}
