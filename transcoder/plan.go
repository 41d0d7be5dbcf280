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

// Plan picks the renditions for a source. It never upscales: a rung larger
// than the source's short side is dropped from the default ladder and is an
// error when the user names it.
func Plan(p *Probe, o Options) ([]Rendition, error) {
	if p == nil || p.Video == nil {
		return nil, &MediaError{Reason: "no video stream"}
	}
	codec, err := normalizeCodec(o.Codec)
	if err != nil {
		return nil, err
	}
	w, h := p.Video.Width, p.Video.Height
	if w < 2 || h < 2 {
		return nil, &MediaError{Reason: fmt.Sprintf("video size %dx%d is too small", w, h)}
	}
	short := min(w, h)

	var out []Rendition
	if len(o.Renditions) == 0 {
		for _, r := range ladder {
			if r.short <= short {
				out = append(out, sized(w, h, r.short, codecBitrate(codec, r.bitrate), codec))
			}
		}
		if len(out) == 0 {
			// Below the lowest rung: one rendition at the source size
			// rather than no output at all.
			s := short &^ 1
			out = append(out, sized(w, h, s, codecBitrate(codec, ladder[len(ladder)-1].bitrate), codec))
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
			bitrate = codecBitrate(codec, defaultBitrate(rs))
		}
		out = append(out, sized(w, h, rs, bitrate, codec))
	}
	sort.SliceStable(out, func(i, j int) bool { return min(out[i].Width, out[i].Height) > min(out[j].Width, out[j].Height) })
	return out, nil
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
