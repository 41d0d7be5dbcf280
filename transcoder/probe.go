package transcoder

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/gosty/gosty/transcoder/confine"
)

// MediaError is a permanent problem with the user's media: retrying the task
// on another node cannot help. Reason is a sentence fit for the job's `error`
// field; it never contains local paths.
type MediaError struct {
	Reason string
	Err    error
}

func (e *MediaError) Error() string {
	if e.Err != nil {
		return "media: " + e.Reason + ": " + e.Err.Error()
	}
	return "media: " + e.Reason
}

func (e *MediaError) Unwrap() error { return e.Err }

// IsMediaError reports whether err (or anything it wraps) is a MediaError.
func IsMediaError(err error) bool {
	var me *MediaError
	return errors.As(err, &me)
}

// demuxerAllowlist is every demuxer a user file may be opened with. It holds
// only self-contained containers and elementary streams: hls, dash, concat,
// image2, sdp/rtp, subtitle formats and friends are absent because they open
// other files or URLs named inside the input. Every name was checked against
// `ffmpeg -demuxers` of 5.1. The mov demuxer can follow external data
// references ("drefs"), but only when its enable_drefs option is set, which
// is off by default and never set here (ffmpeg refuses the option for other
// demuxers, so it cannot be passed explicitly on every command line).
var demuxerAllowlist = []string{
	"mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm", "avi", "mpegts",
	"flv", "mpeg", "mpegvideo", "ogg", "wav", "mp3", "aac", "flac", "asf", "h264",
	"hevc", "m4v", "yuv4mpegpipe",
	// MXF carries broadcast and post-production masters (DNxHR, XDCAM,
	// AVC-Intra). ffmpeg's demuxer reads OP1a and OP-Atom from the one
	// file it is given; it opens no other file or URL.
	"mxf",
}

// userInputArgs must precede -i for every read of a user's file: the file
// protocol only (so nothing inside a file can make ffmpeg open a URL), the
// demuxer allowlist, and a bound on streams a demuxer may create.
func userInputArgs() []string {
	return []string{"-protocol_whitelist", "file", "-format_whitelist", strings.Join(demuxerAllowlist, ","),
		"-max_streams", strconv.Itoa(maxStreams + 1)}
}

// inputURL names a local file so that ffmpeg can't read it as an option
// ("-foo.mp4") or as another protocol ("http:...").
func inputURL(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return "file:" + path
}

// Probe inspects a user's file. Problems with the file itself are returned
// as *MediaError; anything else (tool missing, ctx canceled) is not.
func (t *Transcoder) Probe(ctx context.Context, path string) (*Probe, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	if t.maxFileBytes > 0 && fi.Size() > t.maxFileBytes {
		return nil, &MediaError{Reason: fmt.Sprintf("file is %d bytes; the limit is %d", fi.Size(), t.maxFileBytes)}
	}
	if err := sniff(path); err != nil {
		return nil, err
	}
	args := append([]string{"-v", "error", "-hide_banner"}, userInputArgs()...)
	args = append(args, "-show_format", "-show_streams", "-of", "json", "-i", inputURL(path))
	out := &cappedBuffer{max: maxProbeOutput}
	if err := t.run(ctx, t.probeTimeout, t.ffprobe, args, out, confine.Policy{Read: []string{path}}); err != nil {
		var de *DeadlineError
		switch {
		case ctx.Err() != nil:
			return nil, fmt.Errorf("probe: %w", err)
		case errors.As(err, &de):
			return nil, &MediaError{Reason: fmt.Sprintf("reading the file took longer than %s (damaged or hostile media)", de.Limit), Err: err}
		case out.overflow:
			return nil, &MediaError{Reason: "the file describes itself in more than 8 MiB of metadata", Err: err}
		}
		se := stderrOf(err)
		if strings.Contains(se, "exceeds max_streams") {
			return nil, &MediaError{Reason: fmt.Sprintf("the file has more than %d streams; at most %d are accepted", maxStreams, maxStreams), Err: err}
		}
		if se != "" {
			return nil, &MediaError{Reason: "unsupported or damaged media: " + readableStderr(se, path), Err: err}
		}
		return nil, fmt.Errorf("probe %s: %w", path, err)
	}
	p, err := parseProbe(out.Bytes())
	if err != nil {
		return nil, err
	}
	t.probeHDR(ctx, path, out.Bytes(), p)
	t.log.Debug("probed", "path", path, "format", p.Format, "duration", p.Duration,
		"width", p.Video.Width, "height", p.Video.Height, "fps", p.Video.FrameRate, "audio", len(p.AudioTracks))
	if p.AudioIgnored > 0 {
		t.log.Info("audio streams beyond the cap are ignored", "path", path, "kept", len(p.AudioTracks), "ignored", p.AudioIgnored)
	}
	return p, nil
}

