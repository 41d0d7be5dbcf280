package node

import (
	"encoding/json"
	"math"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHDRBothLadders runs an HDR10 phone clip (HEVC 10-bit PQ with
// mastering display and content light metadata) through a node with
// "dynamic_range":"both": the job records the metadata, and publishes an
// SDR h264 ladder (8-bit BT.709) and an HDR hevc one (10-bit, PQ, the HDR10
// SEI) in one HLS master (VIDEO-RANGE SDR and PQ) and one MPD (two video
// AdaptationSets, CICP on each), every rung with a quality score compared
// like with like. Its two chunks stitch into one 4 s stream per rung. (The
// source is closed-GOP like a phone's: a chunk cut at an open-GOP CRA
// keyframe, x265's default, decodes one leading picture short and fails
// the encode's frame check, for SDR sources too: a split bug of its own.)
func TestHDRBothLadders(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	dir := t.TempDir()
	n := startNode(t, filepath.Join(dir, "data"), nil)
	src := genClip(t, filepath.Join(dir, "phone.mp4"), "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=4",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=4",
		"-vf", "format=yuv420p10le", "-c:v", "libx265", "-preset", "ultrafast", "-x265-params",
		"log-level=error:keyint=50:open-gop=0:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc:hdr10=1:"+
			"master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1):max-cll=1000,400",
		"-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc", "-tag:v", "hvc1", "-c:a", "aac")
	id := submit(t, n.base, src, `{"chunk_seconds":2,"dynamic_range":"both","renditions":["180p@300k"]}`).ID
	if j := waitJob(t, n.base, id, 3*time.Minute); j.State != "done" {
		t.Fatalf("job %s: %s (%s)", id, j.State, j.Error)
	}
	var j struct {
		Source struct {
			Video struct {
				MasteringDisplay string `json:"mastering_display"`
				MaxCLL           int    `json:"max_cll"`
				MaxFALL          int    `json:"max_fall"`
			} `json:"video"`
		} `json:"source"`
		Renditions []struct {
			Name, Codec, Range string
			Quality            *struct {
				SSIM float64 `json:"ssim"`
			} `json:"quality"`
		} `json:"renditions"`
		Chunks  []struct{} `json:"chunks"`
		Outputs struct {
			HLS  string            `json:"hls"`
			DASH string            `json:"dash"`
			MP4  map[string]string `json:"mp4"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal(fetch(t, n.base+"/api/v1/jobs/"+id), &j); err != nil {
		t.Fatal(err)
	}
	if len(j.Chunks) != 2 {
		t.Errorf("%d chunks, want 2", len(j.Chunks))
	}
	if v := j.Source.Video; v.MasteringDisplay != "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)" || v.MaxCLL != 1000 || v.MaxFALL != 400 {
		t.Errorf("source HDR10 metadata %+v", v)
	}
	want := []struct{ name, codec, rng, pixFmt, transfer string }{
		{"180p", "h264", "", "yuv420p", "bt709"},
		{"180p-hdr", "hevc", "pq", "yuv420p10le", "smpte2084"},
	}
	if len(j.Renditions) != len(want) {
		t.Fatalf("renditions %+v", j.Renditions)
	}
	for i, w := range want {
		r := j.Renditions[i]
		if r.Name != w.name || r.Codec != w.codec || r.Range != w.rng {
			t.Errorf("rendition %d: %s %s %q, want %s %s %q", i, r.Name, r.Codec, r.Range, w.name, w.codec, w.rng)
		}
		if r.Quality == nil || r.Quality.SSIM < 0.95 {
			t.Errorf("%s: quality %+v, want SSIM >= 0.95 like with like", r.Name, r.Quality)
		}
		if vd, ad, _ := streamDurations(t, n.base+j.Outputs.MP4[r.Name]); math.Abs(vd-4) > 0.1 || math.Abs(ad-vd) > 0.1 {
			t.Errorf("%s: video %.3fs, audio %.3fs, want 4s", r.Name, vd, ad)
		}
		out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-read_intervals", "%+#1", "-show_frames",
			"-show_entries", "stream=pix_fmt,color_transfer:frame=side_data_list", "-of", "json", n.base+j.Outputs.MP4[r.Name]).Output()
		if err != nil {
			t.Fatalf("ffprobe %s: %v", r.Name, err)
		}
		s := string(out)
		if !strings.Contains(s, `"pix_fmt": "`+w.pixFmt+`"`) || !strings.Contains(s, `"color_transfer": "`+w.transfer+`"`) ||
			strings.Contains(s, "Mastering display metadata") != (w.rng == "pq") || strings.Contains(s, "Content light level metadata") != (w.rng == "pq") {
			t.Errorf("%s: want %s %s, HDR10 side data %v:\n%s", r.Name, w.pixFmt, w.transfer, w.rng == "pq", s)
		}
	}
	master := string(fetch(t, n.base+j.Outputs.HLS))
	for _, w := range []string{",VIDEO-RANGE=SDR", ",VIDEO-RANGE=PQ"} {
		if strings.Count(master, w) != 1 {
			t.Errorf("master has %d %q:\n%s", strings.Count(master, w), w, master)
		}
	}
	mpd := string(fetch(t, n.base+j.Outputs.DASH))
	if strings.Count(mpd, `contentType="video"`) != 2 || !strings.Contains(mpd, `cicp:TransferCharacteristics" value="16"`) ||
		!strings.Contains(mpd, `cicp:TransferCharacteristics" value="1"`) {
		t.Errorf("mpd wants an SDR and a PQ video AdaptationSet with CICP:\n%s", mpd)
	}
}
