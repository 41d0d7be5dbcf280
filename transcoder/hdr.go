package transcoder

import (
	"fmt"
	"slices"
	"strings"
)

// Options.DynamicRange values ("" is DynamicAuto).
const (
	DynamicAuto = "auto" // HDR kept in hevc and av1 rungs, tone-mapped for h264
	DynamicSDR  = "sdr"  // every rung tone-mapped to SDR BT.709
	DynamicBoth = "both" // an HDR hevc (or av1) ladder and an SDR h264 ladder
)

// hdrSuffix marks the HDR rungs of a "both" ladder ("1080p-hdr"), so that
// rendition names, which are file names, stay unique.
const hdrSuffix = "-hdr"

// maxLadder is the most rungs a "both" default ladder makes; it matches
// cluster.MaxRenditions, which refuses a longer ladder at submit.
const maxLadder = 12

// minBothHDR is the smallest short side of an HDR rung of a "both" default
// ladder: the SDR h264 ladder serves the small sizes and slow links.
const minBothHDR = 360

func validDynamicRange(s string) error {
	switch s {
	case "", DynamicAuto, DynamicSDR, DynamicBoth:
		return nil
	}
	return fmt.Errorf("options: unknown dynamic_range %q (one of %s, %s, %s)", s, DynamicAuto, DynamicSDR, DynamicBoth)
}

// Plan picks the renditions for a source (planLadder) and decides which
// keep an HDR source's dynamic range (Options.DynamicRange): by default
// hevc and av1 rungs keep it and h264 rungs are tone-mapped; "sdr"
// tone-maps every rung; "both" makes an SDR h264 ladder followed by an HDR
// ladder in the job's codec (hevc when that is h264), whose names end in
// "-hdr". On the default ladder, "both" keeps HDR rungs of 360p and up and
// stays within maxLadder rungs by dropping the smallest SDR ones. An SDR
// source gets the plain ladder whatever the option.
func Plan(p *Probe, o Options) ([]Rendition, error) {
	rs, err := planLadder(p, o)
	if err != nil {
		return nil, err
	}
	src := p.Video.DynamicRange()
	if src == RangeSDR || o.DynamicRange == DynamicSDR {
		return rs, nil
	}
	codec, _ := normalizeCodec(o.Codec) // planLadder checked it
	if o.DynamicRange != DynamicBoth {
		if codec != CodecH264 {
			for i := range rs {
				rs[i].Range = src
			}
		}
		return rs, nil
	}
	ho := o
	if codec == CodecH264 {
		ho.Codec = CodecHEVC
	}
	hdr, err := planLadder(p, ho)
	if err != nil {
		return nil, err
	}
	so := o
	so.Codec = CodecH264
	sdr, err := planLadder(p, so)
	if err != nil {
		return nil, err
	}
	if len(o.Renditions) == 0 {
		keep := hdr[:1]
		for _, r := range hdr[1:] {
			if min(r.Width, r.Height) >= minBothHDR {
				keep = append(keep, r)
			}
		}
		hdr = keep
		for len(sdr) > 1 && len(sdr)+len(hdr) > maxLadder {
			sdr = sdr[:len(sdr)-1]
		}
	}
	for i := range hdr {
		hdr[i].Range = src
		hdr[i].Name += hdrSuffix
	}
	return append(sdr, hdr...), nil
}

// rangeSplit is the filter-graph piece that follows the (rotated) decoded
// source and ends in one pad per rendition, [<label><i>]: SDR rungs come
// from one tone-mapped copy of an HDR source (toneMap, the source's range,
// as EncodeSettings.ToneMap), HDR rungs from the untouched picture. The
// tone mapping runs once, however many rungs share it.
func rangeSplit(toneMap string, rs []Rendition, label string) (string, error) {
	var hdr, sdr []int
	for i, r := range rs {
		if r.Range == "" {
			sdr = append(sdr, i)
			continue
		}
		if r.Range != toneMap {
			return "", fmt.Errorf("rendition %s keeps dynamic range %q of a source that has %q", r.Name, r.Range, toneMap)
		}
		if r.Codec != CodecHEVC && r.Codec != CodecAV1 {
			return "", fmt.Errorf("rendition %s: codec %q cannot carry HDR", r.Name, r.Codec)
		}
		hdr = append(hdr, i)
	}
	pads := func(idx []int) string {
		var b strings.Builder
		fmt.Fprintf(&b, "split=%d", len(idx))
		for _, i := range idx {
			fmt.Fprintf(&b, "[%s%d]", label, i)
		}
		return b.String()
	}
	tm := toneMapFilter(toneMap)
	if tm != "" {
		tm += ","
	}
	switch {
	case len(hdr) == 0:
		return tm + pads(sdr), nil
	case len(sdr) == 0:
		return pads(hdr), nil
	}
	return fmt.Sprintf("split=2[%shdr][%ssdr];[%ssdr]%s%s;[%shdr]%s", label, label, label, tm, pads(sdr), label, pads(hdr)), nil
}

