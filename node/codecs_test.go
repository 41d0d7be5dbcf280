package node

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gosty/gosty/transcoder"
)

// TestCodecJobs runs an HEVC and an AV1 job on a real node (both at once,
// one per slot) and plays what they published: ffprobe opens the HLS master
// and the DASH manifest through the node, decodes every video stream
// (-count_frames) and finds the asked-for codec with the source's frame
// count, and the master's CODECS values name the profile and level the
// streams really have.
func TestCodecJobs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	dir := t.TempDir()
	n := startNode(t, filepath.Join(dir, "data"), nil)
	src := genClip(t, filepath.Join(dir, "clip.mp4"), "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=4",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=4", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
		"-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest")
	const frames = 100
	type tc struct {
		codec, prefix, rc string
		id                string
	}
	cases := []*tc{{codec: "hevc", prefix: "hvc1"}, {codec: "av1", prefix: "av01"}, {codec: "hevc", prefix: "hvc1", rc: "capped_crf"}}
	for _, c := range cases {
		c.id = submit(t, n.base, src, fmt.Sprintf(`{"codec":%q,"chunk_seconds":2,"renditions":["180p@250k","144p"],"rate_control":%q}`, c.codec, c.rc)).ID
	}
	for _, c := range cases {
		t.Run(c.codec+c.rc, func(t *testing.T) {
			j := waitJob(t, n.base, c.id, 3*time.Minute)
			if j.State != "done" {
				t.Fatalf("job %s: %s (%s)", j.ID, j.State, j.Error)
			}
			if len(j.Renditions) != 2 {
				t.Fatalf("renditions %+v", j.Renditions)
			}
			for _, r := range j.Renditions {
				if r.Codec != c.codec {
					t.Errorf("rendition %s codec %q", r.Name, r.Codec)
				}
				if q := r.Quality; q == nil || q.SSIM < 0.8 || q.SSIM > 1 || q.PSNR < 25 || q.Frames != frames ||
					q.Bitrate <= 0 || float64(q.Bitrate) > 1.5*float64(r.Bitrate) {
					t.Errorf("rendition %s at %d b/s: quality %+v", r.Name, r.Bitrate, q)
				} else if c.rc != "" && r.Name == "180p" && float64(q.Bitrate) > 0.9*float64(r.Bitrate) {
					// The ceiling is not a target: easy content takes less
					// (on the tiniest rung CRF 28 may use all of it).
					t.Errorf("rendition %s: capped CRF spent %d b/s of its %d", r.Name, q.Bitrate, r.Bitrate)
				}
			}
			// The default 144p rung is scaled for the codec.
			if want := map[string]int64{"hevc": 120_000, "av1": 100_000}[c.codec]; j.Renditions[1].Bitrate != want {
				t.Errorf("144p bitrate %d, want %d", j.Renditions[1].Bitrate, want)
			}

			// The master's CODECS, variant by variant (media_<i>.m3u8).
			master := string(fetch(t, n.base+j.Outputs.HLS))
			codecs := map[int]string{}
			re := regexp.MustCompile(`CODECS="([^"]*)"[^\n]*\n(?:#[^\n]*\n)*media_([0-9]+)\.m3u8`)
			for _, m := range re.FindAllStringSubmatch(master, -1) {
				var i int
				fmt.Sscan(m[2], &i)
				codecs[i] = strings.Split(m[1], ",")[0]
				if !strings.Contains(m[1], "mp4a.40.2") {
					t.Errorf("variant %d CODECS %q lacks the audio codec", i, m[1])
				}
			}
			if len(codecs) != 2 {
				t.Fatalf("master has %d variants with CODECS:\n%s", len(codecs), master)
			}
			mpd := string(fetch(t, n.base+j.Outputs.DASH))
			for i, cs := range codecs {
				if !strings.Contains(mpd, fmt.Sprintf(`codecs="%s"`, cs)) {
					t.Errorf("MPD lacks codecs=%q of variant %d:\n%s", cs, i, mpd)
				}
			}

			for _, u := range []string{j.Outputs.HLS, j.Outputs.DASH} {
				v := probeURL(t, n.base+u, "-count_frames", "-show_streams")
				var heights []int
				for _, s := range v["streams"].([]any) {
					m := s.(map[string]any)
					if m["codec_type"] != "video" {
						continue
					}
					h := int(m["height"].(float64))
					heights = append(heights, h)
					if m["codec_name"] != c.codec {
						t.Errorf("%s: %dp stream codec %v", u, h, m["codec_name"])
					}
					if got := fmt.Sprint(m["nb_read_frames"]); got != fmt.Sprint(frames) {
						t.Errorf("%s: %dp stream decoded %s frames, want %d", u, h, got, frames)
					}
					// The variant with this height: 180 is media_0, 144 media_1.
					i := map[int]int{180: 0, 144: 1}[h]
					level := int(m["level"].(float64))
					var want string
					switch c.codec {
					case "hevc":
						if m["profile"] != "Main" {
							t.Errorf("hevc profile %v", m["profile"])
						}
						want = fmt.Sprintf("hvc1.1.6.L%d.", level)
						if tag := m["codec_tag_string"]; u == j.Outputs.DASH && tag != "hvc1" {
							t.Errorf("DASH hevc sample entry %v, want hvc1", tag)
						}
					case "av1":
						want = fmt.Sprintf("av01.0.%02dM.08", level)
					}
					if !strings.HasPrefix(codecs[i], want) {
						t.Errorf("variant %d (%dp) CODECS %q, stream says %q (profile %v level %d)", i, h, codecs[i], want, m["profile"], level)
					}
				}
				if len(heights) != 2 {
					t.Errorf("%s: video heights %v", u, heights)
				}
			}
			for _, r := range j.Renditions {
				v := probeURL(t, n.base+j.Outputs.MP4[r.Name], "-count_frames", "-select_streams", "v:0", "-show_streams")
				s := v["streams"].([]any)[0].(map[string]any)
				if s["codec_name"] != c.codec || fmt.Sprint(s["nb_read_frames"]) != fmt.Sprint(frames) {
					t.Errorf("mp4 %s: %v with %v frames", r.Name, s["codec_name"], s["nb_read_frames"])
				}
			}
		})
	}
}

