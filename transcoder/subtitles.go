package transcoder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/gosty/gosty/transcoder/confine"
)

// SubtitleStream is one subtitle stream of a source, as probed.
type SubtitleStream struct {
	Index    int    `json:"index"`
	Codec    string `json:"codec"`
	Language string `json:"language,omitempty"` // BCP 47 ("en", "fr-CA"); "" unknown
	Title    string `json:"title,omitempty"`
	Default  bool   `json:"default,omitempty"`
	Forced   bool   `json:"forced,omitempty"`
}

// MaxSubtitleTracks bounds the subtitle tracks of one job: streams of the
// source converted and sidecar files uploaded with it, together.
const MaxSubtitleTracks = 16

// textSubtitleCodecs are the subtitle codecs ffmpeg turns into WebVTT
// (ASS/SSA lose their styling: only the text and <i>/<b>/<u> remain).
// Image-based ones (hdmv_pgs_subtitle, dvb_subtitle, dvd_subtitle, xsub)
// would need OCR and are not converted.
var textSubtitleCodecs = map[string]bool{
	"subrip": true, "srt": true, "ass": true, "ssa": true, "mov_text": true, "webvtt": true, "text": true,
}

// IsText reports whether the stream is text ffmpeg converts to WebVTT.
func (s SubtitleStream) IsText() bool { return textSubtitleCodecs[s.Codec] }

// subtitleStreamOf reads a probed subtitle stream's facts; title and
// language come from the file and are cleaned.
func subtitleStreamOf(index int, codec string, tags map[string]string, disposition map[string]int) SubtitleStream {
	return SubtitleStream{
		Index:    index,
		Codec:    colorName(codec), // a short plain name or ""
		Language: NormalizeLanguage(tags["language"]),
		Title:    cleanTitle(tags["title"]),
		Default:  disposition["default"] != 0,
		Forced:   disposition["forced"] != 0,
	}
}

// SubtitlePlan picks the source's subtitle streams to convert (text ones,
// at most room) and says in warnings what is left out and why.
func SubtitlePlan(p *Probe, room int) (convert []SubtitleStream, warnings []string) {
	for _, s := range p.Subtitles {
		switch {
		case !s.IsText():
			warnings = append(warnings, fmt.Sprintf("subtitle stream %d (%s%s) is image-based and was not converted",
				s.Index, s.Codec, langSuffix(s.Language)))
		case len(convert) >= room:
			warnings = append(warnings, fmt.Sprintf("subtitle stream %d (%s%s) was not converted: at most %d subtitle tracks per job",
				s.Index, s.Codec, langSuffix(s.Language), MaxSubtitleTracks))
		default:
			convert = append(convert, s)
		}
	}
	return convert, warnings
}

func langSuffix(l string) string {
	if l == "" {
		return ""
	}
	return ", " + l
}

