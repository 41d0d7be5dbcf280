package transcoder

import (
	"encoding/xml"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const testSRT = "1\n00:00:00,500 --> 00:00:01,500\nHello\n\n2\n00:00:01,800 --> 00:00:02,600\nAcross\n\n3\n00:00:03,000 --> 00:00:03,500\nLast\n"

const testASS = `[Script Info]
ScriptType: v4.00+

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding
Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Dialogue: 0,0:00:02.50,0:00:03.20,Default,,0,0,0,,{\b1}Bonjour{\b0} le monde
`

// genSubtitledSource writes a 4 s 160x90 mkv with an English SRT stream
// (default) and a forced French ASS one; extra are more output options.
func genSubtitledSource(t *testing.T, dir, name string, extra ...string) string {
	t.Helper()
	srt, ass := filepath.Join(dir, "in.srt"), filepath.Join(dir, "in.ass")
	if err := os.WriteFile(srt, []byte(testSRT), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ass, []byte(testASS), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-f", "lavfi", "-i", "testsrc2=s=160x90:r=25:d=4", "-i", srt, "-i", ass,
		"-map", "0", "-map", "1", "-map", "2", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
		"-c:s:0", "srt", "-c:s:1", "ass", "-metadata:s:s:0", "language=eng", "-metadata:s:s:1", "language=fre",
		"-metadata:s:s:1", "title=Français (forcé)", "-disposition:s:0", "default", "-disposition:s:1", "forced"}
	mustGen(t, dir, name, append(args, extra...)...)
	return filepath.Join(dir, name)
}

// TestSubtitlesPackaged runs a source with SRT and ASS streams through
// probe, extraction, one encode and the package, and reads the result as
// a player would.
func TestSubtitlesPackaged(t *testing.T) {
	ctx, tr, dir := ffmpegTest(t, 2*time.Minute)
	src := genSubtitledSource(t, dir, "src.mkv")
	p, err := tr.Probe(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	conv, warns := SubtitlePlan(p, MaxSubtitleTracks)
	if len(conv) != 2 || len(warns) != 0 || conv[0].Language != "en" || !conv[0].Default || conv[1].Language != "fr" || !conv[1].Forced {
		t.Fatalf("plan %+v, warnings %q", conv, warns)
	}
	xdir := filepath.Join(dir, "x")
	if err := os.MkdirAll(xdir, 0o755); err != nil {
		t.Fatal(err)
	}
	vtts, err := tr.ExtractSubtitles(ctx, src, p, conv, xdir)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := Plan(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	in := splitAndEncode(t, ctx, tr, src, p, 0, EncodeSettings{Renditions: rs, FrameRate: p.Video.FrameRate, Preset: "ultrafast"}, dir)
	for k, s := range conv {
		in.Subtitles = append(in.Subtitles, SubtitleInput{Path: vtts[k], Language: s.Language, Name: SubtitleName(k, s.Title, s.Language), Default: s.Default, Forced: s.Forced})
	}
	out := filepath.Join(dir, "out")
	res, err := tr.Package(ctx, in, out)
	if err != nil {
		t.Fatal(err)
	}

	read := func(rel string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatalf("published file %s: %v", rel, err)
		}
		return string(b)
	}
	for _, f := range []string{"subs/0-en.vtt", "subs/1-fr.vtt", "subs/0-en.m3u8", "subs/0-en-00001.vtt"} {
		found := false
		for _, g := range res.Files {
			found = found || g == f
		}
		if !found {
			t.Errorf("%s is not among the package's files %v", f, res.Files)
		}
	}

	master := read(res.HLS)
	for _, want := range []string{
		`#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,FORCED=NO,URI="subs/0-en.m3u8"`,
		`#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="Français (forcé)",LANGUAGE="fr",DEFAULT=NO,AUTOSELECT=YES,FORCED=YES,URI="subs/1-fr.m3u8"`,
	} {
		if !strings.Contains(master, want) {
			t.Errorf("master lacks %s:\n%s", want, master)
		}
	}
	for _, l := range strings.Split(master, "\n") {
		if strings.HasPrefix(l, "#EXT-X-STREAM-INF") && !strings.Contains(l, `SUBTITLES="subs"`) {
			t.Errorf("variant without the subtitle group: %s", l)
		}
	}

	// The media playlist follows the video's segments, and every cue is
	// in each segment it overlaps, with times from the video's start.
	video := videoSegmentEdges(filepath.Join(out, "media_0.m3u8"))
	pl := read("subs/0-en.m3u8")
	segs := regexp.MustCompile(`(?m)^0-en-\d{5}\.vtt$`).FindAllString(pl, -1)
	if len(segs) != len(video)-1 || !strings.Contains(pl, "#EXT-X-ENDLIST") {
		t.Fatalf("subtitle playlist has %d segments, video %d:\n%s", len(segs), len(video)-1, pl)
	}
	cuesIn := func(rel string) []Cue {
		t.Helper()
		s := read(rel)
		if !strings.HasPrefix(s, "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n") {
			t.Fatalf("%s header:\n%s", rel, s)
		}
		c, err := readVTT(filepath.Join(out, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		return c
	}
	want := [][]string{{"Hello", "Across"}, {"Across", "Last"}} // on the 2 s grid of a 4 s video
	for k, seg := range segs {
		var got []string
		for _, c := range cuesIn("subs/" + seg) {
			got = append(got, c.Text)
			if c.Start >= video[k+1] || c.End <= video[k] {
				t.Errorf("segment %d [%.2f,%.2f) holds cue %v", k, video[k], video[k+1], c)
			}
		}
		if k >= len(want) || strings.Join(got, "|") != strings.Join(want[k], "|") {
			t.Errorf("segment %d [%.2f,%.2f) holds %q", k, video[k], video[k+1], got)
		}
	}
	side, err := ParseSubtitles([]byte(read("subs/0-en.vtt")))
	if err != nil || len(side) != 3 || side[0].Start != 0.5 || side[1].End != 2.6 || side[2].Text != "Last" {
		t.Errorf("English sidecar cues %v, %v", side, err)
	}
	fr, err := ParseSubtitles([]byte(read("subs/1-fr.vtt")))
	if err != nil || len(fr) != 1 || fr[0].Start != 2.5 || fr[0].Text != "<b>Bonjour</b> le monde" {
		t.Errorf("French sidecar cues %+v, %v", fr, err)
	}

	// Every track of the master's group (ffmpeg 5.1's HLS demuxer skips
	// subtitle renditions, so the test reads them itself): its playlist
	// lists WebVTT segments with the timestamp map, covering the video.
	mediaRe := regexp.MustCompile(`(?m)^#EXT-X-MEDIA:TYPE=SUBTITLES,.*LANGUAGE="([^"]+)".*URI="([^"]+)"$`)
	var langs []string
	for _, m := range mediaRe.FindAllStringSubmatch(master, -1) {
		langs = append(langs, m[1])
		pl := read(m[2])
		dir := path.Dir(m[2])
		segs := regexp.MustCompile(`(?m)^[^#\n].*\.vtt$`).FindAllString(pl, -1)
		if len(segs) != len(video)-1 {
			t.Errorf("%s lists %d segments, the video %d", m[2], len(segs), len(video)-1)
		}
		for _, seg := range segs {
			cuesIn(dir + "/" + seg)
		}
	}
	if strings.Join(langs, ",") != "en,fr" {
		t.Errorf("master's subtitle languages %q, want en,fr", langs)
	}

	var mpd struct {
		Sets []struct {
			ContentType string `xml:"contentType,attr"`
			MimeType    string `xml:"mimeType,attr"`
			Lang        string `xml:"lang,attr"`
			Role        struct {
				Value string `xml:"value,attr"`
			} `xml:"Role"`
			Reps []struct {
				BaseURL string `xml:"BaseURL"`
			} `xml:"Representation"`
		} `xml:"Period>AdaptationSet"`
	}
	if err := xml.Unmarshal([]byte(read(res.DASH)), &mpd); err != nil {
		t.Fatalf("mpd: %v", err)
	}
	var text []string
	for _, s := range mpd.Sets {
		if s.ContentType == "text" && s.MimeType == "text/vtt" && len(s.Reps) == 1 {
			text = append(text, s.Lang+" "+s.Role.Value+" "+s.Reps[0].BaseURL)
		}
	}
	if want := "en subtitle subs/0-en.vtt|fr forced-subtitle subs/1-fr.vtt"; strings.Join(text, "|") != want {
		t.Errorf("MPD text sets %q, want %q", text, want)
	}
}

// TestExtractSubtitlesStartOffset: cue times are on the outputs' timeline,
// which starts at the source's first video frame, not at zero.
func TestExtractSubtitlesStartOffset(t *testing.T) {
	ctx, tr, dir := ffmpegTest(t, time.Minute)
	src := genSubtitledSource(t, dir, "late.mkv", "-output_ts_offset", "1.5")
	p, err := tr.Probe(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if p.Video.StartTime < 1.4 {
		t.Fatalf("source video starts at %.3f s; the test needs an offset", p.Video.StartTime)
	}
	conv, _ := SubtitlePlan(p, MaxSubtitleTracks)
	vtts, err := tr.ExtractSubtitles(ctx, src, p, conv, dir)
	if err != nil {
		t.Fatal(err)
	}
	cues, err := readVTT(vtts[0])
	if err != nil || len(cues) != 3 || !near(cues[0].Start, 0.5, 0.002) || !near(cues[2].End, 3.5, 0.002) {
		t.Errorf("cues %+v, %v: want the SRT's own times", cues, err)
	}
}
