package cluster

import "github.com/gosty/gosty/transcoder"

// The audio parts of the log's media types (logtypes.go), converted
// field by field like the rest.

func audioStreamOf(a transcoder.AudioStream) AudioStream {
	return AudioStream{Index: a.Index, Codec: a.Codec, Channels: a.Channels, SampleRate: a.SampleRate,
		Duration: a.Duration, StartTime: a.StartTime, BitRate: a.BitRate,
		Language: a.Language, Title: a.Title, ChannelLayout: a.ChannelLayout, Default: a.Default}
}

func (a AudioStream) transcoder() transcoder.AudioStream {
	return transcoder.AudioStream{Index: a.Index, Codec: a.Codec, Channels: a.Channels, SampleRate: a.SampleRate,
		Duration: a.Duration, StartTime: a.StartTime, BitRate: a.BitRate,
		Language: a.Language, Title: a.Title, ChannelLayout: a.ChannelLayout, Default: a.Default}
}

// audioTracksOf is the probe's track list for the log: none when the one
// track is Audio (the shape older logs have, and a few hundred bytes less
// for every finished job the state keeps).
func audioTracksOf(p transcoder.Probe) []AudioStream {
	if len(p.AudioTracks) == 1 && p.Audio != nil && *p.Audio == p.AudioTracks[0] {
		return nil
	}
	return convertSlice(p.AudioTracks, audioStreamOf)
}

// audioChoiceOf is a job's audio option in the log's two fields.
func audioChoiceOf(c transcoder.AudioChoice) (string, []int) {
	if c.First {
		return "first", nil
	}
	return "", cloneSlice(c.Streams)
}

// convertSlice maps every element (nil stays nil).
func convertSlice[T, U any](s []T, f func(T) U) []U {
	if s == nil {
		return nil
	}
	out := make([]U, len(s))
	for i, x := range s {
		out[i] = f(x)
	}
	return out
}
