package cluster

import "github.com/gosty/gosty/transcoder"

// The log's own copies of the media facts a job carries. The replicated log
// and its snapshots outlive any one build, so their JSON must not change
// when the transcoder's structs do: these types are declared here, with the
// tags every log since the first release has used, and converted field by
// field at the boundary (ProbeOf, Probe.Transcoder, ...). A field is only
// ever added, never renamed or removed.

// JobOptions are the per-job choices of a user (transcoder.Options).
type JobOptions struct {
	Codec        string   `json:"codec,omitempty"`
	Renditions   []string `json:"renditions,omitempty"`
	ChunkSeconds float64  `json:"chunk_seconds,omitempty"`
	Preset       string   `json:"preset,omitempty"`
	RateControl  string   `json:"rate_control,omitempty"`
	DynamicRange string   `json:"dynamic_range,omitempty"`
	// Audio is "first" or "" (every audio stream, or AudioStreams when
	// set): transcoder.AudioChoice.
	Audio        string `json:"audio,omitempty"`
	AudioStreams []int  `json:"audio_streams,omitempty"`
}

// Probe is what probing the source found (transcoder.Probe).
type Probe struct {
	Format   string       `json:"format"`
	Duration float64      `json:"duration"`
	Size     int64        `json:"size"`
	BitRate  int64        `json:"bit_rate,omitempty"`
	Video    *VideoStream `json:"video,omitempty"`
	Audio    *AudioStream `json:"audio,omitempty"`
	// Subtitles lists the source's subtitle streams (added to version 1;
	// absent in older entries).
	Subtitles []SubtitleStream `json:"subtitles,omitempty"`
	// AudioTracks lists every audio stream kept (Audio is the first)
	// when there are several; one track is Audio alone, as in the logs
	// from before the list.
	AudioTracks  []AudioStream `json:"audio_tracks,omitempty"`
	AudioIgnored int           `json:"audio_ignored,omitempty"`
}

// VideoStream describes the source's video (transcoder.VideoStream).
type VideoStream struct {
	Index     int     `json:"index"`
	Codec     string  `json:"codec"`
	Width     int     `json:"width"`
	Height    int     `json:"height"`
	Rotation  int     `json:"rotation,omitempty"`
	FrameRate float64 `json:"frame_rate"`
	Duration  float64 `json:"duration"`
	StartTime float64 `json:"start_time"`
	PixFmt    string  `json:"pix_fmt,omitempty"`
	BitRate   int64   `json:"bit_rate,omitempty"`

	ColorTransfer  string `json:"color_transfer,omitempty"`
	ColorPrimaries string `json:"color_primaries,omitempty"`
	ColorSpace     string `json:"color_space,omitempty"`

	MasteringDisplay string `json:"mastering_display,omitempty"`
	MaxCLL           int    `json:"max_cll,omitempty"`
	MaxFALL          int    `json:"max_fall,omitempty"`
}

// AudioStream describes the source's audio (transcoder.AudioStream).
type AudioStream struct {
	Index      int     `json:"index"`
	Codec      string  `json:"codec"`
	Channels   int     `json:"channels"`
	SampleRate int     `json:"sample_rate"`
	Duration   float64 `json:"duration"`
	StartTime  float64 `json:"start_time"`
	BitRate    int64   `json:"bit_rate,omitempty"`

	Language      string `json:"language,omitempty"`
	Title         string `json:"title,omitempty"`
	ChannelLayout string `json:"channel_layout,omitempty"`
	Default       bool   `json:"default,omitempty"`
}

// SubtitleStream is one subtitle stream of the source
// (transcoder.SubtitleStream).
type SubtitleStream struct {
	Index    int    `json:"index"`
	Codec    string `json:"codec"`
	Language string `json:"language,omitempty"`
	Title    string `json:"title,omitempty"`
	Default  bool   `json:"default,omitempty"`
	Forced   bool   `json:"forced,omitempty"`
}

