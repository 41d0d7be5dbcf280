package transcoder

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// hdrSources are the HDR clips the tests make: HDR10 (PQ, with mastering
// display and content light level metadata) and HLG, both HEVC 10-bit
// BT.2020 as phones and cameras record them.
var hdrSources = []struct {
	name, rng, transfer, x265 string
}{
	{"hdr10", RangePQ, "smpte2084", "colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc:hdr10=1:" +
		"master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1):max-cll=1000,400"},
	{"hlg", RangeHLG, "arib-std-b67", "colorprim=bt2020:transfer=arib-std-b67:colormatrix=bt2020nc"},
}

// genHDR writes a 2 s 640x360 HEVC 10-bit clip of one of hdrSources.
func genHDR(t *testing.T, dir, name, transfer, x265 string) string {
	return genHDRSized(t, dir, name, "640x360", transfer, x265)
}

// genHDRSized is genHDR at another size.
func genHDRSized(t *testing.T, dir, name, size, transfer, x265 string) string {
	t.Helper()
	mustGen(t, dir, name+".mp4", "-f", "lavfi", "-i", "testsrc2=size="+size+":rate=25", "-t", "2",
		"-vf", "format=yuv420p10le", "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error:"+x265,
		"-color_primaries", "bt2020", "-color_trc", transfer, "-colorspace", "bt2020nc", "-tag:v", "hvc1")
	return filepath.Join(dir, name+".mp4")
}

// TestHDRSourcesBecomeSDR: an HDR10 or HLG source is probed as such and
// its ladder is tone-mapped to 8-bit SDR BT.709, tagged so in the
// bitstream (not left tagged PQ, which SDR screens show washed out), and
// the quality report compares it with the tone-mapped source (a score as
// high as an SDR source's; against the untouched HDR picture it would be
// far lower).
func TestHDRSourcesBecomeSDR(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	for _, h := range hdrSources {
		t.Run(h.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			tr := newTestTranscoder(t)
			dir := t.TempDir()
			src := genHDR(t, dir, h.name, h.transfer, h.x265)
			p, err := tr.Probe(ctx, src)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Video.DynamicRange(); got != h.rng || p.Video.ColorPrimaries != "bt2020" || p.Video.PixFmt != "yuv420p10le" {
				t.Fatalf("probed as %s (%s, %s, %s), want %s", got, p.Video.ColorTransfer, p.Video.ColorPrimaries, p.Video.PixFmt, h.rng)
			}
			rs, err := Plan(p, Options{Renditions: []string{"360p@1M", "240p"}})
			if err != nil {
				t.Fatal(err)
			}
			chunks, err := tr.Split(ctx, src, p, ChunkPlan{Seconds: 2}, filepath.Join(dir, "chunks"))
			if err != nil {
				t.Fatal(err)
			}
			s := EncodeSettings{Renditions: rs, FrameRate: p.Video.FrameRate, ToneMap: p.Video.DynamicRange()}
			outs, err := tr.EncodeChunk(ctx, chunks[0], s, filepath.Join(dir, "enc"), nil)
			if err != nil {
				t.Fatal(err)
			}
			for i, o := range outs {
				v := ffprobeJSON(t, "-select_streams", "v:0", "-show_entries",
					"stream=pix_fmt,color_transfer,color_primaries,color_space", "-of", "json", o)
				got := v.Streams[0]
				if got.PixFmt != "yuv420p" || got.ColorTransfer != "bt709" || got.ColorPrimaries != "bt709" || got.ColorSpace != "bt709" {
					t.Errorf("%s: %s %s/%s/%s, want 8-bit BT.709", rs[i].Name, got.PixFmt, got.ColorTransfer, got.ColorPrimaries, got.ColorSpace)
				}
			}
			windows := QualitySample(chunks[:1], p.Video.FrameRate)
			for i := range windows {
				windows[i].Source = chunks[windows[i].Chunk].Path
			}
			like, err := tr.MeasureQuality(ctx, windows, Reference{ToneMap: s.ToneMap}, p.Video.FrameRate, rs, outs, filepath.Join(dir, "q1"))
			if err != nil {
				t.Fatal(err)
			}
			unlike, err := tr.MeasureQuality(ctx, windows, Reference{}, p.Video.FrameRate, rs, outs, filepath.Join(dir, "q2"))
			if err != nil {
				t.Fatal(err)
			}
			for i := range rs {
				t.Logf("%s: SSIM %.4f against the tone-mapped source, %.4f against the HDR one", rs[i].Name, like[i].SSIM, unlike[i].SSIM)
				if like[i].SSIM < 0.95 || like[i].SSIM <= unlike[i].SSIM {
					t.Errorf("%s: SSIM %.4f like with like, %.4f against HDR", rs[i].Name, like[i].SSIM, unlike[i].SSIM)
				}
			}
		})
	}
}
