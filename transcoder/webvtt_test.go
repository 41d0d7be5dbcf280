package transcoder

import (
	"slices"
	"strings"
	"testing"
)

func TestParseSRT(t *testing.T) {
	srt := "\ufeff1\r\n00:00:00,500 --> 00:00:01,500\r\nHello <i>there</i> & <font color=\"red\">co</font>\r\n\r\n" +
		"2\r\n00:00:02,200 --> 00:00:03,800\r\nSecond\r\nline --> two\r\n\r\n"
	cues, err := ParseSubtitles([]byte(srt))
	if err != nil {
		t.Fatal(err)
	}
	want := []Cue{{0.5, 1.5, "Hello <i>there</i> &amp; co"}, {2.2, 3.8, "Second\nline -&gt; two"}}
	if !slices.Equal(cues, want) {
		t.Fatalf("cues %+v, want %+v", cues, want)
	}
	got := string(WebVTT(cues))
	if !strings.HasPrefix(got, "WEBVTT\n\n00:00:00.500 --> 00:00:01.500\nHello <i>there</i> &amp; co\n") {
		t.Errorf("WebVTT:\n%s", got)
	}
	// What we write reads back the same.
	again, err := ParseSubtitles([]byte(got))
	if err != nil || !slices.Equal(again, cues) {
		t.Errorf("round trip: %+v, %v", again, err)
	}
}

func TestParseVTT(t *testing.T) {
	vtt := "WEBVTT - a title\nKind: captions\n\nNOTE a comment\nspanning lines\n\nSTYLE\n::cue { color: red }\n\n" +
		"intro\n01:02.250 --> 01:03.000 align:start line:0\n<v Bob>Hi &amp; bye</v> <c.yellow>x</c>\n\n" +
		"1:00:00.000 --> 1:00:01.000\n&lt;b&gt; is text\n"
	cues, err := ParseSubtitles([]byte(vtt))
	if err != nil {
		t.Fatal(err)
	}
	want := []Cue{{62.25, 63, "Hi &amp; bye x"}, {3600, 3601, "&lt;b&gt; is text"}}
	if !slices.Equal(cues, want) {
		t.Fatalf("cues %+v, want %+v", cues, want)
	}
}

func TestParseSubtitlesRefuses(t *testing.T) {
	for name, in := range map[string]string{
		"empty":       "",
		"video bytes": "\x00\x00\x00\x18ftypmp42",
		"no cue":      "WEBVTT\n\nNOTE nothing\n",
		"bad timing":  "1\n00:00:01 --> 00:00:02\nx\n",
		"end first":   "1\n00:00:02,000 --> 00:00:01,000\nx\n",
		"prose":       "Once upon a time\nthere was a file.\n",
		"latin1":      "1\n00:00:01,000 --> 00:00:02,000\ncaf\xe9\n",
		"playlist":    "#EXTM3U\n#EXTINF:1,\nhttp://x/y.ts\n",
	} {
		if _, err := ParseSubtitles([]byte(in)); err == nil || !IsMediaError(err) {
			t.Errorf("%s: err %v, want a media error", name, err)
		}
	}
	if _, err := ParseSubtitles(make([]byte, MaxSubtitleBytes+1)); err == nil {
		t.Error("an oversized file was accepted")
	}
	// Each cue would go into every segment of a 24 h video.
	long := strings.Repeat("00:00:00.000 --> 23:59:59.000\nx\n\n", 3)
	if _, err := ParseSubtitles([]byte("WEBVTT\n\n" + long)); err == nil || !strings.Contains(err.Error(), "shown for more than") {
		t.Errorf("cues shown for 72 h: %v", err)
	}
}

func TestSegmentCues(t *testing.T) {
	cues := []Cue{{0.5, 1.5, "a"}, {1.5, 2.5, "b"}, {2, 4, "c"}, {3.9, 9, "d"}}
	segs := SegmentCues(cues, []float64{0, 2, 4, 5})
	texts := func(cs []Cue) (s string) {
		for _, c := range cs {
			s += c.Text
		}
		return s
	}
	got := []string{texts(segs[0]), texts(segs[1]), texts(segs[2])}
	if want := []string{"ab", "bcd", "d"}; !slices.Equal(got, want) {
		t.Errorf("segments %q, want %q", got, want)
	}
	shifted := ShiftCues([]Cue{{0.2, 0.4, "gone"}, {0.4, 1.5, "clipped"}, {2, 3, "kept"}}, -0.5)
	if want := []Cue{{0, 1, "clipped"}, {1.5, 2.5, "kept"}}; !slices.Equal(shifted, want) {
		t.Errorf("shifted %v, want %v", shifted, want)
	}
	if s := vttTime(3723.4567); s != "01:02:03.457" {
		t.Errorf("vttTime = %s", s)
	}
}

