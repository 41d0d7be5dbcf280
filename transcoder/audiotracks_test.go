package transcoder

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestParseAudioOption(t *testing.T) {
	cases := []struct {
		raw     string
		want    AudioChoice
		wantErr string
	}{
		{`{}`, AudioChoice{}, ""},
		{`{"audio":"all"}`, AudioChoice{}, ""},
		{`{"audio":"first"}`, AudioChoice{First: true}, ""},
		{`{"audio":[1]}`, AudioChoice{Streams: []int{1}}, ""},
		{`{"audio":[2,0]}`, AudioChoice{Streams: []int{2, 0}}, ""},
		{`{"audio":"second"}`, AudioChoice{}, `unknown choice "second"`},
		{`{"audio":[]}`, AudioChoice{}, "selects no audio stream"},
		{`{"audio":[0,0]}`, AudioChoice{}, "listed twice"},
		{`{"audio":[-1]}`, AudioChoice{}, "audio stream -1"},
		{`{"audio":[8]}`, AudioChoice{}, "at most the first 8"},
		{`{"audio":[0.5]}`, AudioChoice{}, "list of audio stream ordinals"},
		{`{"audio":3}`, AudioChoice{}, "list of audio stream ordinals"},
		{`{"audio":null}`, AudioChoice{}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.raw, func(t *testing.T) {
			o, err := ParseOptions([]byte(tc.raw))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(o.Audio, tc.want) {
				t.Fatalf("audio %+v, want %+v", o.Audio, tc.want)
			}
			// What the job JSON shows reads back the same.
			b, err := json.Marshal(o)
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParseOptions(b)
			if err != nil || !reflect.DeepEqual(back.Audio, o.Audio) {
				t.Fatalf("round trip %s: %+v (%v)", b, back.Audio, err)
			}
			if o.Audio.IsZero() && strings.Contains(string(b), "audio") {
				t.Errorf("the default is written: %s", b)
			}
		})
	}
}

// probeJSON is ffprobe's output for a video and the given audio streams.
func probeJSON(audio ...string) []byte {
	streams := []string{`{"index":0,"codec_type":"video","codec_name":"h264","width":160,"height":90,"avg_frame_rate":"25/1","duration":"2"}`}
	for i, a := range audio {
		streams = append(streams, fmt.Sprintf(`{"index":%d,"codec_type":"audio","codec_name":"aac","sample_rate":"48000",%s}`, i+1, a))
	}
	return []byte(`{"format":{"format_name":"matroska,webm","duration":"2"},"streams":[` + strings.Join(streams, ",") + `]}`)
}

func TestParseProbeAudioTracks(t *testing.T) {
	p, err := parseProbe(probeJSON(
		`"channels":2,"channel_layout":"stereo","tags":{"language":"eng"},"disposition":{"default":0}`,
		`"channels":2,"tags":{"language":"FRE","title":"Français\ncommentary"},"disposition":{"default":1}`,
		`"channels":6,"channel_layout":"5.1(side)","tags":{"language":"english!","title":"`+strings.Repeat("x", 100)+`"}`,
		`"channels":1,"tags":{"language":"und"}`,
	))
	if err != nil {
		t.Fatal(err)
	}
	want := []AudioStream{
		{Index: 1, Codec: "aac", Channels: 2, SampleRate: 48000, Duration: 2, Language: "eng", ChannelLayout: "stereo"},
		{Index: 2, Codec: "aac", Channels: 2, SampleRate: 48000, Duration: 2, Language: "fre", Title: "Français commentary", Default: true},
		{Index: 3, Codec: "aac", Channels: 6, SampleRate: 48000, Duration: 2, ChannelLayout: "5.1(side)", Title: strings.Repeat("x", maxTitleRunes)},
		{Index: 4, Codec: "aac", Channels: 1, SampleRate: 48000, Duration: 2},
	}
	if !reflect.DeepEqual(p.AudioTracks, want) {
		t.Fatalf("tracks\n%+v\nwant\n%+v", p.AudioTracks, want)
	}
	if p.Audio == nil || !reflect.DeepEqual(*p.Audio, want[0]) {
		t.Errorf("Audio %+v, want the first track", p.Audio)
	}

	// Beyond the cap, streams are ignored and counted.
	var many []string
	for range MaxAudioTracks + 2 {
		many = append(many, `"channels":2`)
	}
	p, err = parseProbe(probeJSON(many...))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.AudioTracks) != MaxAudioTracks || p.AudioIgnored != 2 {
		t.Errorf("%d tracks, %d ignored; want %d and 2", len(p.AudioTracks), p.AudioIgnored, MaxAudioTracks)
	}

	// A probe from before the list (the log of an older release) is one track.
	old := Probe{Audio: &AudioStream{Index: 1, Channels: 2}}
	if tr := old.Tracks(); len(tr) != 1 || tr[0].Index != 1 {
		t.Errorf("old probe tracks %+v", tr)
	}
}

