package transcoder

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// genMultiAudio makes a 2 s 160x90 source with three audio streams: English
// stereo, French stereo titled "Français" (the default), and an English 5.1
// titled "Surround".
func genMultiAudio(t *testing.T, dir string) string {
	t.Helper()
	mustGen(t, dir, "multi.mkv",
		"-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=2",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=2",
		"-f", "lavfi", "-i", "sine=frequency=660:sample_rate=44100:duration=2",
		"-f", "lavfi", "-i", "sine=frequency=220:sample_rate=48000:duration=2,aformat=channel_layouts=5.1(side)",
		"-map", "0", "-map", "1", "-map", "2", "-map", "3",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-c:a", "aac", "-ac:a:0", "2", "-ac:a:1", "2",
		"-metadata:s:a:0", "language=eng",
		"-metadata:s:a:1", "language=fre", "-metadata:s:a:1", "title=Français",
		"-metadata:s:a:2", "language=eng", "-metadata:s:a:2", "title=Surround",
		"-disposition:a:0", "0", "-disposition:a:1", "default", "-disposition:a:2", "0")
	return filepath.Join(dir, "multi.mkv")
}

type probedTrack struct {
	Channels    int               `json:"channels"`
	Duration    string            `json:"duration"`
	Tags        map[string]string `json:"tags"`
	Disposition map[string]int    `json:"disposition"`
}

// audioStreamsOf is what a player sees of the audio in a file.
func audioStreamsOf(t *testing.T, path string) []probedTrack {
	t.Helper()
	b, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "a", "-show_entries",
		"stream=channels,duration:stream_tags=language,handler_name:stream_disposition=default", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var r struct{ Streams []probedTrack }
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r.Streams
}

