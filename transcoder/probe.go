package transcoder

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
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
// image2 and friends are absent because they open other files or URLs named
// inside the input. Every name was checked against `ffmpeg -demuxers` of 5.1.
var demuxerAllowlist = []string{
	"mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm", "avi", "mpegts",
	"flv", "mpeg", "mpegvideo", "ogg", "wav", "mp3", "aac", "flac", "asf", "h264",
	"hevc", "m4v", "yuv4mpegpipe",
}

// userInputArgs must precede -i for every read of a user's file.
func userInputArgs() []string {
	return []string{"-protocol_whitelist", "file", "-format_whitelist", strings.Join(demuxerAllowlist, ",")}
}

// inputURL names a local file so that ffmpeg can't read it as an option
// ("-foo.mp4") or as another protocol ("http:...").
func inputURL(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return "file:" + path
}

// Limits on what we accept; beyond them a job would be unreasonably costly
// or the probe values are garbage.
const (
	maxDuration  = 24 * 3600.0
	maxDimension = 8192
	maxFrameRate = 240.0
)

// Probe inspects a user's file. Problems with the file itself are returned
// as *MediaError; anything else (tool missing, ctx canceled) is not.
func (t *Transcoder) Probe(ctx context.Context, path string) (*Probe, error) {
	if err := sniff(path); err != nil {
		return nil, err
	}
	args := append([]string{"-v", "error", "-hide_banner"}, userInputArgs()...)
	args = append(args, "-show_format", "-show_streams", "-of", "json", "-i", inputURL(path))
	var out bytes.Buffer
	if err := t.run(ctx, t.ffprobe, args, &out); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("probe: %w", err)
		}
		if se := stderrOf(err); se != "" {
			return nil, &MediaError{Reason: "unsupported or damaged media: " + readableStderr(se, path), Err: err}
		}
		return nil, fmt.Errorf("probe %s: %w", path, err)
	}
	p, err := parseProbe(out.Bytes())
	if err != nil {
		return nil, err
	}
	t.log.Debug("probed", "path", path, "format", p.Format, "duration", p.Duration,
		"width", p.Video.Width, "height", p.Video.Height, "fps", p.Video.FrameRate, "audio", p.Audio != nil)
	return p, nil
}

// sniff rejects files that are obviously not media before any demuxer sees
// them: empty files, and text such as playlists or concat lists, which are
// the inputs able to make ffmpeg open other files.
func sniff(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	defer f.Close()
	head := make([]byte, 4096)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return fmt.Errorf("probe: read %s: %w", path, err)
	}
	head = head[:n]
	if n == 0 {
		return &MediaError{Reason: "file is empty"}
	}
	s := bytes.TrimLeft(head, "\ufeff \t\r\n")
	switch {
	case bytes.HasPrefix(s, []byte("#EXTM3U")):
		return &MediaError{Reason: "file is an HLS playlist, not a video"}
	case bytes.HasPrefix(s, []byte("ffconcat")):
		return &MediaError{Reason: "file is a concat list, not a video"}
	case bytes.HasPrefix(s, []byte("<?xml")), bytes.HasPrefix(s, []byte("<MPD")):
		return &MediaError{Reason: "file is an XML document (e.g. a DASH manifest), not a video"}
	case bytes.HasPrefix(s, []byte("YUV4MPEG2")):
		return nil // text header, raw frames after it
	}
	if mostlyText(head) {
		return &MediaError{Reason: "file is a playlist or text, not a video"}
	}
	return nil
}