// TestQualityReport runs a job with a well-fed and a starved rung and
// reads the quality report from the job JSON and /metrics: the clean top
// rung scores SSIM > 0.9, the starved one lower SSIM and PSNR, and the
// frame counts are the source's (the chunks' sum and what ffprobe decodes).
func TestQualityReport(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	dir := t.TempDir()
	n := startNode(t, filepath.Join(dir, "data"), nil)
	src := genClip(t, filepath.Join(dir, "clip.mp4"), "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=5",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p")
	j := submit(t, n.base, src, `{"chunk_seconds":2,"renditions":["180p@1500k","144p@50k"]}`)
	j = waitJob(t, n.base, j.ID, 2*time.Minute)
	if j.State != "done" {
		t.Fatalf("job %s: %s (%s)", j.ID, j.State, j.Error)
	}
	frames := 0
	for _, c := range j.Chunks {
		frames += c.Frames
	}
	if frames != 125 {
		t.Errorf("chunks hold %d frames, want 125", frames)
	}
	good, bad := j.Renditions[0].Quality, j.Renditions[1].Quality
	if good == nil || bad == nil {
		t.Fatalf("no quality report: %+v", j.Renditions)
	}
	t.Logf("good %+v starved %+v", *good, *bad)
	if good.SSIM <= 0.9 || good.SSIM > 1 || good.PSNR < 30 || good.PSNR > 100 {
		t.Errorf("clean top rung: %+v", *good)
	}
	if !(bad.SSIM < good.SSIM && bad.PSNR < good.PSNR) {
		t.Errorf("starved rung %+v does not score below the clean one %+v", *bad, *good)
	}
	for _, r := range j.Renditions {
		q := r.Quality
		if q.Frames != frames || q.SampledFrames < transcoder.QualityWindows*(transcoder.QualityMinFrames-1) || q.SampledFrames > frames || q.SampledSeconds <= 0 {
			t.Errorf("%s: %+v", r.Name, *q)
		}
		v := probeURL(t, n.base+j.Outputs.MP4[r.Name], "-count_frames", "-select_streams", "v:0", "-show_streams")
		if got := fmt.Sprint(v["streams"].([]any)[0].(map[string]any)["nb_read_frames"]); got != fmt.Sprint(q.Frames) {
			t.Errorf("%s: ffprobe decodes %s frames, report says %d", r.Name, got, q.Frames)
		}
	}
	metrics := scrape(t, n.base)
	for _, want := range []string{`gosty_rendition_ssim_count{codec="h264"} 2`, `gosty_rendition_psnr_db_count{codec="h264"} 2`} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