// rungPixFmt is the pixel format a rung is encoded in: 10-bit for HDR,
// 8-bit 4:2:0 otherwise (a 10-bit SDR source becomes 8-bit).
func rungPixFmt(r Rendition) string {
	if r.Range != "" {
		return "yuv420p10le"
	}
	return "yuv420p"
}

// transferName is ffmpeg's name of an HDR range's transfer function.
func transferName(rng string) string {
	if rng == RangeHLG {
		return "arib-std-b67"
	}
	return "smpte2084"
}

// colorTags are the colour tags a rung's bitstream and container carry:
// BT.2020 with PQ or HLG for an HDR rung, BT.709 for a tone-mapped one, none
// for an SDR source's (left as the encoders default).
func colorTags(toneMap string, r Rendition) []string {
	if r.Range != "" {
		return []string{"-color_primaries", "bt2020", "-color_trc", transferName(r.Range), "-colorspace", "bt2020nc", "-color_range", "tv"}
	}
	if toneMapFilter(toneMap) != "" {
		return sdrTags
	}
	return nil
}

// hdrEncoderArgs turns encoderArgs' SDR arguments for r into HDR ones when
// r keeps HDR: x265 Main 10 with BT.2020 VUI, for PQ hdr10 and hdr10-opt,
// and the mastering display and content light level SEI; SVT-AV1 10-bit
// with its mastering-display and content-light metadata OBUs.
func hdrEncoderArgs(a []string, r Rendition, m HDR10) ([]string, error) {
	if r.Range == "" {
		return a, nil
	}
	a = slices.Clone(a)
	var err error
	switch r.Codec {
	case CodecHEVC:
		p := ":colorprim=bt2020:transfer=" + transferName(r.Range) + ":colormatrix=bt2020nc"
		if r.Range == RangePQ {
			p += ":hdr10=1:hdr10-opt=1"
		}
		if masterDisplay(m.MasteringDisplay) != nil {
			p += ":master-display=" + m.MasteringDisplay
		}
		if cll := contentLight(m); cll != "" {
			p += ":max-cll=" + cll
		}
		if err = setArg(a, "-profile:v", "main10"); err == nil {
			err = appendArg(a, "-x265-params", p)
		}
	case CodecAV1:
		p := ""
		if md := svtMasteringDisplay(m.MasteringDisplay); md != "" {
			p += ":mastering-display=" + md
		}
		if cll := contentLight(m); cll != "" {
			p += ":content-light=" + cll
		}
		if err = setArg(a, "-pix_fmt", "yuv420p10le"); err == nil {
			err = appendArg(a, "-svtav1-params", p)
		}
	default:
		err = fmt.Errorf("codec %q cannot carry HDR", r.Codec)
	}
	if err != nil {
		return nil, fmt.Errorf("rendition %s: %w", r.Name, err)
	}
	return a, nil
}

func contentLight(m HDR10) string {
	if m.MaxCLL <= 0 || m.MaxCLL > 65535 || m.MaxFALL < 0 || m.MaxFALL > 65535 {
		return ""
	}
	return fmt.Sprintf("%d,%d", m.MaxCLL, m.MaxFALL)
}

// setArg replaces the value that follows flag in a.
func setArg(a []string, flag, val string) error {
	i := slices.Index(a, flag)
	if i < 0 || i+1 >= len(a) {
		return fmt.Errorf("encoder arguments lack %s", flag)
	}
	a[i+1] = val
	return nil
}

// appendArg appends to the value that follows flag in a.
func appendArg(a []string, flag, suffix string) error {
	i := slices.Index(a, flag)
	if i < 0 || i+1 >= len(a) {
		return fmt.Errorf("encoder arguments lack %s", flag)
	}
	a[i+1] += suffix
	return nil
}
