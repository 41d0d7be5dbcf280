package transcoder

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Supported video codecs (Options.Codec, Rendition.Codec).
const (
	CodecH264 = "h264"
	CodecHEVC = "hevc"
	CodecAV1  = "av1"
)

// Codecs lists the video codecs a job may ask for, default first.
var Codecs = []string{CodecH264, CodecHEVC, CodecAV1}

// codecSpec is what differs between the encoders behind the codecs.
type codecSpec struct {
	encoder string // ffmpeg encoder
	// ladderPercent scales the default ladder's bitrates: HEVC and AV1 reach
	// the same quality at lower rates (roughly 60% and 50% of H.264's).
	ladderPercent int64
}

var codecSpecs = map[string]codecSpec{
	CodecH264: {encoder: "libx264", ladderPercent: 100},
	CodecHEVC: {encoder: "libx265", ladderPercent: 60},
	CodecAV1:  {encoder: "libsvtav1", ladderPercent: 50},
}

// normalizeCodec maps the names a user may write to the canonical codec.
func normalizeCodec(c string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(c)) {
	case "", "h264", "avc", "libx264":
		return CodecH264, nil
	case "hevc", "h265", "libx265":
		return CodecHEVC, nil
	case "av1", "libsvtav1":
		return CodecAV1, nil
	default:
		return "", fmt.Errorf("options: unknown codec %q (supported: %s)", c, strings.Join(Codecs, ", "))
	}
}

// NormalizeCodec is normalizeCodec for callers outside the package ("" is
// h264).
func NormalizeCodec(c string) (string, error) { return normalizeCodec(c) }

// codecBitrate is the default ladder's bitrate for a rung of codec.
func codecBitrate(codec string, h264 int64) int64 {
	spec, ok := codecSpecs[codec]
	if !ok {
		return h264
	}
	// Rounded to whole kb/s.
	return (h264 * spec.ladderPercent / 100) / 1000 * 1000
}

// svtAV1Presets maps the x264 preset names (the node's --preset and the
// job's options.preset, one speed knob for every codec) to SVT-AV1 presets
// (0 slowest .. 13 fastest). SVT-AV1 below 8 is far slower than x264 at the
// "same" name, so the scale starts there: veryfast (the default) is 10,
// which encodes 1080p faster than real time on a few cores.
var svtAV1Presets = map[string]int{
	"ultrafast": 12, "superfast": 11, "veryfast": 10, "faster": 9, "fast": 8,
	"medium": 8, "slow": 7, "slower": 6, "veryslow": 5, "placebo": 4,
}

// cappedCRF is the constant quality of RateCappedCRF per codec: x264's
// and x265's defaults, about the same picture quality on each.
var cappedCRF = map[string]string{CodecH264: "23", CodecHEVC: "28"}

// encoderArgs are the per-rendition encoder arguments of codec: a fixed
// GOP of gop frames with keyframes also forced at forceKF, scene cuts and
// open GOPs off, so that chunks stitch and segments line up across
// renditions; and the rate: with RateABR a target bitrate with a VBV
// ceiling of 1.07x, with RateCappedCRF a constant quality under the same
// ceiling (the rung's rate is then the most it spends, not what it aims at).
func encoderArgs(codec, preset, rc string, bitrate int64, gop int, forceKF string, threads int) ([]string, error) {
	if rc != "" && rc != RateABR && rc != RateCappedCRF {
		return nil, fmt.Errorf("unknown rate control %q", rc)
	}
	if codec == "" {
		codec = CodecH264
	}
	crf := rc == RateCappedCRF
	b := strconv.FormatInt(bitrate, 10)
	maxrate := strconv.FormatInt(int64(math.Round(float64(bitrate)*1.07)), 10)
	bufsize := strconv.FormatInt(2*bitrate, 10)
	rate := []string{"-b:v", b, "-maxrate", maxrate, "-bufsize", bufsize}
	if crf {
		rate = []string{"-crf", cappedCRF[codec], "-maxrate", maxrate, "-bufsize", bufsize}
	}
	g := strconv.Itoa(gop)
	var a []string
	switch codec {
	case CodecH264, "":
		a = append([]string{"-c:v", "libx264", "-preset", preset, "-profile:v", "high"}, rate...)
		a = append(a,
			"-g", g, "-keyint_min", g, "-sc_threshold", "0",
			"-force_key_frames", forceKF,
			"-x264-params", "scenecut=0:open_gop=0")
		if threads > 0 {
			a = append(a, "-threads", strconv.Itoa(threads))
		}
	case CodecHEVC:
		// x265 takes the x264 preset names. hvc1 (parameter sets only in
		// the sample entry) is what Apple's HLS players require.
		params := "keyint=" + g + ":min-keyint=" + g + ":scenecut=0:open-gop=0:log-level=error"
		if threads > 0 {
			// x265's own thread pool and frame threads; -threads alone
			// does not bound it.
			params += ":pools=" + strconv.Itoa(threads) + ":frame-threads=" + strconv.Itoa(min(threads, 4))
		}
		a = append([]string{"-c:v", "libx265", "-preset", preset, "-profile:v", "main"}, rate...)
		a = append(a, "-g", g, "-keyint_min", g,
			"-force_key_frames", forceKF,
			"-x265-params", params, "-tag:v", "hvc1")
	case CodecAV1:
		p, ok := svtAV1Presets[preset]
		if !ok {
			return nil, fmt.Errorf("unknown preset %q", preset)
		}
		// SVT-AV1 in VBR mode (it takes no VBV ceiling there); closed GOP
		// (key frames, its default), scene change detection off. No capped
		// CRF: Options.Validate refuses it for AV1.
		if crf {
			return nil, fmt.Errorf("rate control %q is not available for av1", rc)
		}
		params := "scd=0"
		if threads > 0 {
			params += ":lp=" + strconv.Itoa(threads)
		}
		a = append([]string{"-c:v", "libsvtav1", "-preset", strconv.Itoa(p), "-b:v", b}, "-g", g,
			"-force_key_frames", forceKF,
			"-svtav1-params", params, "-pix_fmt", "yuv420p")
	default:
		return nil, fmt.Errorf("codec %q not supported", codec)
	}
	return a, nil
}