// Rendition is one rung of a job's ladder (transcoder.Rendition).
type Rendition struct {
	Name    string `json:"name"`
	Width   int    `json:"width"`
	Height  int    `json:"height"`
	Bitrate int64  `json:"bitrate"`
	Codec   string `json:"codec"`
	Range   string `json:"range,omitempty"` // "pq", "hlg"; "" = SDR
}

// Quality is one rendition's quality report (transcoder.Quality).
type Quality struct {
	SSIM           float64 `json:"ssim"`
	PSNR           float64 `json:"psnr_db"`
	Frames         int     `json:"frames"`
	SampledFrames  int     `json:"sampled_frames"`
	SampledSeconds float64 `json:"sampled_seconds"`
	Bitrate        int64   `json:"bitrate,omitempty"` // average video bits/s as encoded
}

// WindowScore is what one of a job's quality windows scored
// (transcoder.WindowScore): per rendition (Job.Renditions order), sums over
// the window's frames. An encode reports the windows of its chunk
// (TaskResult.Scores); the job keeps the latest score of each (Job.Scores,
// at most transcoder.QualityWindows whatever the job's length) until the
// package task folds them into its Quality.
type WindowScore struct {
	Window     int        `json:"window"`
	Renditions []ScoreSum `json:"renditions"`
}

// ScoreSum is one rendition's sums over a window (transcoder.ScoreSum).
type ScoreSum struct {
	SSIM   float64 `json:"ssim_sum"`
	MSE    float64 `json:"mse_sum"`
	Frames int     `json:"frames"`
}

// ScoresOf converts window scores into the log's shape (nil stays nil).
func ScoresOf(ws []transcoder.WindowScore) []WindowScore {
	if ws == nil {
		return nil
	}
	out := make([]WindowScore, len(ws))
	for i, w := range ws {
		out[i] = WindowScore{Window: w.Window, Renditions: make([]ScoreSum, len(w.Renditions))}
		for k, r := range w.Renditions {
			out[i].Renditions[k] = ScoreSum{SSIM: r.SSIM, MSE: r.MSE, Frames: r.Frames}
		}
	}
	return out
}

// TranscoderScores converts back.
func TranscoderScores(ws []WindowScore) []transcoder.WindowScore {
	out := make([]transcoder.WindowScore, len(ws))
	for i, w := range ws {
		out[i] = transcoder.WindowScore{Window: w.Window, Renditions: make([]transcoder.ScoreSum, len(w.Renditions))}
		for k, r := range w.Renditions {
			out[i].Renditions[k] = transcoder.ScoreSum{SSIM: r.SSIM, MSE: r.MSE, Frames: r.Frames}
		}
	}
	return out
}

// OptionsOf converts the transcoder's options into the log's.
func OptionsOf(o transcoder.Options) JobOptions {
	out := JobOptions{Codec: o.Codec, Renditions: cloneSlice(o.Renditions), ChunkSeconds: o.ChunkSeconds, Preset: o.Preset, RateControl: o.RateControl,
		DynamicRange: o.DynamicRange}
	out.Audio, out.AudioStreams = audioChoiceOf(o.Audio)
	return out
}

// Transcoder converts back.
func (o JobOptions) Transcoder() transcoder.Options {
	return transcoder.Options{Codec: o.Codec, Renditions: cloneSlice(o.Renditions), ChunkSeconds: o.ChunkSeconds, Preset: o.Preset, RateControl: o.RateControl,
		DynamicRange: o.DynamicRange, Audio: transcoder.AudioChoice{First: o.Audio == "first", Streams: cloneSlice(o.AudioStreams)}}
}