// ExtractSubtitles converts the given text subtitle streams of a user's
// file to WebVTT, one file per stream (outDir/sub-<k>.vtt, in the order
// given), in one confined ffmpeg run. Cue times are moved onto the
// outputs' timeline, which starts at the first video frame. A stream
// with no cue gives an empty path.
func (t *Transcoder) ExtractSubtitles(ctx context.Context, src string, p *Probe, streams []SubtitleStream, outDir string) ([]string, error) {
	if len(streams) == 0 {
		return nil, nil
	}
	if p.Video == nil {
		return nil, errors.New("extract subtitles: no video facts")
	}
	args := ffmpegBase()
	args = append(args, "-copyts") // cue times as in the source; shifted below
	args = append(args, userInputArgs()...)
	args = append(args, "-i", inputURL(src))
	raw := make([]string, len(streams))
	for k, s := range streams {
		if !s.IsText() {
			return nil, fmt.Errorf("extract subtitles: stream %d (%s) is not text", s.Index, s.Codec)
		}
		raw[k] = filepath.Join(outDir, fmt.Sprintf("raw-%d.vtt", k))
		args = append(args, "-map", "0:"+strconv.Itoa(s.Index), "-c:s", "webvtt", "-f", "webvtt", "-y", raw[k])
	}
	access := confine.Policy{Read: []string{src}, Write: []string{outDir}}
	if err := t.run(ctx, demuxDeadline(p.Duration), t.ffmpeg, args, nil, access); err != nil {
		if ctx.Err() == nil && stderrOf(err) != "" {
			return nil, &MediaError{Reason: "a subtitle stream could not be read: " + readableStderr(stderrOf(err), src), Err: err}
		}
		return nil, fmt.Errorf("extract subtitles of %s: %w", src, err)
	}
	out := make([]string, len(streams))
	for k := range streams {
		if fi, err := os.Stat(raw[k]); err == nil && fi.Size() > maxExtractedBytes {
			return nil, &MediaError{Reason: fmt.Sprintf("subtitle stream %d holds more than %d MiB of text", streams[k].Index, maxExtractedBytes>>20)}
		}
		cues, err := readVTT(raw[k])
		if err != nil {
			return nil, fmt.Errorf("extract subtitles: stream %d: %w", streams[k].Index, err)
		}
		cues = ShiftCues(cues, -p.Video.StartTime)
		if len(cues) == 0 {
			continue
		}
		out[k] = filepath.Join(outDir, fmt.Sprintf("sub-%d.vtt", k))
		if err := os.WriteFile(out[k], WebVTT(cues), 0o644); err != nil {
			return nil, fmt.Errorf("extract subtitles: %w", err)
		}
	}
	t.log.Info("subtitles extracted", "path", src, "tracks", len(streams))
	return out, nil
}

// readVTT reads a WebVTT file this package wrote (or ffmpeg did for it);
// it may have no cue.
func readVTT(path string) ([]Cue, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s := strings.ReplaceAll(strings.TrimPrefix(string(b), "\ufeff"), "\r\n", "\n")
	if !strings.HasPrefix(s, "WEBVTT") {
		return nil, fmt.Errorf("%s is not WebVTT", filepath.Base(path))
	}
	return parseBlocks(s, true)
}

var bcp47Re = regexp.MustCompile(`^[a-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}$`)

// NormalizeLanguage turns a container's or a file name's language into a
// BCP 47 tag fit for HLS's LANGUAGE and DASH's lang ("eng" → "en",
// "fr_CA" → "fr-CA"); "" when it is unknown ("und") or not a tag.
func NormalizeLanguage(s string) string {
	s = strings.ReplaceAll(strings.TrimSpace(s), "_", "-")
	primary, rest, _ := strings.Cut(s, "-")
	primary = strings.ToLower(primary)
	if l, ok := languages[primary]; ok {
		primary = l[0]
	}
	if rest != "" {
		primary += "-" + rest
	}
	if primary == "und" || primary == "zxx" || primary == "mul" || !bcp47Re.MatchString(primary) {
		return ""
	}
	return primary
}

// SubtitleFile is the published sidecar of subtitle track n (0-based, in
// the job's order): subs/<n>-<language>.vtt ("und" when unknown).
func SubtitleFile(n int, language string) string {
	return "subs/" + subtitleBase(n, language) + ".vtt"
}

func subtitleBase(n int, language string) string {
	if language == "" || !bcp47Re.MatchString(language) {
		language = "und"
	}
	return fmt.Sprintf("%d-%s", n, language)
}

// SubtitleName is a track's display name: its title, else its
// language's English name ("English", "French (fr-CA)") or tag, else
// "Subtitles <n+1>".
func SubtitleName(n int, title, language string) string {
	switch {
	case title != "":
		return title
	case language != "":
		primary, region, _ := strings.Cut(language, "-")
		if l, ok := languages[primary]; ok && region == "" {
			return l[2] // the language's English name, as audio tracks get
		} else if ok {
			return l[2] + " (" + language + ")"
		}
		return language
	}
	return fmt.Sprintf("Subtitles %d", n+1)
}