// CodecString is the RFC 6381 codecs value (HLS CODECS, DASH codecs) of
// the first video track of an MP4 or fMP4 init segment, derived from its
// sample entry and decoder configuration: avc1.PPCCLL from avcC,
// hvc1.P.C.TL.CC.. (ISO/IEC 14496-15 annex E) from hvcC, av01.P.LLT.DD
// from av1C. It reflects the stream the encoder actually made (profile and
// level picked by the encoder), not what was asked for.
func CodecString(path string) (string, error) {
	entry, cfg, err := mp4VideoSampleEntry(path)
	if err != nil {
		return "", err
	}
	return codecStringFrom(entry, cfg)
}

func codecStringFrom(entry string, cfg []byte) (string, error) {
	switch entry {
	case "avc1", "avc3":
		// avcC: version, profile, compatibility, level.
		if len(cfg) < 4 {
			return "", fmt.Errorf("short avcC (%d bytes)", len(cfg))
		}
		return fmt.Sprintf("%s.%02x%02x%02x", entry, cfg[1], cfg[2], cfg[3]), nil
	case "hvc1", "hev1":
		// hvcC: version(1), profile_space(2) tier(1) profile_idc(5),
		// compatibility flags(32), constraint flags(48), level_idc(8).
		if len(cfg) < 13 {
			return "", fmt.Errorf("short hvcC (%d bytes)", len(cfg))
		}
		space := cfg[1] >> 6
		tier := (cfg[1] >> 5) & 1
		profile := cfg[1] & 0x1f
		compat := uint32(cfg[2])<<24 | uint32(cfg[3])<<16 | uint32(cfg[4])<<8 | uint32(cfg[5])
		var rev uint32 // the flags in reverse bit order
		for i := range 32 {
			if compat&(1<<i) != 0 {
				rev |= 1 << (31 - i)
			}
		}
		var s strings.Builder
		s.WriteString(entry + ".")
		if space > 0 {
			s.WriteByte("ABC"[space-1])
		}
		fmt.Fprintf(&s, "%d.%X.", profile, rev)
		if tier == 1 {
			s.WriteByte('H')
		} else {
			s.WriteByte('L')
		}
		fmt.Fprintf(&s, "%d", cfg[12])
		cons := cfg[6:12]
		last := len(cons)
		for last > 0 && cons[last-1] == 0 {
			last--
		}
		for _, c := range cons[:last] {
			fmt.Fprintf(&s, ".%X", c)
		}
		return s.String(), nil
	case "av01":
		// av1C: marker/version, seq_profile(3) seq_level_idx_0(5),
		// seq_tier_0(1) high_bitdepth(1) twelve_bit(1) ...
		if len(cfg) < 3 {
			return "", fmt.Errorf("short av1C (%d bytes)", len(cfg))
		}
		profile := cfg[1] >> 5
		level := cfg[1] & 0x1f
		tier := "M"
		if cfg[2]&0x80 != 0 {
			tier = "H"
		}
		depth := 8
		if cfg[2]&0x40 != 0 {
			depth = 10
			if cfg[2]&0x20 != 0 {
				depth = 12
			}
		}
		return fmt.Sprintf("av01.%d.%02d%s.%02d", profile, level, tier, depth), nil
	}
	return "", fmt.Errorf("unsupported sample entry %q", entry)
}
