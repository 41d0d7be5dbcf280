package transcoder

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"

	"github.com/gosty/gosty/transcoder/confine"
)

// HDR10 is a source's HDR10 static metadata as the encoders take it.
type HDR10 struct {
	// MasteringDisplay is x265's master-display syntax, the units of the
	// HEVC SEI: G(x,y)B(x,y)R(x,y)WP(x,y) in 0.00002, L(max,min) in
	// 0.0001 cd/m². "" = none.
	MasteringDisplay string
	MaxCLL, MaxFALL  int // cd/m²; 0 = none
}

// HDR10 is the stream's static metadata.
func (v *VideoStream) HDR10() HDR10 {
	return HDR10{MasteringDisplay: v.MasteringDisplay, MaxCLL: v.MaxCLL, MaxFALL: v.MaxFALL}
}

var masterDisplayRe = regexp.MustCompile(`^G\((\d+),(\d+)\)B\((\d+),(\d+)\)R\((\d+),(\d+)\)WP\((\d+),(\d+)\)L\((\d+),(\d+)\)$`)

// masterDisplay parses MasteringDisplay into its ten numbers (G, B, R, WP
// as x,y; then max and min luminance), nil unless well-formed and in range.
func masterDisplay(s string) []int64 {
	m := masterDisplayRe.FindStringSubmatch(s)
	if m == nil {
		return nil
	}
	v := make([]int64, 10)
	for i := range v {
		n, err := strconv.ParseInt(m[i+1], 10, 64)
		if err != nil || n < 0 || (i < 8 && n > 50000) {
			return nil
		}
		v[i] = n
	}
	if v[8] <= 0 || v[8] > 100_000_000 || v[9] >= v[8] {
		return nil
	}
	return v
}

// svtMasteringDisplay is MasteringDisplay in SVT-AV1's syntax (the same
// order, chromaticity and cd/m² as decimals).
func svtMasteringDisplay(s string) string {
	v := masterDisplay(s)
	if v == nil {
		return ""
	}
	c := func(n int64) string { return strconv.FormatFloat(float64(n)/50000, 'f', 5, 64) }
	l := func(n int64) string { return strconv.FormatFloat(float64(n)/10000, 'f', 4, 64) }
	return fmt.Sprintf("G(%s,%s)B(%s,%s)R(%s,%s)WP(%s,%s)L(%s,%s)", c(v[0]), c(v[1]), c(v[2]), c(v[3]),
		c(v[4]), c(v[5]), c(v[6]), c(v[7]), l(v[8]), l(v[9]))
}

// sideData is one entry of ffprobe's side_data_list (stream or frame).
type sideData struct {
	Type       string `json:"side_data_type"`
	RedX       string `json:"red_x"`
	RedY       string `json:"red_y"`
	GreenX     string `json:"green_x"`
	GreenY     string `json:"green_y"`
	BlueX      string `json:"blue_x"`
	BlueY      string `json:"blue_y"`
	WhiteX     string `json:"white_point_x"`
	WhiteY     string `json:"white_point_y"`
	MinLum     string `json:"min_luminance"`
	MaxLum     string `json:"max_luminance"`
	MaxContent int    `json:"max_content"`
	MaxAverage int    `json:"max_average"`
}

// applySideData fills v's HDR10 metadata from side data it lacks.
func applySideData(v *VideoStream, list []json.RawMessage) {
	for _, raw := range list {
		var d sideData
		if json.Unmarshal(raw, &d) != nil {
			continue
		}
		switch d.Type {
		case "Mastering display metadata":
			if v.MasteringDisplay != "" {
				continue
			}
			c := func(s string) int64 { return int64(math.Round(parseRate(s) * 50000)) }
			l := func(s string) int64 { return int64(math.Round(parseRate(s) * 10000)) }
			md := fmt.Sprintf("G(%d,%d)B(%d,%d)R(%d,%d)WP(%d,%d)L(%d,%d)", c(d.GreenX), c(d.GreenY), c(d.BlueX), c(d.BlueY),
				c(d.RedX), c(d.RedY), c(d.WhiteX), c(d.WhiteY), l(d.MaxLum), l(d.MinLum))
			if masterDisplay(md) != nil {
				v.MasteringDisplay = md
			}
		case "Content light level metadata":
			if v.MaxCLL == 0 && v.MaxFALL == 0 && d.MaxContent >= 0 && d.MaxContent <= 65535 && d.MaxAverage >= 0 && d.MaxAverage <= 65535 {
				v.MaxCLL, v.MaxFALL = d.MaxContent, d.MaxAverage
			}
		}
	}
}

// probeHDR reads an HDR source's HDR10 metadata: from the stream's side
// data in the probe's JSON (MP4 mdcv/clli boxes, Matroska's colour
// elements), else from the first frame's (the HEVC SEI messages). A file
// that will not tell is an HDR source without metadata, not an error.
func (t *Transcoder) probeHDR(ctx context.Context, path string, probeJSON []byte, p *Probe) {
	v := p.Video
	if v == nil || v.DynamicRange() == RangeSDR {
		return
	}
	var streams struct {
		Streams []struct {
			Index    int               `json:"index"`
			SideData []json.RawMessage `json:"side_data_list"`
		} `json:"streams"`
	}
	if json.Unmarshal(probeJSON, &streams) == nil {
		for _, s := range streams.Streams {
			if s.Index == v.Index {
				applySideData(v, s.SideData)
			}
		}
	}
	if v.MasteringDisplay != "" && v.MaxCLL > 0 {
		return
	}
	args := append([]string{"-v", "error", "-hide_banner"}, userInputArgs()...)
	args = append(args, "-select_streams", strconv.Itoa(v.Index), "-read_intervals", "%+#1",
		"-show_frames", "-show_entries", "frame=side_data_list", "-of", "json", "-i", inputURL(path))
	out := &cappedBuffer{max: maxProbeOutput}
	if err := t.run(ctx, t.probeTimeout, t.ffprobe, args, out, confine.Policy{Read: []string{path}}); err != nil {
		t.log.Warn("probe: no HDR10 metadata from the first frame", "path", path, "err", err)
		return
	}
	var frames struct {
		Frames []struct {
			SideData []json.RawMessage `json:"side_data_list"`
		} `json:"frames"`
	}
	if err := json.Unmarshal(out.Bytes(), &frames); err != nil {
		t.log.Warn("probe: unreadable frame side data", "path", path, "err", err)
		return
	}
	for _, f := range frames.Frames {
		applySideData(v, f.SideData)
	}
}
