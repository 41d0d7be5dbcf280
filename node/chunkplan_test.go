package node

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/node/nodetest"
	"github.com/gosty/gosty/transcoder"
)

// The split plans a job's chunks again for the slots free when it runs:
// a job submitted into a busy cluster was planned with the default
// length and is cut for the slots free now; a user's chunk_seconds is
// kept; without a count (a test's worker) the submit's plan stands.
func TestSplitPlansForTheSlotsFreeThen(t *testing.T) {
	src := cluster.Probe{Duration: 15, Video: &cluster.VideoStream{Width: 640, Height: 360, FrameRate: 25, Duration: 15}}
	busy := cluster.Job{ID: "j", Source: src, ChunkSeconds: transcoder.PlanChunkSeconds(15, 0)} // submitted with no slot free
	var asked string
	free := func(id string) int { asked = id; return 2 }
	plan := splitPlan(busy, free)
	if asked != "j" || !plan.Equal || plan.Seconds != transcoder.PlanChunkSeconds(15, 2) {
		t.Fatalf("plan %+v (asked for %q), want equal chunks of %g s for 2 slots", plan, asked, transcoder.PlanChunkSeconds(15, 2))
	}
	if got, was := plan.Count(15), (transcoder.ChunkPlan{Seconds: busy.ChunkSeconds, Equal: true}).Count(15); got != 4 || was != 3 {
		t.Fatalf("15 s: %d chunks for 2 free slots (want 4), %d as submitted (want 3)", got, was)
	}
	user := busy
	user.Options.ChunkSeconds, user.ChunkSeconds = 3, 3
	if plan := splitPlan(user, func(string) int { t.Fatal("a user's chunk_seconds asks for no count"); return 0 }); plan.Equal || plan.Seconds != 3 {
		t.Fatalf("chunk_seconds 3: plan %+v", plan)
	}
	if plan := splitPlan(busy, nil); plan.Seconds != busy.ChunkSeconds || !plan.Equal {
		t.Fatalf("without a count: plan %+v, want the submit's", plan)
	}
}

// gatedEncodes holds every chunk encode until open is closed.
type gatedEncodes struct {
	Transcoder
	started chan struct{}
	open    chan struct{}
}

func (g *gatedEncodes) EncodeChunk(ctx context.Context, c transcoder.Chunk, s transcoder.EncodeSettings, dir string, p transcoder.Progress) ([]string, error) {
	g.started <- struct{}{}
	select {
	case <-g.open:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.Transcoder.EncodeChunk(ctx, c, s, dir, p)
}

// freeSlots on a real node: a job whose encodes hold both slots leaves
// none free for another job, and both free for itself (its own tasks do
// not count against its split's plan).
func TestFreeSlotsLeaveOutTheJobItself(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "clip.mp4")
	nodetest.GenClip(t, src, "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=8",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p")
	g := &gatedEncodes{started: make(chan struct{}, 8), open: make(chan struct{})}
	n := startNodeWith(t, filepath.Join(dir, "data"), nil, func(n *Node) {
		g.Transcoder = n.tc
		n.tc, n.worker.tc = g, g
	})
	defer n.stop()
	if got := n.freeSlots(""); got != 2 {
		t.Fatalf("an idle node with 2 slots: %d free", got)
	}
	j := submit(t, n.base, src, `{"renditions":["90p@100k"]}`)
	for range 2 {
		select {
		case <-g.started:
		case <-time.After(time.Minute):
			close(g.open)
			t.Fatal("the job's two encodes did not start")
		}
	}
	other, own := n.freeSlots(""), n.freeSlots(j.ID)
	close(g.open)
	if other != 0 || own != 2 {
		t.Errorf("both slots encoding job %s: %d free for another job (want 0), %d for itself (want 2)", j.ID, other, own)
	}
	if j = waitJob(t, n.base, j.ID, 2*time.Minute); j.State != "done" {
		t.Fatalf("job %s: %s (%s)", j.ID, j.State, j.Error)
	}
}