func TestNormalizeLanguage(t *testing.T) {
	for in, want := range map[string]string{"eng": "en", "fre": "fr", "fr_CA": "fr-CA", "pt-BR": "pt-BR", "und": "",
		"": "", "tlh": "tlh", "e\"n": "", "english language": ""} {
		if got := NormalizeLanguage(in); got != want {
			t.Errorf("NormalizeLanguage(%q) = %q, want %q", in, got, want)
		}
	}
}

// Image-based subtitles cannot be made here with ffmpeg (its PGS and DVB
// encoders need bitmaps), so ffprobe's JSON of such a file stands in.
func TestSubtitlePlanWarnsImageBased(t *testing.T) {
	js := `{"format":{"format_name":"matroska,webm","duration":"10"},"streams":[
	{"index":0,"codec_type":"video","codec_name":"h264","width":160,"height":90,"avg_frame_rate":"25/1","duration":"10"},
	{"index":1,"codec_type":"subtitle","codec_name":"hdmv_pgs_subtitle","tags":{"language":"ger"}},
	{"index":2,"codec_type":"subtitle","codec_name":"subrip","tags":{"language":"eng","title":"English \"SDH\""},"disposition":{"default":1}},
	{"index":3,"codec_type":"subtitle","codec_name":"dvb_subtitle"},
	{"index":4,"codec_type":"subtitle","codec_name":"ass","tags":{"language":"fre"},"disposition":{"forced":1}}]}`
	p, err := parseProbe([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	want := []SubtitleStream{{1, "hdmv_pgs_subtitle", "de", "", false, false}, {2, "subrip", "en", "English SDH", true, false},
		{3, "dvb_subtitle", "", "", false, false}, {4, "ass", "fr", "", false, true}}
	if !slices.Equal(p.Subtitles, want) {
		t.Fatalf("probe subtitles %+v, want %+v", p.Subtitles, want)
	}
	conv, warns := SubtitlePlan(p, 1)
	if len(conv) != 1 || conv[0].Index != 2 {
		t.Errorf("converted %+v, want stream 2 only", conv)
	}
	if len(warns) != 3 || !strings.Contains(warns[0], "hdmv_pgs_subtitle") || !strings.Contains(warns[0], "image-based") ||
		!strings.Contains(warns[1], "dvb_subtitle") || !strings.Contains(warns[2], "at most") {
		t.Errorf("warnings %q", warns)
	}
}

// FuzzParseSubtitles: any input either is refused or gives cues that,
// written as WebVTT, read back the same (so nothing a file holds can
// change the structure of what we publish).
func FuzzParseSubtitles(f *testing.F) {
	f.Add([]byte("1\n00:00:00,500 --> 00:00:01,500\nHello <i>there</i> & co\n"))
	f.Add([]byte("WEBVTT\n\n00:01.000 --> 00:02.000 line:0\n<v A>a --> b &amp; <c.x>c</c>\n\nNOTE x\n"))
	f.Add([]byte("WEBVTT\n\n00:00.000 --> 00:00.001\n\x1b[31m\u2028x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cues, err := ParseSubtitles(b)
		if err != nil {
			return
		}
		again, err := ParseSubtitles(WebVTT(cues))
		if err != nil {
			t.Fatalf("our own WebVTT refused: %v", err)
		}
		if len(again) != len(cues) {
			t.Fatalf("round trip: %d cues, then %d", len(cues), len(again))
		}
		for i := range cues {
			if again[i].Text != cues[i].Text || !near(again[i].Start, cues[i].Start, 0.0006) || !near(again[i].End, cues[i].End, 0.0006) {
				t.Fatalf("cue %d: %+v, then %+v", i, cues[i], again[i])
			}
		}
	})
}
