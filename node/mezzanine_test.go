package node

import (
	"math"
	"path/filepath"
	"testing"
	"time"
)

// TestMezzanineInputs runs the masters post-production and broadcast hand
// over through a real node: ProRes 422 HQ and DNxHR HQX (4:2:2, 10-bit,
// PCM audio, in MOV and MXF) and an MPEG-TS carrying two programs. Each
// becomes an 8-bit 4:2:0 ladder a browser plays, with the source's length
// and audio; the TS's first program is the one transcoded. An HDR10 phone
// clip (HEVC 10-bit, PQ) becomes a tone-mapped SDR BT.709 ladder.
func TestMezzanineInputs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	dir := t.TempDir()
	n := startNode(t, filepath.Join(dir, "data"), nil)
	lavfi := func(graph string) []string { return []string{"-f", "lavfi", "-i", graph} }
	cat := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	cases := []struct {
		name, file string
		args       []string
		height     int
		codec      string // the source's, as probed
		hdr        bool   // tone-mapped: the ladder must be tagged BT.709
	}{
		{"prores-422hq-10bit", "master.mov", cat(lavfi("testsrc2=size=640x360:rate=25:duration=4"), lavfi("sine=frequency=440:duration=4"),
			[]string{"-c:v", "prores_ks", "-profile:v", "3", "-pix_fmt", "yuv422p10le", "-c:a", "pcm_s24le"}), 360, "prores", false},
		{"dnxhr-hqx-10bit-mxf", "master.mxf", cat(lavfi("testsrc2=size=640x360:rate=25:duration=4"), lavfi("sine=frequency=440:duration=4:sample_rate=48000"),
			[]string{"-c:v", "dnxhd", "-profile:v", "dnxhr_hqx", "-pix_fmt", "yuv422p10le", "-c:a", "pcm_s24le"}), 360, "dnxhd", false},
		{"mpegts-two-programs", "broadcast.ts", cat(lavfi("testsrc2=size=640x360:rate=25:duration=6"), lavfi("sine=frequency=440:duration=6"),
			lavfi("mandelbrot=size=320x180:rate=25"), lavfi("sine=frequency=880:duration=6"),
			[]string{"-map", "0:v", "-map", "1:a", "-map", "2:v", "-map", "3:a", "-t", "6",
				"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac",
				"-program", "title=Main:st=0:st=1", "-program", "title=Second:st=2:st=3"}), 360, "h264", false},
		{"hdr10-hevc-10bit", "phone.mp4", cat(lavfi("testsrc2=size=640x360:rate=25:duration=4"), lavfi("sine=frequency=440:duration=4"),
			[]string{"-vf", "format=yuv420p10le", "-c:v", "libx265", "-preset", "ultrafast", "-x265-params",
				"log-level=error:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc:hdr10=1:max-cll=1000,400",
				"-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc", "-tag:v", "hvc1", "-c:a", "aac"}), 360, "hevc", true},
	}
	ids := make([]string, len(cases))
	for i, c := range cases {
		src := genClip(t, filepath.Join(dir, c.name+"-"+c.file), c.args...)
		ids[i] = submit(t, n.base, src, `{"chunk_seconds":2}`).ID
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			j := waitJob(t, n.base, ids[i], 4*time.Minute)
			if j.State != "done" {
				t.Fatalf("job %s: %s (%s)", j.ID, j.State, j.Error)
			}
			if j.Source.Video == nil || j.Source.Audio == nil {
				t.Fatalf("source probed as %+v", j.Source)
			}
			if j.Source.Video.Codec != c.codec {
				t.Errorf("source video probed as %q, want %q", j.Source.Video.Codec, c.codec)
			}
			if len(j.Renditions) == 0 || j.Renditions[0].Height != c.height {
				t.Fatalf("renditions %+v, want the top one %dp", j.Renditions, c.height)
			}
			srcDur := j.Source.Video.Duration
			for _, r := range j.Renditions {
				u := n.base + j.Outputs.MP4[r.Name]
				vd, ad, h := streamDurations(t, u)
				if math.Abs(vd-srcDur) > 0.1 || math.Abs(ad-vd) > 0.1 || h != r.Height {
					t.Errorf("%s: video %.3fs, audio %.3fs, height %d; source %.3fs, planned %d", r.Name, vd, ad, h, srcDur, r.Height)
				}
				v := probeURL(t, u, "-select_streams", "v:0", "-show_entries", "stream=pix_fmt,codec_name,color_transfer,color_primaries")
				s := v["streams"].([]any)[0].(map[string]any)
				if s["pix_fmt"] != "yuv420p" || s["codec_name"] != "h264" {
					t.Errorf("%s: %v %v, want 8-bit 4:2:0 h264", r.Name, s["codec_name"], s["pix_fmt"])
				}
				if c.hdr && (s["color_transfer"] != "bt709" || s["color_primaries"] != "bt709") {
					t.Errorf("%s: tagged %v/%v, want the tone-mapped ladder tagged BT.709", r.Name, s["color_transfer"], s["color_primaries"])
				}
			}
			// The HLS master opens and plays the ladder.
			v := probeURL(t, n.base+j.Outputs.HLS, "-show_streams")
			if got := len(v["streams"].([]any)); got < len(j.Renditions) {
				t.Errorf("HLS master has %d streams for %d renditions", got, len(j.Renditions))
			}
		})
	}
}
