package transcoder

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/gosty/gosty/internal/strictjson"
)

// MaxUserChunkSeconds bounds Options.ChunkSeconds: longer chunks make a
// single task (and its retry after a node failure) too expensive.
const MaxUserChunkSeconds = 60.0

// ParseOptions decodes the `options` field of an upload. Unknown fields are
// an error rather than ignored: a typo such as "rendition" would otherwise
// silently give the default ladder. Empty input is the zero Options.
func ParseOptions(raw []byte) (Options, error) {
	var o Options
	if len(bytes.TrimSpace(raw)) == 0 {
		return o, nil
	}
	if err := strictjson.Decode(bytes.NewReader(raw), &o); err != nil {
		return Options{}, fmt.Errorf("options: %w", err)
	}
	return o.Checked()
}

// Checked is o validated (Validate) and normalized as ParseOptions stores
// options: callers that decode options inside a larger document (the
// node's job options) use it instead of parsing them a second time.
func (o Options) Checked() (Options, error) {
	if err := o.Validate(); err != nil {
		return Options{}, err
	}
	if len(o.Renditions) == 0 {
		o.Renditions = nil // `"renditions":[]` is the default ladder, like no field
	}
	if o.Codec != "" {
		o.Codec, _ = normalizeCodec(o.Codec) // "H265" is stored (and labelled in metrics) as "hevc"
	}
	return o, nil
}

// Validate checks what can be checked without the source; Plan checks the
// rest (e.g. upscaling).
func (o Options) Validate() error {
	if _, err := normalizeCodec(o.Codec); err != nil {
		return err
	}
	for _, r := range o.Renditions {
		if _, _, err := parseRenditionName(r); err != nil {
			return err
		}
	}
	if o.Preset != "" && !validPreset(o.Preset) {
		return fmt.Errorf("options: unknown x264 preset %q (one of %s; mapped per codec, see transcoder/doc.go)", o.Preset, strings.Join(x264Presets, ", "))
	}
	switch o.RateControl {
	case "", RateABR:
	case RateCappedCRF:
		// Measured: SVT-AV1 1.4 (Debian 12) overshoots its capped-CRF
		// ceiling (mbr) by 15-25% on short chunks, so it is no cap.
		if c, _ := normalizeCodec(o.Codec); c == CodecAV1 {
			return fmt.Errorf("options: rate_control %q is for h264 and hevc (SVT-AV1 does not hold its ceiling); use %q with av1", RateCappedCRF, RateABR)
		}
	default:
		return fmt.Errorf("options: unknown rate_control %q (one of %s, %s)", o.RateControl, RateABR, RateCappedCRF)
	}
	if err := validDynamicRange(o.DynamicRange); err != nil {
		return err
	}
	if err := o.Audio.Validate(); err != nil {
		return err
	}
	if o.ChunkSeconds != 0 && (math.IsNaN(o.ChunkSeconds) || o.ChunkSeconds < MinChunkSeconds || o.ChunkSeconds > MaxUserChunkSeconds) {
		return fmt.Errorf("options: chunk_seconds %g outside [%g, %g]", o.ChunkSeconds, MinChunkSeconds, MaxUserChunkSeconds)
	}
	return nil
}

// parseRenditionName reads "720p", "720p@2500k", "720p@3M" or "720p@2500000".
// bitrate 0 means "the ladder's default for that height".
func parseRenditionName(s string) (height int, bitrate int64, err error) {
	name, rate, hasRate := strings.Cut(strings.TrimSpace(s), "@")
	num, ok := strings.CutSuffix(strings.ToLower(name), "p")
	if !ok {
		return 0, 0, fmt.Errorf("options: rendition %q: want a name like 720p or 720p@2500k", s)
	}
	h, err := strconv.Atoi(num)
	if err != nil || h < 2 || h > 8192 {
		return 0, 0, fmt.Errorf("options: rendition %q: height must be a number between 2 and 8192", s)
	}
	if h%2 != 0 {
		return 0, 0, fmt.Errorf("options: rendition %q: height must be even", s)
	}
	if hasRate {
		bitrate, err = parseBitrate(rate)
		if err != nil {
			return 0, 0, fmt.Errorf("options: rendition %q: %w", s, err)
		}
	} else if defaultBitrate(h) == 0 {
		return 0, 0, fmt.Errorf("options: rendition %q is not on the default ladder; give a bitrate, e.g. %dp@2000k", s, h)
	}
	return h, bitrate, nil
}

func parseBitrate(s string) (int64, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1e3, strings.TrimSuffix(s, "k")
	case strings.HasSuffix(s, "m"):
		mult, s = 1e6, strings.TrimSuffix(s, "m")
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("bad bitrate %q", s)
	}
	b := int64(math.Round(v * mult))
	if b < 50_000 || b > 200_000_000 {
		return 0, fmt.Errorf("bitrate %d b/s outside [50k, 200M]", b)
	}
	return b, nil
}

var x264Presets = []string{"ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo"}

func validPreset(p string) bool {
	for _, x := range x264Presets {
		if p == x {
			return true
		}
	}
	return false
}
