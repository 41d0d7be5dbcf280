package httpapi

import (
	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/transcoder"
)

// liveAudio names the live view's audio rendition. The live view plays the
// audio blob's first track only (transcoder.Fragment remuxes one track):
// EncodeAudio puts the job's default track there, so it is named, tagged
// and counted as the final master's default rendition is. The other
// tracks appear once the job is packaged.
func liveAudio(j cluster.Job, v transcoder.AudioVariant) transcoder.AudioVariant {
	p, err := j.Source.Transcoder().SelectAudio(j.Options.Transcoder().Audio)
	if err != nil {
		return v
	}
	if ts := transcoder.PlanAudioTracks(p.Tracks()); len(ts) > 0 {
		v.Name, v.Language, v.Channels = ts[0].Name, transcoder.LanguageBCP47(ts[0].Language), ts[0].Channels
	}
	return v
}
