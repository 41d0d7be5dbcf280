package transcoder

import (
	"fmt"
	"slices"
	"strings"
)

// Master is an HLS master playlist: the video variants and the renditions
// every variant refers to by group (audio tracks, subtitle tracks).
type Master struct {
	Variants  []Variant
	Audio     []AudioVariant    // GROUP-ID "audio"; none = video only
	Subtitles []SubtitleVariant // GROUP-ID "subs"
}

// Variant is one video rendition of an HLS master playlist.
type Variant struct {
	Rendition Rendition // its size and name
	Codecs    string    // RFC 6381, e.g. avc1.64001f
	Bandwidth int64     // peak bits/s of the video alone
	FrameRate float64   // 0 = not stated
	URI       string    // of its media playlist
	// VideoRange is HLS's VIDEO-RANGE: "SDR", "PQ" or "HLG" ("" = not
	// stated, which players read as SDR).
	VideoRange string
}

// AudioVariant is one audio rendition of the master's audio group.
type AudioVariant struct {
	Codecs    string // e.g. mp4a.40.2
	Bandwidth int64
	URI       string
	Name      string // NAME; "" = "audio"
	Language  string // LANGUAGE (BCP 47); "" = not stated
	Channels  int    // CHANNELS; 0 = not stated
	Default   bool   // DEFAULT=YES (one per group)
}

// SubtitleVariant is one subtitle track of the master's subtitle group.
type SubtitleVariant struct {
	URI      string
	Name     string
	Language string
	Default  bool
	Forced   bool
}

// MasterPlaylist writes an HLS master playlist. The final package and the
// live view of a job that is still transcoding both write theirs here, so
// that they say the same. A variant's BANDWIDTH adds the largest audio
// rendition's and its CODECS the audio codecs of the group.
func MasterPlaylist(m Master) []byte {
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	var audioBW int64
	var audioCodecs []string
	for i, a := range m.Audio {
		name := a.Name
		if name == "" {
			name = "audio"
			if i > 0 {
				name = fmt.Sprintf("audio %d", i+1)
			}
		}
		fmt.Fprintf(&b, "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"%s\"", quoteAttr(name))
		if a.Language != "" {
			fmt.Fprintf(&b, ",LANGUAGE=\"%s\"", quoteAttr(a.Language))
		}
		fmt.Fprintf(&b, ",DEFAULT=%s,AUTOSELECT=YES", yesNo(a.Default))
		if a.Channels > 0 {
			fmt.Fprintf(&b, ",CHANNELS=\"%d\"", a.Channels)
		}
		fmt.Fprintf(&b, ",URI=\"%s\"\n", a.URI)
		audioBW = max(audioBW, a.Bandwidth)
		for _, c := range strings.Split(a.Codecs, ",") {
			if c != "" && !slices.Contains(audioCodecs, c) {
				audioCodecs = append(audioCodecs, c)
			}
		}
	}
	for _, s := range m.Subtitles {
		fmt.Fprintf(&b, "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"%s\"", quoteAttr(s.Name))
		if s.Language != "" {
			fmt.Fprintf(&b, ",LANGUAGE=\"%s\"", quoteAttr(s.Language))
		}
		fmt.Fprintf(&b, ",DEFAULT=%s,AUTOSELECT=YES,FORCED=%s,URI=\"%s\"\n", yesNo(s.Default), yesNo(s.Forced), s.URI)
	}
	for _, v := range m.Variants {
		codecs := strings.Join(append([]string{v.Codecs}, audioCodecs...), ",")
		fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d,RESOLUTION=%dx%d,CODECS=\"%s\"", v.Bandwidth+audioBW, v.Rendition.Width, v.Rendition.Height, codecs)
		if v.FrameRate > 0 {
			fmt.Fprintf(&b, ",FRAME-RATE=%.3f", v.FrameRate)
		}
		if v.VideoRange != "" {
			b.WriteString(",VIDEO-RANGE=" + v.VideoRange)
		}
		if len(m.Audio) > 0 {
			b.WriteString(",AUDIO=\"audio\"")
		}
		if len(m.Subtitles) > 0 {
			b.WriteString(",SUBTITLES=\"subs\"")
		}
		fmt.Fprintf(&b, "\n%s\n", v.URI)
	}
	return []byte(b.String())
}

func yesNo(b bool) string {
	if b {
		return "YES"
	}
	return "NO"
}

// quoteAttr makes s safe inside a quoted HLS attribute: no quote, no line
// break, no control character.
func quoteAttr(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '"' || r < 0x20 || r == 0x7f {
			return '\''
		}
		return r
	}, s)
}
