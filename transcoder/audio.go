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

// EncodeAudio encodes every audio stream the probe lists (Probe.Tracks:
// the job's choice, see Probe.SelectAudio) once for the whole job, in one
// ffmpeg run, into one multi-track .m4a at out: AAC-LC stereo per stream
// (mono stays mono) and, for a surround stream (6 channels or more), a 5.1
// AAC rendition right after its stereo one. The default stream (the
// source's default disposition, else the first) comes first, so that
// whatever reads only the first track (the live view) gets it. Every
// track carries its language and a name (audiotracks.go). Each is aligned
// to the video: audio that starts after the video is preceded by silence,
// audio that starts before it is trimmed, and the result is padded or cut
// to exactly videoDuration so every rendition's A/V lengths agree.
func (t *Transcoder) EncodeAudio(ctx context.Context, src string, p *Probe, videoDuration float64, out string) error {
	return t.EncodeAudioProgress(ctx, src, p, videoDuration, out, nil)
}

// EncodeAudioProgress is EncodeAudio with progress reports (progress may be nil).
func (t *Transcoder) EncodeAudioProgress(ctx context.Context, src string, p *Probe, videoDuration float64, out string, progress Progress) error {
	if p == nil || len(p.Tracks()) == 0 {
		return errors.New("encode audio: source has no audio stream")
	}
	if videoDuration <= 0 {
		return fmt.Errorf("encode audio: video duration %g", videoDuration)
	}
	var vStart float64
	if p.Video != nil {
		vStart = p.Video.StartTime
	}
	outs := PlanAudioTracks(p.Tracks())
	var graph []string
	var outArgs []string
	for k, a := range orderDefaultFirst(p.Tracks()) {
		chain := audioChain(a, a.StartTime-vStart, videoDuration)
		var mine []AudioTrack
		for _, o := range outs {
			if o.Source == a.Index {
				mine = append(mine, o)
			}
		}
		if len(mine) == 1 {
			graph = append(graph, fmt.Sprintf("%s,aformat=channel_layouts=%s[o%d]", chain, layoutOf(mine[0].Channels), mine[0].Ordinal))
		} else {
			graph = append(graph, fmt.Sprintf("%s,asplit=%d%s", chain, len(mine), splitLabels(k, len(mine))))
			for m, o := range mine {
				graph = append(graph, fmt.Sprintf("[t%d_%d]aformat=channel_layouts=%s[o%d]", k, m, layoutOf(o.Channels), o.Ordinal))
			}
		}
	}
	for _, o := range outs {
		j := strconv.Itoa(o.Ordinal)
		disp := "0"
		if o.Default {
			disp = "default"
		}
		outArgs = append(outArgs, "-map", "[o"+j+"]", "-b:a:"+j, strconv.Itoa(o.Bitrate),
			"-metadata:s:a:"+j, "language="+languageMP4(o.Language), "-metadata:s:a:"+j, "handler_name="+o.Name,
			"-disposition:a:"+j, disp)
	}

	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("encode audio %s: %w", src, err)
	}
	tmp := out + ".part"
	args := ffmpegBase()
	args = append(args, "-progress", "pipe:1", "-nostats")
	args = append(args, userInputArgs()...)
	args = append(args, "-i", inputURL(src), "-filter_complex", strings.Join(graph, ";"))
	args = append(args, outArgs...)
	args = append(args, "-c:a", "aac", "-t", fmtSec(videoDuration),
		"-map_metadata", "-1", "-movflags", "+faststart", "-f", "mp4", "-y", tmp)
	if err := t.run(ctx, audioDeadline(videoDuration*float64(len(outs))), t.ffmpeg, args, newProgressWriter(videoDuration, progress),
		confine.Policy{Read: []string{src}, Write: []string{filepath.Dir(out)}}); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("encode audio %s: %w", src, err)
	}
	if err := fsyncFile(tmp); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("encode audio %s: %w", src, err)
	}
	// Verified before it is kept: a full disk during the faststart pass
	// can leave a file without its moov atom behind an exit status of 0,
	// and a blob stored so would fail every package of the job.
	if got, err := t.AudioTracksOf(ctx, tmp, videoDuration); err != nil || len(got) != len(outs) {
		_ = os.Remove(tmp)
		if err == nil {
			err = fmt.Errorf("%d tracks written, %d planned", len(got), len(outs))
		}
		return fmt.Errorf("encode audio %s: the encoded audio does not read back: %w", src, err)
	}
	if err := os.Rename(tmp, out); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("encode audio %s: %w", src, err)
	}
	fsyncDir(filepath.Dir(out))
	t.log.Debug("audio encoded", "src", src, "streams", len(p.Tracks()), "tracks", len(outs))
	return nil
}

// audioChain is the filter chain of one source stream up to its split:
// timestamps from zero, the offset to the video (silence before, or
// trimmed), gaps filled (async resampling, so the track cannot drift) and
// padded to the video's duration.
func audioChain(a AudioStream, offset, videoDuration float64) string {
	filters := []string{"asetpts=PTS-STARTPTS"}
	switch {
	case offset > 0.0005:
		filters = append(filters, fmt.Sprintf("adelay=delays=%d:all=1", int(math.Round(offset*1000))))
	case offset < -0.0005:
		filters = append(filters, "atrim=start="+fmtSec(-offset), "asetpts=PTS-STARTPTS")
	}
	rate := 48000
	if a.SampleRate == 44100 {
		rate = 44100
	}
	filters = append(filters, fmt.Sprintf("aresample=%d:async=1", rate), "apad=whole_dur="+fmtSec(videoDuration))
	return fmt.Sprintf("[0:%d]%s", a.Index, strings.Join(filters, ","))
}

func splitLabels(k, n int) string {
	var b strings.Builder
	for m := range n {
		fmt.Fprintf(&b, "[t%d_%d]", k, m)
	}
	return b.String()
}

func layoutOf(channels int) string {
	switch channels {
	case 1:
		return "mono"
	case 6:
		return "5.1"
	}
	return "stereo"
}
