package transcoder

import "time"

// Probe holds the facts about a source that planning and verification need.
// It is stored in the job log, so fields are only ever added.
type Probe struct {
	Format   string       `json:"format"`             // ffprobe format_name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
	Duration float64      `json:"duration"`           // seconds, of the whole file
	Size     int64        `json:"size"`               // bytes
	BitRate  int64        `json:"bit_rate,omitempty"` // bits/s, container
	Video    *VideoStream `json:"video,omitempty"`
	Audio    *AudioStream `json:"audio,omitempty"`
	// Subtitles lists every subtitle stream (subtitles.go).
	Subtitles []SubtitleStream `json:"subtitles,omitempty"`
	// AudioTracks lists every audio stream kept (at most MaxAudioTracks,
	// the first of them is Audio); nil in probes older than the list,
	// which Tracks reads as the one track Audio.
	AudioTracks  []AudioStream `json:"audio_tracks,omitempty"`
	AudioIgnored int           `json:"audio_ignored,omitempty"` // audio streams beyond MaxAudioTracks or without a decoder
}

// VideoStream describes the first video stream. Width and Height are the
// displayed size: a rotation of ±90° has already been applied.
type VideoStream struct {
	Index     int     `json:"index"`
	Codec     string  `json:"codec"`
	Width     int     `json:"width"`
	Height    int     `json:"height"`
	Rotation  int     `json:"rotation,omitempty"` // degrees the display matrix rotates by (0, 90, 180, 270)
	FrameRate float64 `json:"frame_rate"`         // average frames/s
	Duration  float64 `json:"duration"`           // seconds
	StartTime float64 `json:"start_time"`
	PixFmt    string  `json:"pix_fmt,omitempty"`
	BitRate   int64   `json:"bit_rate,omitempty"`
	// ColorTransfer, ColorPrimaries and ColorSpace are ffprobe's names
	// ("smpte2084", "bt2020", "bt2020nc"; "" when untagged).
	ColorTransfer  string `json:"color_transfer,omitempty"`
	ColorPrimaries string `json:"color_primaries,omitempty"`
	ColorSpace     string `json:"color_space,omitempty"`
	// HDR10 static metadata (hdr.go): MasteringDisplay in x265's syntax
	// and units, MaxCLL and MaxFALL in cd/m²; empty or 0 when absent.
	MasteringDisplay string `json:"mastering_display,omitempty"`
	MaxCLL           int    `json:"max_cll,omitempty"`
	MaxFALL          int    `json:"max_fall,omitempty"`
}

// Dynamic ranges a source may have (VideoStream.DynamicRange).
const (
	RangeSDR = "sdr"
	RangePQ  = "pq"  // HDR10 and its kin: SMPTE ST 2084
	RangeHLG = "hlg" // ARIB STD-B67
)

// DynamicRange tells HDR sources from SDR ones by their transfer function.
func (v *VideoStream) DynamicRange() string { return RangeOf(v.ColorTransfer) }

// RangeOf is the dynamic range of a transfer function by ffprobe's name.
func RangeOf(transfer string) string {
	switch transfer {
	case "smpte2084":
		return RangePQ
	case "arib-std-b67":
		return RangeHLG
	}
	return RangeSDR
}

// AudioStream describes one audio stream.
type AudioStream struct {
	Index      int     `json:"index"`
	Codec      string  `json:"codec"`
	Channels   int     `json:"channels"`
	SampleRate int     `json:"sample_rate"`
	Duration   float64 `json:"duration"`
	StartTime  float64 `json:"start_time"`
	BitRate    int64   `json:"bit_rate,omitempty"`
	// Language is the stream's language tag as the file has it (ISO
	// 639-2 mostly, "" or "und" when unknown), Title its title tag,
	// both cleaned (audiotracks.go); ChannelLayout is ffprobe's name
	// ("stereo", "5.1(side)"); Default its default disposition.
	Language      string `json:"language,omitempty"`
	Title         string `json:"title,omitempty"`
	ChannelLayout string `json:"channel_layout,omitempty"`
	Default       bool   `json:"default,omitempty"`
}

