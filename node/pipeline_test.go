package node

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestPipelineGoodClips uploads generated clips to a real one-node cluster
// (raft on BoltDB, real ffmpeg, real HTTP) and checks what a player would:
// HLS and DASH open through the node, every rendition has the source's
// duration and its planned height, audio matches video, and keyframes fall
// at the same times in every rendition.
func TestPipelineGoodClips(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	dir := t.TempDir()
	n := startNode(t, filepath.Join(dir, "data"), nil)
	cases := []struct {
		name      string
		args      []string
		options   string
		audio     bool
		minChunks int
	}{
		{"landscape-with-audio", []string{"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=10",
			"-f", "lavfi", "-i", "sine=frequency=440:duration=10", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
			"-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"}, `{"chunk_seconds":4}`, true, 2},
		{"portrait", []string{"-f", "lavfi", "-i", "testsrc2=size=360x640:rate=30:duration=6",
			"-f", "lavfi", "-i", "sine=frequency=220:duration=6", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30",
			"-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"}, ``, true, 1},
		{"no-audio", []string{"-f", "lavfi", "-i", "testsrc2=size=480x270:rate=24:duration=6",
			"-c:v", "libx264", "-preset", "ultrafast", "-g", "24", "-pix_fmt", "yuv420p"}, `{"chunk_seconds":3}`, false, 2},
		{"keyframes-far-apart", []string{"-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=16",
			"-f", "lavfi", "-i", "sine=frequency=330:duration=16", "-c:v", "libx264", "-preset", "ultrafast",
			"-g", "1000", "-keyint_min", "1000", "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"}, `{"chunk_seconds":4}`, true, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := genClip(t, filepath.Join(dir, tc.name+".mp4"), tc.args...)
			j := submit(t, n.base, src, tc.options)
			j = waitJob(t, n.base, j.ID, 4*time.Minute)
			if j.State != "done" {
				t.Fatalf("job %s: %s (%s)", j.ID, j.State, j.Error)
			}
			if j.Progress != 1 {
				t.Errorf("done job progress %v", j.Progress)
			}
			if len(j.Chunks) < tc.minChunks {
				t.Errorf("want at least %d chunks, got %d", tc.minChunks, len(j.Chunks))
			}
			for _, c := range j.Chunks {
				if c.EncodedBy != "n1" || c.Frames == 0 {
					t.Errorf("chunk %+v", c)
				}
				if c.Duration > 12.01 {
					t.Errorf("chunk %d is %.2fs, longer than the bound", c.Index, c.Duration)
				}
			}
			if j.Outputs.HLS == "" || j.Outputs.DASH == "" || len(j.Outputs.MP4) != len(j.Renditions) {
				t.Fatalf("outputs: %+v", j.Outputs)
			}
			srcDur := j.Source.Video.Duration

			// HLS and DASH open through the node's HTTP server with one video
			// stream per rendition.
			for _, u := range []string{j.Outputs.HLS, j.Outputs.DASH} {
				v := probeURL(t, n.base+u, "-show_streams")
				videos := 0
				for _, s := range v["streams"].([]any) {
					if s.(map[string]any)["codec_type"] == "video" {
						videos++
					}
				}
				if videos != len(j.Renditions) {
					t.Errorf("%s: %d video streams, want %d", u, videos, len(j.Renditions))
				}
			}

			var refKeys []float64
			for i, r := range j.Renditions {
				u := n.base + j.Outputs.MP4[r.Name]
				vd, ad, h := streamDurations(t, u)
				if math.Abs(vd-srcDur) > 0.1 {
					t.Errorf("%s: video %.3fs, source %.3fs", r.Name, vd, srcDur)
				}
				if tc.audio && math.Abs(ad-vd) > 0.1 {
					t.Errorf("%s: audio %.3fs vs video %.3fs", r.Name, ad, vd)
				}
				if !tc.audio && ad != 0 {
					t.Errorf("%s: audio in a video-only job", r.Name)
				}
				if h != r.Height || r.Height%2 != 0 || r.Width%2 != 0 {
					t.Errorf("%s: height %d, planned %dx%d", r.Name, h, r.Width, r.Height)
				}
				keys := keyframeTimes(t, u)
				if i == 0 {
					refKeys = keys
					if len(keys) < 2 {
						t.Errorf("%s: only %d keyframes", r.Name, len(keys))
					}
				} else if !slices.Equal(keys, refKeys) {
					t.Errorf("keyframes of %s %v differ from %s %v", r.Name, keys, j.Renditions[0].Name, refKeys)
				}
			}
		})
	}
	// Every job finished while the node watched: the job-level series count
	// them once each.
	metrics := scrape(t, n.base)
	for _, want := range []string{
		fmt.Sprintf(`gosty_jobs_finished_total{state="done"} %d`, len(cases)),
		fmt.Sprintf(`gosty_job_duration_seconds_count{codec="h264"} %d`, len(cases)),
	} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestBadInputs sends hostile and broken uploads. Each gets a 4xx with a
