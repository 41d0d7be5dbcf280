package node

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/cluster/gc"
	"github.com/gosty/gosty/node/disk"
)

// A node that came back under its name with an empty data dir replays its
// old self's assignments: its worker starts none of them until the log
// records its own join, and then runs what is addressed to its name.
func TestWorkerIgnoresAnOlderIncarnationsAssignments(t *testing.T) {
	fsm := cluster.NewFSM(slog.New(slog.DiscardHandler))
	index := uint64(0)
	apply := func(op cluster.Op, body any) {
		t.Helper()
		data, err := cluster.EncodeCommand(op, time.Now(), body)
		if err != nil {
			t.Fatal(err)
		}
		index++
		if err, _ := fsm.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: data}).(error); err != nil {
			t.Fatalf("%s: %v", op, err)
		}
	}
	job := cluster.Job{
		ID: "j", Name: "clip.mp4", Origin: "n1",
		SourceBlob: cluster.BlobRef{Hash: strings.Repeat("a", 64), Size: 100},
		Source:     cluster.Probe{Duration: 12, Video: &cluster.VideoStream{Width: 640, Height: 360, FrameRate: 25, Duration: 12}},
		Renditions: []cluster.Rendition{{Name: "360p", Width: 640, Height: 360}},
	}
	apply(cluster.OpNodeJoin, cluster.NodeJoin{ID: "old", Name: "n1"})
	apply(cluster.OpJobSubmit, cluster.SubmitJob{Job: job})
	apply(cluster.OpTaskAssign, cluster.AssignTask{TaskID: "j/split", Node: "n1", Term: 1, Attempt: 1})

	fetched := make(chan string, 4)
	dir := t.TempDir()
	blobs, err := cluster.OpenBlobStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	space, err := disk.New(disk.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	w := &worker{
		name: "n1", id: "new", fsm: fsm, blobs: blobs, slots: 1,
		logger: slog.New(slog.DiscardHandler), pins: gc.NewPins(), running: map[string]*taskRun{},
		metrics: newMetrics(fsm, DefaultConfig(), space),
		fetch: func(ctx context.Context, ref cluster.BlobRef, reason string) (string, bool, error) {
			fetched <- ref.Hash
			<-ctx.Done()
			return "", false, ctx.Err()
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); w.wg.Wait() }()
	w.ctx = ctx

	w.reconcile(ctx)
	if w.active() != 0 {
		t.Fatalf("started %d of an older incarnation's tasks", w.active())
	}
	apply(cluster.OpNodeJoin, cluster.NodeJoin{ID: "new", Name: "n1"})
	w.reconcile(ctx)
	select {
	case h := <-fetched:
		if h != job.SourceBlob.Hash {
			t.Fatalf("fetched %s, want the source", h)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the split addressed to this node's name did not start once its join was applied")
	}
}