// Options are the per-job choices a user may make (the `options` JSON field
// of an upload). The zero value means "the defaults".
type Options struct {
	Codec        string   `json:"codec,omitempty"`         // "h264" (default), "hevc" or "av1"
	Renditions   []string `json:"renditions,omitempty"`    // e.g. ["1080p","720p"] or ["720p@2500k"]; empty = default ladder
	ChunkSeconds float64  `json:"chunk_seconds,omitempty"` // target chunk duration; 0 = DefaultChunkSeconds
	// Preset is the speed/quality preset by its x264 name; x265 takes the
	// same names and SVT-AV1 gets a mapped number (svtAV1Presets). Every
	// chunk of a job must use the same one (it shapes the stream headers),
	// so it is fixed at submit.
	Preset string `json:"preset,omitempty"`
	// RateControl is how each rung spends its rate: RateABR (the default)
	// aims at it; RateCappedCRF encodes at a constant quality with the rate
	// as a ceiling, so easy content takes fewer bytes. Fixed at submit, like
	// Preset.
	RateControl string `json:"rate_control,omitempty"`
	// DynamicRange is what becomes of an HDR source (hdr.go): "" or
	// "auto" keeps HDR where the codec can, "sdr" tone-maps every rung,
	// "both" adds an SDR h264 ladder beside the HDR one.
	DynamicRange string `json:"dynamic_range,omitempty"`
	// Audio is which audio streams the job keeps: "all" (the zero
	// value), "first" or a list of ordinals among the audio streams.
	Audio AudioChoice `json:"audio,omitzero"`
}

// Rate control modes (Options.RateControl; "" is RateABR).
const (
	RateABR       = "abr"
	RateCappedCRF = "capped_crf"
)

// Rendition is one rung of the output ladder.
type Rendition struct {
	Name    string `json:"name"`    // "720p"
	Width   int    `json:"width"`   // even
	Height  int    `json:"height"`  // even
	Bitrate int64  `json:"bitrate"` // video bits/s
	Codec   string `json:"codec"`   // "h264", "hevc" or "av1"
	// Range is RangePQ or RangeHLG for a rung that keeps the source's HDR
	// (10-bit BT.2020); "" is SDR (tone-mapped from an HDR source).
	Range string `json:"range,omitempty"`
}

// Chunk is one piece of the source video produced by Split: a stream copy
// that starts on a source keyframe, with its timestamps reset to zero.
type Chunk struct {
	Index    int     `json:"index"`
	Start    float64 `json:"start"`    // seconds from the start of the source video
	Duration float64 `json:"duration"` // seconds
	Frames   int     `json:"frames"`   // video frames in the chunk
	Path     string  `json:"-"`        // local file written by Split
}

// Defaults that the plan and the encoders use.
const (
	DefaultChunkSeconds   = 6.0
	MinChunkSeconds       = 2.0
	MaxChunkSeconds       = 12.0 // keyframes further apart than this force a re-key pass
	DefaultSegmentSeconds = 2.0  // HLS/DASH segment length and GOP length
	DefaultAudioBitrate   = 128_000
	SurroundAudioBitrate  = 384_000 // the 5.1 rendition of a surround track
	MaxAudioTracks        = 8       // audio streams of a source kept; more are ignored
	DefaultCodec          = "h264"
)

// EncodeSettings fix everything about a chunk encode that must be identical
// across chunks of one job so that the chunks stitch.
type EncodeSettings struct {
	// Thumbs asks for storyboard frames and the poster (thumbs.go).
	Thumbs ThumbSettings

	Renditions     []Rendition
	FrameRate      float64 // source average frame rate; sets the GOP length
	Rotation       int     // from Probe.Video.Rotation
	SegmentSeconds float64 // keyframe grid
	Preset         string  // x264 preset name (mapped for other codecs); "" = "veryfast"
	RateControl    string  // RateABR ("") or RateCappedCRF
	// ToneMap is an HDR source's range (RangePQ or RangeHLG): its SDR
	// rungs (Rendition.Range "") are tone-mapped to BT.709, its HDR rungs
	// keep it. "" or RangeSDR leaves every rung as is.
	ToneMap string
	// HDR10 is the source's static metadata, written into HDR rungs.
	HDR10 HDR10
}

// Progress is called with the fraction (0..1) of a long ffmpeg run done.
type Progress func(done float64)

// Timeout bounds used when a caller gives none.
const DefaultStepTimeout = 2 * time.Hour