// readable message (or a failed job with a reason); no playlist reaches the
// files or the HTTP listener it names; and the node keeps working.
func TestBadInputs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	dir := t.TempDir()
	n := startNode(t, filepath.Join(dir, "data"), nil)

	var hits atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	trap := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte("#EXTM3U\n"))
	})}
	go trap.Serve(ln)
	defer trap.Close()
	trapURL := "http://" + ln.Addr().String()

	good := genClip(t, filepath.Join(dir, "good.mp4"), "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=4",
		"-f", "lavfi", "-i", "sine=duration=4", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest")
	goodData, _ := os.ReadFile(good)
	remux := func(ext string) []byte {
		p := genClip(t, filepath.Join(dir, "good."+ext), "-i", good, "-c", "copy")
		b, _ := os.ReadFile(p)
		return b
	}
	goodTS, goodMKV := remux("ts"), remux("mkv")
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rnd := make([]byte, 64<<10)
	for i := range rnd {
		rnd[i] = byte(i*7919 + i/13)
	}
	cases := []struct {
		name, file, options string
	}{
		{"empty", write("empty.mp4", nil), ""},
		{"text", write("notes.mp4", []byte(strings.Repeat("this is not a video\n", 200))), ""},
		{"random-bytes", write("noise.mp4", rnd), ""},
		{"hls-to-passwd", write("list.m3u8", []byte("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n")), ""},
		{"hls-to-listener", write("remote.mp4", []byte("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n"+trapURL+"/seg.ts\n#EXT-X-ENDLIST\n")), ""},
		{"ffconcat-to-passwd", write("concat.txt", []byte("ffconcat version 1.0\nfile /etc/passwd\n")), ""},
		{"truncated-mp4", write("half.mp4", goodData[:len(goodData)/2]), ""},
		// An upload that broke off ends at an arbitrary byte, not on a 188-byte packet boundary.
		{"truncated-mpegts", write("half.ts", goodTS[:len(goodTS)*2/5+37]), ""},
		{"truncated-mkv", write("half.mkv", goodMKV[:len(goodMKV)*2/5]), ""},
		{"image-sequence-pattern", write("img%03d.png", []byte("\x89PNG\r\n\x1a\n")), ""},
		{"malformed-options", good, `{"codec":`},
		{"unknown-option", good, `{"colour":"blue"}`},
		{"upscale-request", good, `{"renditions":["1080p"]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := upload(t, n.base, tc.file, tc.options)
			switch {
			case code >= 400 && code < 500:
				if !strings.Contains(string(body), `"message"`) || strings.Contains(string(body), `"message":""`) {
					t.Fatalf("%d without a readable message: %s", code, body)
				}
				t.Logf("%d %s", code, body)
			case code == http.StatusCreated:
				j := submitted(t, body)
				j = waitJob(t, n.base, j.ID, 2*time.Minute)
				if j.State != "failed" || j.Error == "" {
					t.Fatalf("accepted bad input ended %s (%q)", j.State, j.Error)
				}
			default:
				t.Fatalf("status %d: %s", code, body)
			}
		})
	}
	if h := hits.Load(); h != 0 {
		t.Fatalf("a hostile playlist made the node fetch from the listener %d times", h)
	}
	// The node still does real work.
	j := waitJob(t, n.base, submit(t, n.base, good, "").ID, 2*time.Minute)
	if j.State != "done" {
		t.Fatalf("good job after bad inputs: %s %s", j.State, j.Error)
	}
}

func submitted(t *testing.T, body []byte) apiJob {
	t.Helper()
	var j apiJob
	if err := jsonUnmarshal(body, &j); err != nil {
		t.Fatal(err)
	}
	return j
}
