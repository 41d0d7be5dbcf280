package httpapi

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gosty/gosty/cluster"
)

// TestJobViewQuality: each rendition of the job JSON carries its quality
// report, with the documented field names, and none when the job has none.
func TestJobViewQuality(t *testing.T) {
	j := cluster.Job{ID: "j", State: cluster.JobDone, Renditions: []cluster.Rendition{
		{Name: "360p", Width: 640, Height: 360, Bitrate: 800_000, Codec: "hevc"},
		{Name: "240p", Width: 426, Height: 240, Bitrate: 400_000, Codec: "hevc"}}}
	b, _ := json.Marshal(NewJobView(j, 1))
	if strings.Contains(string(b), "quality") || !strings.Contains(string(b), `"codec":"hevc"`) {
		t.Errorf("without a report: %s", b)
	}
	j.Quality = []cluster.Quality{{SSIM: 0.98, PSNR: 41.5, Frames: 250, SampledFrames: 75, SampledSeconds: 3}, {SSIM: 0.95, PSNR: 37, Frames: 250, SampledFrames: 75, SampledSeconds: 3}}
	b, _ = json.Marshal(NewJobView(j, 1))
	var v struct {
		Renditions []map[string]any `json:"renditions"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	q, _ := v.Renditions[1]["quality"].(map[string]any)
	if v.Renditions[1]["name"] != "240p" || q["ssim"] != 0.95 || q["psnr_db"] != 37.0 || q["frames"] != 250.0 ||
		q["sampled_frames"] != 75.0 || q["sampled_seconds"] != 3.0 {
		t.Errorf("rendition JSON %v", v.Renditions[1])
	}
}