// describe is "lang/name/channels/default" per track.
func describe(ts []probedTrack) string {
	var out []string
	for _, s := range ts {
		d := ""
		if s.Disposition["default"] != 0 {
			d = "/default"
		}
		out = append(out, s.Tags["language"]+"/"+s.Tags["handler_name"]+"/"+itoa(s.Channels)+d)
	}
	return strings.Join(out, " ")
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// TestAudioTracksPackaged runs a source with two languages and a 5.1 track
// through the audio encode and the package, and checks what players see:
// the audio blob's tracks, one HLS audio rendition and one DASH adaptation
// set per track with languages, names and channels, and every track in
// every MP4.
func TestAudioTracksPackaged(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tr := newTestTranscoder(t)
	dir := t.TempDir()
	src := genMultiAudio(t, dir)
	p, err := tr.Probe(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.AudioTracks) != 3 || p.AudioTracks[2].Channels != 6 || p.AudioTracks[1].Title != "Français" || !p.AudioTracks[1].Default {
		t.Fatalf("probed tracks %+v", p.AudioTracks)
	}
	rs, err := Plan(p, Options{Renditions: []string{"90p@150k"}})
	if err != nil {
		t.Fatal(err)
	}
	in := splitAndEncode(t, ctx, tr, src, p, 0, EncodeSettings{Renditions: rs, FrameRate: p.Video.FrameRate}, dir)
	sel, err := p.SelectAudio(AudioChoice{})
	if err != nil {
		t.Fatal(err)
	}
	in.Audio = filepath.Join(dir, "audio.m4a")
	if err := tr.EncodeAudio(ctx, src, &sel, p.Video.Duration, in.Audio); err != nil {
		t.Fatal(err)
	}
	blob := audioStreamsOf(t, in.Audio)
	const want = "fra/Français/2/default eng/English/2 eng/Surround/2 eng/Surround 5.1/6"
	if got := describe(blob); got != want {
		t.Fatalf("audio blob tracks %q, want %q", got, want)
	}
	for k, s := range blob {
		if d := parseF(s.Duration); !near(d, p.Video.Duration, 0.05) {
			t.Errorf("track %d lasts %.3f s, the video %.3f s", k, d, p.Video.Duration)
		}
	}

	// The live view remuxes the blob's first track: the default one.
	f, err := tr.Fragment(ctx, in.Audio, DefaultSegmentSeconds, p.Video.Duration)
	if err != nil {
		t.Fatal(err)
	}
	frags, err := f.Media(0)
	if err != nil {
		t.Fatal(err)
	}
	live := filepath.Join(dir, "live.mp4")
	if err := os.WriteFile(live, append(f.Init, frags...), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := audioStreamsOf(t, live); len(got) != 1 || got[0].Channels != 2 || f.Codec() != "mp4a.40.2" {
		t.Errorf("live remux of the audio: %+v, codec %q; want the default stereo track alone", got, f.Codec())
	}

	out := filepath.Join(dir, "out")
	res, err := tr.Package(ctx, in, out)
	if err != nil {
		t.Fatal(err)
	}

	master, err := os.ReadFile(filepath.Join(out, res.HLS))
	if err != nil {
		t.Fatal(err)
	}
	media := regexp.MustCompile(`(?m)^#EXT-X-MEDIA:TYPE=AUDIO,.*$`).FindAllString(string(master), -1)
	wantMedia := []string{
		`NAME="Français",LANGUAGE="fr",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="media_1.m3u8"`,
		`NAME="English",LANGUAGE="en",DEFAULT=NO,AUTOSELECT=YES,CHANNELS="2",URI="media_2.m3u8"`,
		`NAME="Surround",LANGUAGE="en",DEFAULT=NO,AUTOSELECT=YES,CHANNELS="2",URI="media_3.m3u8"`,
		`NAME="Surround 5.1",LANGUAGE="en",DEFAULT=NO,AUTOSELECT=YES,CHANNELS="6",URI="media_4.m3u8"`,
	}
	if len(media) != len(wantMedia) {
		t.Fatalf("master has %d audio renditions, want %d:\n%s", len(media), len(wantMedia), master)
	}
	for k, w := range wantMedia {
		if !strings.HasSuffix(media[k], w) || !strings.Contains(media[k], `GROUP-ID="audio"`) {
			t.Errorf("audio rendition %d is %q, want …%s", k, media[k], w)
		}
		if _, err := os.Stat(filepath.Join(out, "media_"+itoa(k+1)+".m3u8")); err != nil {
			t.Errorf("audio playlist %d: %v", k, err)
		}
	}
	if !regexp.MustCompile(`#EXT-X-STREAM-INF:.*CODECS="avc1\.[0-9a-f]{6},mp4a\.40\.2".*AUDIO="audio"\nmedia_0\.m3u8`).Match(master) {
		t.Errorf("variant does not name the video and audio codecs and the audio group:\n%s", master)
	}

	var mpd struct {
		Sets []struct {
			ContentType string `xml:"contentType,attr"`
			Lang        string `xml:"lang,attr"`
			Reps        []struct {
				Channels struct {
					Value string `xml:"value,attr"`
				} `xml:"AudioChannelConfiguration"`
			} `xml:"Representation"`
		} `xml:"Period>AdaptationSet"`
	}
	b, err := os.ReadFile(filepath.Join(out, res.DASH))
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(b, &mpd); err != nil {
		t.Fatal(err)
	}
	var sets []string
	for _, s := range mpd.Sets {
		if s.ContentType == "audio" && len(s.Reps) == 1 {
			sets = append(sets, s.Lang+"/"+s.Reps[0].Channels.Value)
		}
	}
	if got := strings.Join(sets, " "); got != "fr/2 en/2 en/2 en/6" {
		t.Errorf("DASH audio sets %q, want fr/2 en/2 en/2 en/6:\n%s", got, b)
	}

	for name, rel := range res.MP4 {
		if got := describe(audioStreamsOf(t, filepath.Join(out, rel))); got != want {
			t.Errorf("MP4 %s carries %q, want %q", name, got, want)
		}
	}
}

// TestAudioChoiceEncodes checks that "first" and [1] make one track of the
// stream they name, and that an ordinal the source lacks is refused before
// any encode.
func TestAudioChoiceEncodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tr := newTestTranscoder(t)
	dir := t.TempDir()
	src := genMultiAudio(t, dir)
	p, err := tr.Probe(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		c    AudioChoice
		want string
	}{
		{"first", AudioChoice{First: true}, "eng/English/2/default"},
		{"second", AudioChoice{Streams: []int{1}}, "fra/Français/2/default"},
	} {
		sel, err := p.SelectAudio(tc.c)
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, tc.name+".m4a")
		if err := tr.EncodeAudio(ctx, src, &sel, p.Video.Duration, out); err != nil {
			t.Fatal(err)
		}
		if got := describe(audioStreamsOf(t, out)); got != tc.want {
			t.Errorf("%s: tracks %q, want %q", tc.name, got, tc.want)
		}
	}
	opts, err := ParseOptions([]byte(`{"audio":[3]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Plan(p, opts); err == nil || !strings.Contains(err.Error(), "audio stream 3 does not exist: the source has 3 audio streams") {
		t.Errorf("Plan with a missing audio stream: %v", err)
	}
}
