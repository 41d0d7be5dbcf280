package transcoder

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Cue is one subtitle cue: when it shows (seconds on the output's
// timeline, which starts at the first video frame) and its text, already
// safe to write into a WebVTT file (entities escaped; only <i>, <b> and
// <u> kept as markup).
type Cue struct {
	Start, End float64
	Text       string
}

// Limits of a subtitle file (uploaded sidecars and extracted tracks).
const (
	MaxSubtitleBytes   = 2 << 20 // a sidecar file
	MaxSubtitleCues    = 50_000
	maxCueTextBytes    = 4096
	maxSubtitleSeconds = maxDuration
	// maxShownSeconds bounds the cues' display times added up: a real
	// track shows text a fraction of the time, and since a cue is written
	// into every segment it overlaps, this bounds the segmented track.
	maxShownSeconds = 2 * maxDuration
	// maxExtractedBytes bounds a subtitle stream ffmpeg converted.
	maxExtractedBytes = 16 << 20
)

// ParseSubtitles reads an SRT or WebVTT file (told apart by the WEBVTT
// header) into cues. It is strict about timings and lenient about text:
// anything that is not a timing line, an index, a header or a NOTE/STYLE/
// REGION block is cue text. A file that is not subtitles, or has no cue,
// is a *MediaError.
func ParseSubtitles(b []byte) ([]Cue, error) {
	if len(b) > MaxSubtitleBytes {
		return nil, &MediaError{Reason: fmt.Sprintf("subtitle file is %d bytes; the limit is %d", len(b), MaxSubtitleBytes)}
	}
	if !utf8.Valid(b) {
		return nil, &MediaError{Reason: "subtitle file is not UTF-8 text"}
	}
	if bytes.IndexByte(b, 0) >= 0 {
		return nil, &MediaError{Reason: "subtitle file is binary, not SRT or WebVTT"}
	}
	s := strings.TrimPrefix(string(b), "\ufeff")
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
	vtt := s == "WEBVTT" || strings.HasPrefix(s, "WEBVTT\n") || strings.HasPrefix(s, "WEBVTT ") || strings.HasPrefix(s, "WEBVTT\t")
	cues, err := parseBlocks(s, vtt)
	if err != nil {
		return nil, err
	}
	if len(cues) == 0 {
		return nil, &MediaError{Reason: "subtitle file has no cue (expected SRT or WebVTT)"}
	}
	return cues, nil
}

// timingRe is a cue timing line: SRT ("00:00:01,000") or WebVTT
// ("00:01.000", "00:00:01.000") times, then WebVTT cue settings.
var timingRe = regexp.MustCompile(`^\s*((?:\d+:)?\d{1,2}:\d{1,2}[.,]\d{1,3})\s+-->\s+((?:\d+:)?\d{1,2}:\d{1,2}[.,]\d{1,3})(?:\s.*)?$`)

func parseBlocks(s string, vtt bool) ([]Cue, error) {
	blocks := strings.Split(s, "\n\n")
	var cues []Cue
	shown := 0.0
	for bi, blk := range blocks {
		lines := strings.Split(strings.Trim(blk, "\n"), "\n")
		if len(lines) == 0 || strings.TrimSpace(blk) == "" {
			continue
		}
		if vtt && bi == 0 {
			continue // the WEBVTT header block
		}
		first := strings.TrimSpace(lines[0])
		if vtt && (first == "NOTE" || strings.HasPrefix(first, "NOTE ") || first == "STYLE" || first == "REGION") {
			continue
		}
		t := 0
		if !strings.Contains(lines[0], "-->") {
			t = 1 // a cue identifier (SRT: the counter)
		}
		if t >= len(lines) {
			return nil, &MediaError{Reason: fmt.Sprintf("subtitle block %d has no timing line (expected SRT or WebVTT)", bi+1)}
		}
		m := timingRe.FindStringSubmatch(lines[t])
		if m == nil {
			return nil, &MediaError{Reason: fmt.Sprintf("subtitle block %d: bad timing line %q", bi+1, clip(lines[t], 60))}
		}
		start, err1 := parseCueTime(m[1])
		end, err2 := parseCueTime(m[2])
		if err1 != nil || err2 != nil || end < start || end > maxSubtitleSeconds {
			return nil, &MediaError{Reason: fmt.Sprintf("subtitle block %d: bad times %q", bi+1, clip(lines[t], 60))}
		}
		text := cueText(strings.Join(lines[t+1:], "\n"), vtt)
		if text == "" || end == start {
			continue
		}
		if len(cues) == MaxSubtitleCues {
			return nil, &MediaError{Reason: fmt.Sprintf("subtitle file has more than %d cues", MaxSubtitleCues)}
		}
		if shown += end - start; shown > maxShownSeconds {
			return nil, &MediaError{Reason: fmt.Sprintf("subtitle cues are shown for more than %.0f h in all", maxShownSeconds/3600)}
		}
		cues = append(cues, Cue{Start: start, End: end, Text: text})
	}
	return cues, nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// parseCueTime reads [hh:]mm:ss(.|,)mmm.
func parseCueTime(s string) (float64, error) {
	s = strings.Replace(s, ",", ".", 1)
	parts := strings.Split(s, ":")
	var h, m int
	var sec float64
	var err error
	switch len(parts) {
	case 2:
		m, err = strconv.Atoi(parts[0])
	case 3:
		if h, err = strconv.Atoi(parts[0]); err == nil {
			m, err = strconv.Atoi(parts[1])
		}
	default:
		return 0, fmt.Errorf("bad time %q", s)
	}
	if err != nil || m > 59 || h > 99999 {
		return 0, fmt.Errorf("bad time %q", s)
	}
	sec, err = strconv.ParseFloat(parts[len(parts)-1], 64)
	if err != nil || sec >= 60 || sec < 0 {
		return 0, fmt.Errorf("bad time %q", s)
	}
	return float64(h*3600+m*60) + sec, nil
}

var tagRe = regexp.MustCompile(`<[^<>\n]*>`)

// cueText makes cue text safe for WebVTT: markup other than <i>, <b> and
// <u> (SRT's <font>, WebVTT's classes and voices, ASS leftovers) is
// dropped, the rest escaped, control characters and "-->" (which would
// end the cue) removed. WebVTT input has its entities decoded first.
func cueText(s string, vtt bool) string {
	var b strings.Builder
	plain := func(p string) {
		if vtt {
			p = html.UnescapeString(p)
		}
		p = strings.Map(func(r rune) rune {
			if r == '\n' || r == '\t' {
				return r
			}
			if unicode.IsControl(r) {
				return -1
			}
			return r
		}, p)
		p = strings.ReplaceAll(p, "-->", "->")
		b.WriteString(strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(p))
	}
	last := 0
	for _, loc := range tagRe.FindAllStringIndex(s, -1) {
		plain(s[last:loc[0]])
		switch tag := strings.ToLower(strings.TrimSpace(s[loc[0]+1 : loc[1]-1])); tag {
		case "i", "b", "u", "/i", "/b", "/u":
			b.WriteString("<" + tag + ">")
		}
		last = loc[1]
	}
	plain(s[last:])
	lines := strings.Split(b.String(), "\n")
	out := lines[:0]
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	text := strings.Join(out, "\n")
	if len(text) > maxCueTextBytes {
		text = clip(text, maxCueTextBytes)
	}
	return text
}

// ShiftCues moves cues by d seconds and drops what falls before zero
// (clipping a cue that straddles it).
func ShiftCues(cues []Cue, d float64) []Cue {
	out := make([]Cue, 0, len(cues))
	for _, c := range cues {
		c.Start, c.End = c.Start+d, c.End+d
		if c.End <= 0 {
			continue
		}
		c.Start = max(c.Start, 0)
		out = append(out, c)
	}
	return out
}

// WebVTT writes cues as a WebVTT file; header lines (e.g. HLS's
// X-TIMESTAMP-MAP) follow the WEBVTT line.
func WebVTT(cues []Cue, header ...string) []byte {
	var b bytes.Buffer
	b.WriteString("WEBVTT\n")
	for _, h := range header {
		b.WriteString(h + "\n")
	}
	for _, c := range cues {
		fmt.Fprintf(&b, "\n%s --> %s\n%s\n", vttTime(c.Start), vttTime(c.End), c.Text)
	}
	return b.Bytes()
}

// vttTime writes seconds as hh:mm:ss.mmm.
func vttTime(s float64) string {
	ms := int64(math.Round(max(s, 0) * 1000))
	return fmt.Sprintf("%02d:%02d:%02d.%03d", ms/3_600_000, ms/60_000%60, ms/1000%60, ms%1000)
}

// hlsTimestampMap maps WebVTT cue times onto the fMP4 media timeline:
// the video's timeline starts at 0, so cue time t is media time t.
const hlsTimestampMap = "X-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000"

// SegmentCues puts cues into the segments bounded by edges (edges[k] to
// edges[k+1], seconds): a cue goes into every segment it overlaps, with
// its own times, so a player that starts anywhere shows it.
func SegmentCues(cues []Cue, edges []float64) [][]Cue {
	if len(edges) < 2 {
		return nil
	}
	out := make([][]Cue, len(edges)-1)
	for _, c := range cues {
		// The first segment that ends after the cue starts, then on while
		// segments start before it ends.
		k := sort.Search(len(out), func(k int) bool { return edges[k+1] > c.Start })
		for ; k < len(out) && edges[k] < c.End; k++ {
			out[k] = append(out[k], c)
		}
	}
	return out
}