// maxProbeOutput bounds ffprobe's JSON: a few kB for real files, but tags
// and side data come from the file and could be made huge.
const maxProbeOutput = 8 << 20

// cappedBuffer keeps up to max bytes and fails the write beyond, which
// ends the child (broken pipe).
type cappedBuffer struct {
	bytes.Buffer
	max      int
	overflow bool
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if c.Len()+len(p) > c.max {
		c.overflow = true
		return 0, errors.New("output too large")
	}
	return c.Buffer.Write(p)
}

var (
	ffLogPrefix  = regexp.MustCompile(`^\[[^\]]*@ 0x[0-9a-f]+\]\s*`)
	notWhitelist = regexp.MustCompile(`\[([^\] ]+) @ 0x[0-9a-f]+\] Format not on whitelist`)
)

// readableStderr turns ffprobe's first error line into something fit for a
// user: no "[mov,mp4 @ 0x55…]" prefix and no local path.
func readableStderr(stderr, path string) string {
	if m := notWhitelist.FindStringSubmatch(stderr); m != nil {
		return fmt.Sprintf("container format %s is not accepted", m[1])
	}
	line, _, _ := strings.Cut(strings.TrimSpace(stderr), "\n")
	line = ffLogPrefix.ReplaceAllString(strings.TrimSpace(line), "")
	if abs, err := filepath.Abs(path); err == nil {
		line = strings.ReplaceAll(line, "file:"+abs+": ", "")
		line = strings.ReplaceAll(line, "file:"+abs, "input")
	}
	line = strings.ReplaceAll(line, path, "input")
	if line == "" {
		return "ffprobe could not read the file"
	}
	return line
}

// checkLimits refuses a probe beyond what we accept.
func checkLimits(p *Probe) error {
	v := p.Video
	switch {
	case v == nil:
		return &MediaError{Reason: "no video stream"}
	case v.Index < 0:
		return &MediaError{Reason: "video stream has a bad index"}
	case v.Width <= 0 || v.Height <= 0:
		return &MediaError{Reason: "video has no picture size (unsupported codec or damaged stream)"}
	case v.Width > maxDimension || v.Height > maxDimension:
		return &MediaError{Reason: fmt.Sprintf("video is %dx%d; the largest supported side is %d", v.Width, v.Height, maxDimension)}
	case int64(v.Width)*int64(v.Height) > maxPixels:
		return &MediaError{Reason: fmt.Sprintf("video is %dx%d; the largest supported picture is %d pixels (8192x4320)", v.Width, v.Height, maxPixels)}
	case v.Duration <= 0:
		return &MediaError{Reason: "video duration is unknown or zero"}
	case v.Duration > maxDuration:
		return &MediaError{Reason: fmt.Sprintf("video is %.0f s long; the limit is 24 h", v.Duration)}
	case p.Duration > maxDuration:
		return &MediaError{Reason: fmt.Sprintf("file declares a duration of %.0f s; the limit is 24 h", p.Duration)}
	case v.FrameRate <= 0:
		return &MediaError{Reason: "video frame rate is unknown"}
	case v.FrameRate > maxFrameRate:
		return &MediaError{Reason: fmt.Sprintf("video frame rate %.2f fps is above the limit of %g", v.FrameRate, maxFrameRate)}
	case p.Audio != nil && (p.Audio.Index < 0 || p.Audio.Index == v.Index), !audioIndicesOK(p, v.Index):
		return &MediaError{Reason: "audio stream has a bad index"}
	}
	return nil
}

