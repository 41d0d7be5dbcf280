package cluster

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/gosty/gosty/transcoder"
)

// A job logged before audio tracks existed reads as one track and the
// default choice; a new one keeps its tracks and choice through the log.
func TestLogAudioTracks(t *testing.T) {
	var old struct {
		Options JobOptions `json:"options"`
		Source  Probe      `json:"source"`
	}
	raw := `{"options":{"codec":"h264"},"source":{"format":"mov","duration":2,"size":1,"video":{"index":0,"codec":"h264","width":2,"height":2,"frame_rate":25,"duration":2,"start_time":0},"audio":{"index":1,"codec":"aac","channels":2,"sample_rate":48000,"duration":2,"start_time":0}}}`
	if err := json.Unmarshal([]byte(raw), &old); err != nil {
		t.Fatal(err)
	}
	p := old.Source.Transcoder()
	if tr := p.Tracks(); len(tr) != 1 || tr[0].Index != 1 || tr[0].Channels != 2 {
		t.Errorf("old probe's tracks %+v", tr)
	}
	if o := old.Options.Transcoder(); !o.Audio.IsZero() {
		t.Errorf("old options' audio %+v, want all", o.Audio)
	}
	if sel, err := p.SelectAudio(old.Options.Transcoder().Audio); err != nil || len(sel.Tracks()) != 1 {
		t.Errorf("old job selects %+v, %v", sel.Tracks(), err)
	}

	tracks := []transcoder.AudioStream{
		{Index: 1, Codec: "aac", Channels: 2, Language: "eng", ChannelLayout: "stereo"},
		{Index: 2, Codec: "ac3", Channels: 6, Language: "fra", Title: "VF", ChannelLayout: "5.1(side)", Default: true},
	}
	np := transcoder.Probe{Format: "matroska", Audio: &tracks[0], AudioTracks: tracks, AudioIgnored: 3}
	b, err := json.Marshal(ProbeOf(np))
	if err != nil {
		t.Fatal(err)
	}
	var back Probe
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if got := back.Transcoder(); !reflect.DeepEqual(got, np) {
		t.Errorf("probe through the log\n%+v\nwant\n%+v", got, np)
	}
	for _, c := range []transcoder.AudioChoice{{}, {First: true}, {Streams: []int{2, 0}}} {
		if got := OptionsOf(transcoder.Options{Audio: c}).Transcoder().Audio; !reflect.DeepEqual(got, c) {
			t.Errorf("audio choice %+v came back as %+v", c, got)
		}
	}
	if b, _ := json.Marshal(OptionsOf(transcoder.Options{})); string(b) != `{}` {
		t.Errorf("default options log as %s", b)
	}
}

// One audio stream logs as Audio alone and reads back as one track.
func TestLogOneAudioTrack(t *testing.T) {
	a := transcoder.AudioStream{Index: 1, Codec: "aac", Channels: 2, Language: "eng"}
	p := ProbeOf(transcoder.Probe{Audio: &a, AudioTracks: []transcoder.AudioStream{a}})
	if p.AudioTracks != nil || p.Audio == nil || p.Audio.Language != "eng" {
		t.Fatalf("one track logged as %+v / %+v", p.Audio, p.AudioTracks)
	}
	back := p.Transcoder()
	if tr := back.Tracks(); len(tr) != 1 || tr[0] != a {
		t.Errorf("read back as %+v", tr)
	}
}
