package node

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosty/gosty/node/nodetest"
	"github.com/gosty/gosty/transcoder"
)

// windowCounter records where quality windows are measured.
type windowCounter struct {
	Transcoder
	mu                   sync.Mutex
	byEncode, byPackager int
	fail                 bool // the encodes' measurements fail
}

func (c *windowCounter) MeasureWindows(ctx context.Context, ws []transcoder.QualityWindow, ref transcoder.Reference, rs []transcoder.Rendition, videos []string, dir string) ([]transcoder.WindowScore, error) {
	packaged := strings.Contains(filepath.ToSlash(videos[0]), "/out/mp4/")
	c.mu.Lock()
	fail := c.fail && !packaged
	if packaged {
		c.byPackager += len(ws)
	} else if !fail {
		c.byEncode += len(ws)
	}
	c.mu.Unlock()
	if fail {
		return nil, context.DeadlineExceeded
	}
	return c.Transcoder.MeasureWindows(ctx, ws, ref, rs, videos, dir)
}

// The quality report of a job whose chunk length is planned comes from
// the encodes: every sample window is scored by the encode of its chunk,
// none by the packager. When an encode cannot score its windows, the
// packager measures them, and the report is the same.
func TestQualityScoredByTheEncodes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "clip.mp4")
	nodetest.GenClip(t, src, "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=10",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-pix_fmt", "yuv420p")
	var reports [][]float64
	for _, fail := range []bool{false, true} {
		var tc *windowCounter
		n := startNodeWith(t, filepath.Join(dir, "data", map[bool]string{false: "ok", true: "fail"}[fail]), nil, func(n *Node) {
			tc = &windowCounter{Transcoder: n.tc, fail: fail}
			n.tc, n.worker.tc = tc, tc
		})
		j := submit(t, n.base, src, `{"renditions":["180p@1500k","144p@50k"]}`)
		j = waitJob(t, n.base, j.ID, 2*time.Minute)
		n.stop()
		if j.State != "done" {
			t.Fatalf("job %s: %s (%s)", j.ID, j.State, j.Error)
		}
		if len(j.Chunks) != 2 { // 10 s on 2 slots: 6 and 4 s at a 2 s GOP
			t.Errorf("%d chunks, planned 2", len(j.Chunks))
		}
		var report []float64
		for _, r := range j.Renditions {
			if r.Quality == nil || r.Quality.SampledFrames < transcoder.QualityWindows*(transcoder.QualityMinFrames-1) {
				t.Fatalf("rendition %s: quality %+v", r.Name, r.Quality)
			}
			report = append(report, r.Quality.SSIM, r.Quality.PSNR, float64(r.Quality.SampledFrames))
		}
		reports = append(reports, report)
		tc.mu.Lock()
		byEncode, byPackager := tc.byEncode, tc.byPackager
		tc.mu.Unlock()
		if want := map[bool][2]int{false: {3, 0}, true: {0, 3}}[fail]; byEncode != want[0] || byPackager != want[1] {
			t.Errorf("encodes failing %v: %d windows scored by the encodes, %d by the packager; want %v", fail, byEncode, byPackager, want)
		}
	}
	// The encodes are deterministic (same settings, same threads), so the
	// two jobs' renditions are the same and so must their reports be.
	if len(reports) == 2 && !slices.Equal(reports[0], reports[1]) {
		t.Errorf("the report scored by the encodes %v differs from the packager's %v", reports[0], reports[1])
	}
}
