package transcoder

import (
	"fmt"
	"math"
	"sort"
)

// ladder is the default rendition ladder for h264, high to low; HEVC and
// AV1 use it scaled by codecSpecs' ladderPercent (60% and 50%). The height is the
// short side of the picture, so portrait sources get the same rungs.
var ladder = []struct {
	short   int
	bitrate int64
}{
	{2160, 14_000_000},
	{1440, 8_000_000},
	{1080, 5_000_000},
	{720, 3_000_000},
	{480, 1_500_000},
	{360, 800_000},
	{240, 400_000},
	{144, 200_000},
}

func defaultBitrate(short int) int64 {
	for _, r := range ladder {
		if r.short == short {
			return r.bitrate
		}
	}
	return 0
}

// planLadder picks the renditions for a source in one codec (Plan then
// decides their dynamic range, hdr.go). It never upscales: a rung larger
// than the source's short side is dropped from the default ladder and is an
// error when the user names it. Nor does it spend bits the source does not
// have: a rung's rate is capped at the source's own video rate (in the
// output codec's terms, see sourceRate), and on the default ladder a rung
// the cap brings down to the rate of the rung above it is dropped, as it
// would only repeat that rung's bandwidth at a smaller size. A rate the
// user names ("720p@3M") is kept as asked.
func planLadder(p *Probe, o Options) ([]Rendition, error) {
	if p == nil || p.Video == nil {
		return nil, &MediaError{Reason: "no video stream"}
	}
	codec, err := normalizeCodec(o.Codec)
	if err != nil {
		return nil, err
	}
	if _, err := p.SelectAudio(o.Audio); err != nil { // an ordinal the source lacks
		return nil, err
	}
	w, h := p.Video.Width, p.Video.Height
	if w < 2 || h < 2 {
		return nil, &MediaError{Reason: fmt.Sprintf("video size %dx%d is too small", w, h)}
	}
	short := min(w, h)

	ceiling := sourceRate(p, codec)
	var out []Rendition
	if len(o.Renditions) == 0 {
		for _, r := range ladder {
			if r.short > short {
				continue
			}
			rate := capRate(codecBitrate(codec, r.bitrate), ceiling)
			if n := len(out); n > 0 && rate >= out[n-1].Bitrate {
				continue // capped to the rate of the rung above: no new bandwidth
			}
			out = append(out, sized(w, h, r.short, rate, codec))
		}
		if len(out) == 0 {
			// Below the lowest rung: one rendition at the source size
			// rather than no output at all.
			s := short &^ 1
			out = append(out, sized(w, h, s, capRate(codecBitrate(codec, ladder[len(ladder)-1].bitrate), ceiling), codec))
		}
		return out, nil
	}

	seen := map[int]bool{}
	for _, name := range o.Renditions {
		rs, bitrate, err := parseRenditionName(name)
		if err != nil {
			return nil, err
		}
		if rs > short {
			return nil, fmt.Errorf("plan: rendition %s would upscale the %dx%d source (largest possible is %dp)", name, w, h, short&^1)
		}
		if seen[rs] {
			continue
		}
		seen[rs] = true
		if bitrate == 0 {
			bitrate = capRate(codecBitrate(codec, defaultBitrate(rs)), ceiling)
		}
		out = append(out, sized(w, h, rs, bitrate, codec))
	}
	sort.SliceStable(out, func(i, j int) bool { return min(out[i].Width, out[i].Height) > min(out[j].Width, out[j].Height) })
	return out, nil
}

// minRungRate is the least a capped rung is given: below it an encoder
// spends its bits on headers, and a source measured that low (a still
// picture, a slide show) is sharp at it anyway.
const minRungRate = 100_000

// sourceRate is the source's video bit rate in the terms of the output
// codec, or 0 when it cannot be told. The stream's own rate is best; a
// container's rate (less the audio) or size over duration stand in for
// formats that give none (Matroska, WebM). A source coded with a more
// efficient codec than the output's is worth proportionally more bits:
// 1 Mb/s of HEVC carries what about 1.67 Mb/s of H.264 does (the same
// ratios as the default ladders, codecSpecs' ladderPercent).
func sourceRate(p *Probe, codec string) int64 {
	v := p.Video
	rate := v.BitRate
	if rate <= 0 {
		total := p.BitRate
		if total <= 0 && p.Duration > 0 && p.Size > 0 {
			total = int64(float64(p.Size) * 8 / p.Duration)
		}
		if total > 0 && p.Audio != nil {
			a := p.Audio.BitRate
			if a <= 0 {
				a = DefaultAudioBitrate
			}
			total -= a
		}
		rate = total
	}
	if rate <= 0 {
		return 0
	}
	eff, ok := sourcePercent[v.Codec]
	if !ok {
		return rate // MPEG-2, MPEG-4, ProRes, MJPEG...: counted as H.264, which they are not better than
	}
	return rate * codecSpecs[codec].ladderPercent / eff
}

// sourcePercent is the rate a source codec needs for H.264's quality, in
// percent, by ffprobe's codec name (the output codecs' as in codecSpecs).
var sourcePercent = map[string]int64{
	"h264": 100,
	"hevc": codecSpecs[CodecHEVC].ladderPercent,
	"vp9":  65,
	"av1":  codecSpecs[CodecAV1].ladderPercent,
}

// capRate is rate, no higher than ceiling (0: no ceiling) nor lower than
// minRungRate because of it; rounded to whole kb/s.
func capRate(rate, ceiling int64) int64 {
	if ceiling <= 0 || rate <= ceiling {
		return rate
	}
	return max(ceiling/1000*1000, min(rate, minRungRate))
}

// sized scales (w,h) so that its short side is `short`, keeping the aspect
// ratio, both sides even and neither side larger than the source.
func sized(w, h, short int, bitrate int64, codec string) Rendition {
	var rw, rh int
	if w >= h {
		rh = short
		rw = even(float64(short) * float64(w) / float64(h))
		rw = min(rw, w&^1)
	} else {
		rw = short
		rh = even(float64(short) * float64(h) / float64(w))
		rh = min(rh, h&^1)
	}
	return Rendition{Name: fmt.Sprintf("%dp", short), Width: rw, Height: rh, Bitrate: bitrate, Codec: codec}
}

func even(x float64) int {
	v := int(math.Round(x/2)) * 2
	return max(v, 2)
}
