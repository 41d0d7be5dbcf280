package transcoder

// probejson.go reads ffprobe's JSON into a Probe: which streams are kept and
// how each is read. probe.go runs ffprobe and holds the limits.

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

type ffprobeOut struct {
	Streams []ffprobeStream `json:"streams"`
	Format  struct {
		FormatName string `json:"format_name"`
		Duration   string `json:"duration"`
		Size       string `json:"size"`
		BitRate    string `json:"bit_rate"`
		StartTime  string `json:"start_time"`
	} `json:"format"`
}

// ffprobeStream is one entry of ffprobe's "streams" list.
type ffprobeStream struct {
	Index        int               `json:"index"`
	CodecName    string            `json:"codec_name"`
	CodecType    string            `json:"codec_type"`
	Width        int               `json:"width"`
	Height       int               `json:"height"`
	PixFmt       string            `json:"pix_fmt"`
	ColorTrc     string            `json:"color_transfer"`
	ColorPrim    string            `json:"color_primaries"`
	ColorSpace   string            `json:"color_space"`
	AvgFrameRate string            `json:"avg_frame_rate"`
	RFrameRate   string            `json:"r_frame_rate"`
	Duration     string            `json:"duration"`
	StartTime    string            `json:"start_time"`
	BitRate      string            `json:"bit_rate"`
	Channels     int               `json:"channels"`
	ChanLayout   string            `json:"channel_layout"`
	SampleRate   string            `json:"sample_rate"`
	Disposition  map[string]int    `json:"disposition"`
	Tags         map[string]string `json:"tags"`
	SideData     []struct {
		Type     string  `json:"side_data_type"`
		Rotation float64 `json:"rotation"`
	} `json:"side_data_list"`
}

// parseProbe turns ffprobe's JSON into a Probe and applies the limits. Only
// the first video stream that is not a cover picture and the first
// MaxAudioTracks audio streams are kept; every other stream (subtitles, data,
// attachments such as fonts) is ignored and never mapped by any later
// ffmpeg, but counts against maxStreams.
func parseProbe(js []byte) (*Probe, error) {
	var f ffprobeOut
	if err := json.Unmarshal(js, &f); err != nil {
		return nil, fmt.Errorf("probe: decode ffprobe json: %w", err)
	}
	if !formatAllowed(f.Format.FormatName) {
		return nil, &MediaError{Reason: fmt.Sprintf("container format %q is not supported", f.Format.FormatName)}
	}
	if len(f.Streams) > maxStreams {
		return nil, &MediaError{Reason: fmt.Sprintf("the file has %d streams; at most %d are accepted", len(f.Streams), maxStreams)}
	}
	p := &Probe{
		Format:   f.Format.FormatName,
		Duration: containerDuration(f.Format.FormatName, parseF(f.Format.Duration), parseF(f.Format.StartTime)),
		Size:     parseCount(f.Format.Size),
		BitRate:  parseCount(f.Format.BitRate),
	}
	videoAt := pickVideo(f.Streams)
	for i, s := range f.Streams {
		switch {
		case s.CodecType == "subtitle": // subtitles.go
			p.Subtitles = append(p.Subtitles, subtitleStreamOf(s.Index, s.CodecName, s.Tags, s.Disposition))
		case i == videoAt:
			p.Video = videoStreamOf(s, p.Duration)
		case s.CodecType == "audio":
			p.addAudio(audioStreamOf(s)) // audiotracks.go: up to MaxAudioTracks, cleaned
		}
	}
	if err := checkLimits(p); err != nil {
		return nil, err
	}
	if p.Duration <= 0 {
		p.Duration = p.Video.Duration
	}
	return p, nil
}

// pickVideo is the index in streams of the video: the first video stream
// that is neither a cover picture nor a still-image track (a PNG "track"
// muxed before the real one), or failing that the first that is not a
// cover; -1 if there is none.
func pickVideo(streams []ffprobeStream) int {
	videoAt := -1
	for i, s := range streams {
		if s.CodecType != "video" || s.Disposition["attached_pic"] != 0 {
			continue
		}
		if !stillImageCodecs[s.CodecName] {
			videoAt = i
			break
		}
		if videoAt < 0 {
			videoAt = i
		}
	}
	return videoAt
}

// videoStreamOf reads the chosen video stream. Width and height are those
// of display (swapped for a quarter turn); a stream without a duration of
// its own takes the container's.
func videoStreamOf(s ffprobeStream, containerDur float64) *VideoStream {
	v := &VideoStream{
		Index:     s.Index,
		Codec:     s.CodecName,
		Width:     s.Width,
		Height:    s.Height,
		FrameRate: parseRate(s.AvgFrameRate),
		Duration:  parseF(s.Duration),
		StartTime: parseF(s.StartTime),
		PixFmt:    s.PixFmt,
		BitRate:   parseCount(s.BitRate),

		ColorTransfer:  colorName(s.ColorTrc),
		ColorPrimaries: colorName(s.ColorPrim),
		ColorSpace:     colorName(s.ColorSpace),
	}
	if v.FrameRate <= 0 {
		v.FrameRate = parseRate(s.RFrameRate)
	}
	v.Rotation = normRotation(streamRotation(s))
	if v.Rotation == 90 || v.Rotation == 270 {
		v.Width, v.Height = v.Height, v.Width
	}
	if v.Duration <= 0 {
		v.Duration = containerDur
	}
	return v
}

// streamRotation is the clockwise turn a stream needs for display, from its
// display matrix or else the legacy "rotate" tag; 0 if it states neither.
func streamRotation(s ffprobeStream) float64 {
	rot, found := 0.0, false
	for _, sd := range s.SideData {
		if sd.Type == "Display Matrix" {
			// ffprobe reports the matrix's counter-clockwise angle;
			// we store the clockwise turn needed for display, the
			// way ffmpeg's own autorotate reads it.
			rot, found = -sd.Rotation, true
		}
	}
	if !found {
		if r, err := strconv.ParseFloat(s.Tags["rotate"], 64); err == nil {
			rot = r // the legacy tag is already clockwise
		}
	}
	return rot
}

// audioStreamOf reads one audio stream as ffprobe states it; addAudio
// cleans it.
func audioStreamOf(s ffprobeStream) AudioStream {
	return AudioStream{
		Index:      s.Index,
		Codec:      s.CodecName,
		Channels:   max(s.Channels, 0),
		SampleRate: int(min(parseCount(s.SampleRate), math.MaxInt32)),
		Duration:   parseF(s.Duration),
		StartTime:  parseF(s.StartTime),
		BitRate:    parseCount(s.BitRate),

		Language:      s.Tags["language"],
		Title:         s.Tags["title"],
		ChannelLayout: s.ChanLayout,
		Default:       s.Disposition["default"] != 0,
	}
}

// containerDuration is the length of a file's media from the container's
// duration. Matroska's Duration (and the DURATION tags ffmpeg writes) is
// the end timestamp, counted from 0 rather than from the first timestamp:
// a file whose media start at 1.5 s and last 4 s says 5.5 s. Its streams
// state no duration of their own, so the video's would be taken as 5.5 s
// and the file refused as truncated.
func containerDuration(format string, dur, start float64) float64 {
	if strings.Contains(format, "matroska") && start > 0 && dur > start {
		return dur - start
	}
	return dur
}

// stillImageCodecs are codecs of single pictures that containers may carry
// as a video track.
var stillImageCodecs = map[string]bool{"png": true, "bmp": true, "tiff": true, "webp": true, "gif": true}