// ProbeOf converts a probe into the log's shape.
func ProbeOf(p transcoder.Probe) Probe {
	out := Probe{Format: p.Format, Duration: p.Duration, Size: p.Size, BitRate: p.BitRate}
	for _, s := range p.Subtitles {
		out.Subtitles = append(out.Subtitles, SubtitleStream{Index: s.Index, Codec: s.Codec, Language: s.Language,
			Title: s.Title, Default: s.Default, Forced: s.Forced})
	}
	if v := p.Video; v != nil {
		out.Video = &VideoStream{Index: v.Index, Codec: v.Codec, Width: v.Width, Height: v.Height, Rotation: v.Rotation,
			FrameRate: v.FrameRate, Duration: v.Duration, StartTime: v.StartTime, PixFmt: v.PixFmt, BitRate: v.BitRate,
			ColorTransfer: v.ColorTransfer, ColorPrimaries: v.ColorPrimaries, ColorSpace: v.ColorSpace,
			MasteringDisplay: v.MasteringDisplay, MaxCLL: v.MaxCLL, MaxFALL: v.MaxFALL}
	}
	if a := p.Audio; a != nil {
		s := audioStreamOf(*a)
		out.Audio = &s
	}
	out.AudioTracks, out.AudioIgnored = audioTracksOf(p), p.AudioIgnored
	return out
}

// Transcoder converts back.
func (p Probe) Transcoder() transcoder.Probe {
	out := transcoder.Probe{Format: p.Format, Duration: p.Duration, Size: p.Size, BitRate: p.BitRate}
	for _, s := range p.Subtitles {
		out.Subtitles = append(out.Subtitles, transcoder.SubtitleStream{Index: s.Index, Codec: s.Codec, Language: s.Language,
			Title: s.Title, Default: s.Default, Forced: s.Forced})
	}
	if v := p.Video; v != nil {
		out.Video = &transcoder.VideoStream{Index: v.Index, Codec: v.Codec, Width: v.Width, Height: v.Height, Rotation: v.Rotation,
			FrameRate: v.FrameRate, Duration: v.Duration, StartTime: v.StartTime, PixFmt: v.PixFmt, BitRate: v.BitRate,
			ColorTransfer: v.ColorTransfer, ColorPrimaries: v.ColorPrimaries, ColorSpace: v.ColorSpace,
			MasteringDisplay: v.MasteringDisplay, MaxCLL: v.MaxCLL, MaxFALL: v.MaxFALL}
	}
	if a := p.Audio; a != nil {
		s := a.transcoder()
		out.Audio = &s
	}
	out.AudioTracks, out.AudioIgnored = convertSlice(p.AudioTracks, AudioStream.transcoder), p.AudioIgnored
	return out
}

// RenditionsOf converts a ladder into the log's shape.
func RenditionsOf(rs []transcoder.Rendition) []Rendition {
	out := make([]Rendition, len(rs))
	for i, r := range rs {
		out[i] = Rendition{Name: r.Name, Width: r.Width, Height: r.Height, Bitrate: r.Bitrate, Codec: r.Codec, Range: r.Range}
	}
	return out
}

// TranscoderRenditions converts a ladder back.
func TranscoderRenditions(rs []Rendition) []transcoder.Rendition {
	out := make([]transcoder.Rendition, len(rs))
	for i, r := range rs {
		out[i] = transcoder.Rendition{Name: r.Name, Width: r.Width, Height: r.Height, Bitrate: r.Bitrate, Codec: r.Codec, Range: r.Range}
	}
	return out
}

// QualitiesOf converts quality reports into the log's shape (nil stays nil).
func QualitiesOf(qs []transcoder.Quality) []Quality {
	if qs == nil {
		return nil
	}
	out := make([]Quality, len(qs))
	for i, q := range qs {
		out[i] = Quality{SSIM: q.SSIM, PSNR: q.PSNR, Frames: q.Frames, SampledFrames: q.SampledFrames, SampledSeconds: q.SampledSeconds, Bitrate: q.Bitrate}
	}
	return out
}

func cloneSlice[T any](s []T) []T {
	if s == nil {
		return nil
	}
	return append([]T(nil), s...)
}