func formatAllowed(name string) bool {
	if name == "" {
		return false
	}
	for _, part := range strings.Split(name, ",") {
		for _, a := range demuxerAllowlist {
			if part == a {
				return true
			}
		}
	}
	return false
}

// normRotation rounds an angle in degrees to the nearest quarter turn in
// [0, 360); anything that is not a finite number is no rotation.
func normRotation(deg float64) int {
	if math.IsNaN(deg) || math.IsInf(deg, 0) {
		return 0
	}
	q := math.Mod(math.Round(deg/90), 4) // exact for any magnitude
	if q < 0 {
		q += 4
	}
	return int(q) * 90 % 360
}

// parseF reads a finite float; anything else is 0.
func parseF(s string) float64 {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

// parseCount reads a size, bit rate or sample rate: a non-negative integer
// (ffprobe may print it as a float); garbage, negatives and values beyond
// int64 are 0.
func parseCount(s string) int64 {
	v := parseF(s)
	if v <= 0 || v >= math.MaxInt64 {
		return 0
	}
	return int64(v)
}

// parseRate reads "30000/1001" or "25"; a result that is not a finite
// positive number is 0 (unknown).
func parseRate(s string) float64 {
	num, den, ok := strings.Cut(s, "/")
	var r float64
	if !ok {
		r = parseF(s)
	} else {
		n, d := parseF(num), parseF(den)
		if d == 0 {
			return 0
		}
		r = n / d
	}
	if r <= 0 || math.IsNaN(r) || math.IsInf(r, 0) {
		return 0
	}
	return r
}

// streamCount is what the verification steps need to know about a file we
// produced ourselves.
type streamCount struct {
	Packets  int
	Duration float64
}

// countPackets demuxes (does not decode) the first stream of the given type
// of one of our own files and returns its packet count and duration.
func (t *Transcoder) countPackets(ctx context.Context, path, streamSel string, mediaSeconds float64) (streamCount, error) {
	args := []string{"-v", "error", "-hide_banner", "-protocol_whitelist", "file",
		"-select_streams", streamSel, "-count_packets",
		"-show_entries", "stream=nb_read_packets,duration:format=duration", "-of", "json", "-i", inputURL(path)}
	var out bytes.Buffer
	if err := t.run(ctx, demuxDeadline(mediaSeconds), t.ffprobe, args, &out, confine.Policy{Read: []string{path}}); err != nil {
		return streamCount{}, fmt.Errorf("count packets of %s: %w", path, err)
	}
	var r struct {
		Streams []struct {
			NbReadPackets string `json:"nb_read_packets"`
			Duration      string `json:"duration"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return streamCount{}, fmt.Errorf("count packets of %s: %w", path, err)
	}
	if len(r.Streams) == 0 {
		return streamCount{}, fmt.Errorf("count packets of %s: no stream %s", path, streamSel)
	}
	n, err := strconv.Atoi(r.Streams[0].NbReadPackets)
	if err != nil {
		return streamCount{}, fmt.Errorf("count packets of %s: bad nb_read_packets %q", path, r.Streams[0].NbReadPackets)
	}
	d := parseF(r.Streams[0].Duration)
	if d <= 0 {
		d = parseF(r.Format.Duration)
	}
	return streamCount{Packets: n, Duration: d}, nil
}

// colorName keeps a colour property ffprobe names, "" for "unknown" and
// anything that is not a short plain name.
func colorName(s string) string {
	if s == "unknown" || len(s) > 32 || strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) {
		return ""
	}
	return s
}
