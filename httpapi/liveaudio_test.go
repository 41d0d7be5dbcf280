package httpapi

import (
	"testing"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/transcoder"
)

// The live view's one audio rendition is the audio blob's first track: the
// job's default stream among those it keeps.
func TestLiveAudioIsTheDefaultTrack(t *testing.T) {
	tracks := []cluster.AudioStream{
		{Index: 1, Channels: 2, Language: "eng"},
		{Index: 2, Channels: 6, Language: "fre", Title: "VF", Default: true},
		{Index: 3, Channels: 1, Language: "deu"},
	}
	j := cluster.Job{Source: cluster.Probe{Audio: &tracks[0], AudioTracks: tracks}}
	base := transcoder.AudioVariant{Codecs: "mp4a.40.2", URI: "media_1.m3u8", Default: true}
	for _, tc := range []struct {
		opts cluster.JobOptions
		want transcoder.AudioVariant
	}{
		{cluster.JobOptions{}, transcoder.AudioVariant{Name: "VF", Language: "fr", Channels: 2}},
		{cluster.JobOptions{Audio: "first"}, transcoder.AudioVariant{Name: "English", Language: "en", Channels: 2}},
		{cluster.JobOptions{AudioStreams: []int{2}}, transcoder.AudioVariant{Name: "German", Language: "de", Channels: 1}},
	} {
		j.Options = tc.opts
		got := liveAudio(j, base)
		tc.want.Codecs, tc.want.URI, tc.want.Default = base.Codecs, base.URI, true
		if got != tc.want {
			t.Errorf("%+v: %+v, want %+v", tc.opts, got, tc.want)
		}
	}
	// A job logged before audio tracks: the one stream, unnamed.
	old := cluster.Job{Source: cluster.Probe{Audio: &cluster.AudioStream{Index: 1, Channels: 2}}}
	if got := liveAudio(old, base); got.Name != "Audio 1" || got.Channels != 2 || got.Language != "" {
		t.Errorf("old job: %+v", got)
	}
}