func mostlyText(b []byte) bool {
	if len(b) == 0 || bytes.IndexByte(b, 0) >= 0 {
		return false
	}
	if !utf8.Valid(b[:len(b)-min(len(b), 3)]) {
		return false
	}
	printable := 0
	for _, c := range b {
		if c >= 0x20 && c != 0x7f || c == '\n' || c == '\r' || c == '\t' || c >= 0x80 {
			printable++
		}
	}
	return float64(printable) >= 0.95*float64(len(b))
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

type ffprobeOut struct {
	Streams []struct {
		Index        int               `json:"index"`
		CodecName    string            `json:"codec_name"`
		CodecType    string            `json:"codec_type"`
		Width        int               `json:"width"`
		Height       int               `json:"height"`
		PixFmt       string            `json:"pix_fmt"`
		AvgFrameRate string            `json:"avg_frame_rate"`
		RFrameRate   string            `json:"r_frame_rate"`
		Duration     string            `json:"duration"`
		StartTime    string            `json:"start_time"`
		BitRate      string            `json:"bit_rate"`
		Channels     int               `json:"channels"`
		SampleRate   string            `json:"sample_rate"`
		Disposition  map[string]int    `json:"disposition"`
		Tags         map[string]string `json:"tags"`
		SideData     []struct {
			Type     string  `json:"side_data_type"`
			Rotation float64 `json:"rotation"`
		} `json:"side_data_list"`
	} `json:"streams"`
	Format struct {
		FormatName string `json:"format_name"`
		Duration   string `json:"duration"`
		Size       string `json:"size"`
		BitRate    string `json:"bit_rate"`
		StartTime  string `json:"start_time"`
	} `json:"format"`
}

func parseProbe(js []byte) (*Probe, error) {
	var f ffprobeOut
	if err := json.Unmarshal(js, &f); err != nil {
		return nil, fmt.Errorf("probe: decode ffprobe json: %w", err)
	}
	if !formatAllowed(f.Format.FormatName) {
		return nil, &MediaError{Reason: fmt.Sprintf("container format %q is not supported", f.Format.FormatName)}
	}
	p := &Probe{
		Format:   f.Format.FormatName,
		Duration: parseF(f.Format.Duration),
		Size:     int64(parseF(f.Format.Size)),
		BitRate:  int64(parseF(f.Format.BitRate)),
	}
	for _, s := range f.Streams {
		switch {
		case s.CodecType == "video" && p.Video == nil && s.Disposition["attached_pic"] == 0:
			v := &VideoStream{
				Index:     s.Index,
				Codec:     s.CodecName,
				Width:     s.Width,
				Height:    s.Height,
				FrameRate: parseRate(s.AvgFrameRate),
				Duration:  parseF(s.Duration),
				StartTime: parseF(s.StartTime),
				PixFmt:    s.PixFmt,
				BitRate:   int64(parseF(s.BitRate)),
			}
			if v.FrameRate <= 0 {
				v.FrameRate = parseRate(s.RFrameRate)
			}
			rot, found := 0.0, false
			for _, sd := range s.SideData {
				if sd.Type == "Display Matrix" {
					// ffprobe reports the matrix's counter-clockwise angle;
					// we store the clockwise turn needed for display, the
					// way ffmpeg's own autorotate reads it.
					rot, found = -sd.Rotation, true
				}
			}
			if !found {
				if r, err := strconv.ParseFloat(s.Tags["rotate"], 64); err == nil {
					rot = r // the legacy tag is already clockwise
				}
			}
			v.Rotation = normRotation(rot)
			if v.Rotation == 90 || v.Rotation == 270 {
				v.Width, v.Height = v.Height, v.Width
			}
			if v.Duration <= 0 {
				v.Duration = p.Duration
			}
			p.Video = v
		case s.CodecType == "audio" && p.Audio == nil:
			p.Audio = &AudioStream{
				Index:      s.Index,
				Codec:      s.CodecName,
				Channels:   s.Channels,
				SampleRate: int(parseF(s.SampleRate)),
				Duration:   parseF(s.Duration),
				StartTime:  parseF(s.StartTime),
				BitRate:    int64(parseF(s.BitRate)),
			}
			if p.Audio.Duration <= 0 {
				p.Audio.Duration = p.Duration
			}
		}
	}
	v := p.Video
	switch {
	case v == nil:
		return nil, &MediaError{Reason: "no video stream"}
	case v.Width <= 0 || v.Height <= 0:
		return nil, &MediaError{Reason: "video has no picture size (unsupported codec or damaged stream)"}
	case v.Width > maxDimension || v.Height > maxDimension:
		return nil, &MediaError{Reason: fmt.Sprintf("video is %dx%d; the largest supported side is %d", v.Width, v.Height, maxDimension)}
	case v.Duration <= 0 || math.IsNaN(v.Duration):
		return nil, &MediaError{Reason: "video duration is unknown or zero"}
	case v.Duration > maxDuration:
		return nil, &MediaError{Reason: fmt.Sprintf("video is %.0f s long; the limit is 24 h", v.Duration)}
	case v.FrameRate <= 0 || math.IsNaN(v.FrameRate):
		return nil, &MediaError{Reason: "video frame rate is unknown"}
	case v.FrameRate > maxFrameRate:
		return nil, &MediaError{Reason: fmt.Sprintf("video frame rate %.2f fps is above the limit of %g", v.FrameRate, maxFrameRate)}
	}
	if p.Duration <= 0 {
		p.Duration = v.Duration
	}
	return p, nil
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

func normRotation(deg float64) int {
	r := int(math.Round(deg/90)) * 90
	r %= 360
	if r < 0 {
		r += 360
	}
	return r
}

func parseF(s string) float64 {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

func parseRate(s string) float64 {
	num, den, ok := strings.Cut(s, "/")
	if !ok {
		return parseF(s)
	}
	n, d := parseF(num), parseF(den)
	if d == 0 {
		return 0
	}
	return n / d
}

// streamCount is what the verification steps need to know about a file we
// produced ourselves.
type streamCount struct {
	Packets  int
	Duration float64
}

// countPackets demuxes (does not decode) the first stream of the given type
// of one of our own files and returns its packet count and duration.
func (t *Transcoder) countPackets(ctx context.Context, path, streamSel string) (streamCount, error) {
	args := []string{"-v", "error", "-hide_banner", "-protocol_whitelist", "file",
		"-select_streams", streamSel, "-count_packets",
		"-show_entries", "stream=nb_read_packets,duration:format=duration", "-of", "json", "-i", inputURL(path)}
	var out bytes.Buffer
	if err := t.run(ctx, t.ffprobe, args, &out); err != nil {
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