func TestSelectAudio(t *testing.T) {
	p, err := parseProbe(probeJSON(`"channels":2`, `"channels":2`, `"channels":6`))
	if err != nil {
		t.Fatal(err)
	}
	indices := func(p Probe) []int {
		var out []int
		for _, a := range p.Tracks() {
			out = append(out, a.Index)
		}
		return out
	}
	for _, tc := range []struct {
		c    AudioChoice
		want []int
	}{
		{AudioChoice{}, []int{1, 2, 3}},
		{AudioChoice{First: true}, []int{1}},
		{AudioChoice{Streams: []int{1}}, []int{2}},
		{AudioChoice{Streams: []int{2, 0}}, []int{3, 1}},
	} {
		got, err := p.SelectAudio(tc.c)
		if err != nil || !reflect.DeepEqual(indices(got), tc.want) || got.Audio.Index != tc.want[0] {
			t.Errorf("%+v: %v (audio %+v), %v; want %v", tc.c, indices(got), got.Audio, err, tc.want)
		}
	}
	if len(p.AudioTracks) != 3 {
		t.Error("selecting changed the probe")
	}
	_, err = p.SelectAudio(AudioChoice{Streams: []int{3}})
	if err == nil || !strings.Contains(err.Error(), "audio stream 3 does not exist: the source has 3 audio streams (0 to 2)") {
		t.Errorf("missing stream: %v", err)
	}
	if _, err := Plan(p, Options{Audio: AudioChoice{Streams: []int{5}}}); err == nil || IsMediaError(err) {
		t.Errorf("Plan accepted a missing audio stream or called it a media error: %v", err)
	}
	silent, _ := parseProbe(probeJSON())
	if _, err := silent.SelectAudio(AudioChoice{Streams: []int{0}}); err == nil || !strings.Contains(err.Error(), "no audio stream") {
		t.Errorf("no audio: %v", err)
	}
	if s, err := silent.SelectAudio(AudioChoice{First: true}); err != nil || len(s.Tracks()) != 0 {
		t.Errorf(`"first" of no audio: %+v, %v`, s.Tracks(), err)
	}
}

func TestPlanAudioTracks(t *testing.T) {
	got := PlanAudioTracks([]AudioStream{
		{Index: 1, Channels: 2, Language: "eng"},
		{Index: 2, Channels: 2, Language: "fra", Title: "Français", Default: true},
		{Index: 3, Channels: 6, Language: "eng"},
		{Index: 4, Channels: 1},
	})
	want := []AudioTrack{
		{Ordinal: 0, Source: 2, Name: "Français", Language: "fra", Channels: 2, Bitrate: DefaultAudioBitrate, Default: true},
		{Ordinal: 1, Source: 1, Name: "English", Language: "eng", Channels: 2, Bitrate: DefaultAudioBitrate},
		{Ordinal: 2, Source: 3, Name: "English (2)", Language: "eng", Channels: 2, Bitrate: DefaultAudioBitrate},
		{Ordinal: 3, Source: 3, Name: "English 5.1", Language: "eng", Channels: 6, Bitrate: SurroundAudioBitrate},
		{Ordinal: 4, Source: 4, Name: "Audio 4", Channels: 1, Bitrate: DefaultAudioBitrate},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("tracks\n%+v\nwant\n%+v", got, want)
	}
	if LanguageBCP47("fre") != "fr" || LanguageBCP47("tlh") != "tlh" || languageMP4("en") != "eng" || languageMP4("") != "und" {
		t.Error("language codes")
	}
}

// A later audio stream without a decoder is ignored, not kept to fail the
// job's audio; the first is kept as it always was.
func TestProbeSkipsUndecodableAudio(t *testing.T) {
	p, err := parseProbe(probeJSON(`"channels":2`, `"codec_name":"","channels":0`))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Tracks()) != 1 || p.AudioIgnored != 1 {
		t.Errorf("tracks %+v, ignored %d", p.Tracks(), p.AudioIgnored)
	}
}
