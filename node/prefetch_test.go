package node

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/cluster/gc"
	"github.com/gosty/gosty/node/disk"
	"github.com/gosty/gosty/transcoder"
)

// gatedEncoder is a Transcoder whose chunk encodes each wait for their
// gate; the other kinds are not used here.
type gatedEncoder struct {
	Transcoder
	started chan int
	gates   [3]chan struct{}
}

func (g *gatedEncoder) EncodeChunk(ctx context.Context, c transcoder.Chunk, _ transcoder.EncodeSettings, dir string, _ transcoder.Progress) ([]string, error) {
	g.started <- c.Index
	select {
	case <-g.gates[c.Index]:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	p := filepath.Join(dir, "360p.mp4")
	return []string{p}, os.WriteFile(p, gatedOutput(c.Index), 0o640)
}

// gatedOutput is what gatedEncoder writes for chunk i.
func gatedOutput(i int) []byte {
	return []byte(fmt.Sprintf("TestWorkerPrefetchesQueuedInput chunk %d", i))
}

// MeasureWindows scores nothing: the quality windows are not this test's.
func (g *gatedEncoder) MeasureWindows(context.Context, []transcoder.QualityWindow, transcoder.Reference, []transcoder.Rendition, []string, string) ([]transcoder.WindowScore, error) {
	return nil, nil
}

// fsmLog applies proposals to the FSM at once, as a one-node cluster
// would, and keeps what it applied.
type fsmLog struct {
	t     *testing.T
	mu    sync.Mutex
	fsm   *cluster.FSM
	index uint64
	done  map[string]cluster.TaskResult
	hold  map[string]chan struct{} // results held until closed, by task id
}

func (l *fsmLog) Propose(_ context.Context, op cluster.Op, body any) error {
	if r, ok := body.(*cluster.TaskResult); ok && l.hold[r.TaskID] != nil {
		<-l.hold[r.TaskID] // a commit that takes its time
	}
	data, err := cluster.EncodeCommandV(l.fsm.LogVersion(), op, time.Now(), body)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.index++
	if err, _ := l.fsm.Apply(&raft.Log{Index: l.index, Type: raft.LogCommand, Data: data}).(error); err != nil {
		return err
	}
	if r, ok := body.(*cluster.TaskResult); ok {
		l.done[r.TaskID] = *r
	}
	return nil
}

func (l *fsmLog) must(op cluster.Op, body any) {
	l.t.Helper()
	if err := l.Propose(context.Background(), op, body); err != nil {
		l.t.Fatalf("%s: %v", op, err)
	}
}

func (l *fsmLog) task(id string) cluster.Task {
	var t cluster.Task
	l.fsm.Read(func(st *cluster.State) {
		if p, ok := st.Task(id); ok {
			t = *p
		}
	})
	return t
}

// Pipelining on the worker: with one slot and a queue of one, the queued
// encode's chunk is pulled while the first encode runs, the queued task
// starts as soon as the encoder frees the slot (before the first one's
// renditions are stored and its result committed), its result records
// the pulled copy,
// its lease is renewed by heartbeats while it waits, and a draining node
// hands a queued assignment back at once.
func TestWorkerPrefetchesQueuedInput(t *testing.T) {
	fsm := cluster.NewFSM(slog.New(slog.DiscardHandler))
	held := make(chan struct{})
	lg := &fsmLog{t: t, fsm: fsm, done: map[string]cluster.TaskResult{}, hold: map[string]chan struct{}{cluster.TaskID("j", cluster.TaskEncode, 0): held}}
	job := cluster.Job{
		ID: "j", Name: "clip.mp4", Origin: "n1",
		SourceBlob: cluster.BlobRef{Hash: strings.Repeat("a", 64), Size: 100},
		Source:     cluster.Probe{Duration: 3, Video: &cluster.VideoStream{Width: 640, Height: 360, FrameRate: 25, Duration: 3}},
		Renditions: []cluster.Rendition{{Name: "360p", Width: 640, Height: 360}},
	}
	lg.must(cluster.OpClusterUpgrade, cluster.ClusterUpgrade{Version: cluster.CommandVersion})
	lg.must(cluster.OpNodeJoin, cluster.NodeJoin{ID: "id1", Name: "n1"})
	lg.must(cluster.OpJobSubmit, cluster.SubmitJob{Job: job})
	split := cluster.TaskID("j", cluster.TaskSplit, 0)
	lg.must(cluster.OpTaskAssign, cluster.AssignTask{TaskID: split, Node: "n1", Term: 1, Attempt: 1})
	var chunks []cluster.Chunk
	for i := range 3 {
		chunks = append(chunks, cluster.Chunk{Index: i, Start: float64(i), Duration: 1, Frames: 25,
			Source: cluster.BlobRef{Hash: strings.Repeat(fmt.Sprint(i+1), 64), Size: 10}})
	}
	lg.must(cluster.OpTaskDone, &cluster.TaskResult{TaskID: split, Node: "n1", Attempt: 1, Chunks: chunks})
	enc := func(i int) string { return cluster.TaskID("j", cluster.TaskEncode, i) }

	dir := t.TempDir()
	blobs, err := cluster.OpenBlobStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	space, err := disk.New(disk.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		fetches []string // reason:chunk
		local   = map[string]bool{}
	)
	prefetched := make(chan string, 4)
	tc := &gatedEncoder{started: make(chan int, 3)}
	for i := range tc.gates {
		tc.gates[i] = make(chan struct{})
	}
	w := &worker{
		name: "n1", id: "id1", fsm: fsm, log: lg, blobs: blobs, tc: tc, slots: 1, queue: 1,
		logger: slog.New(slog.DiscardHandler), pins: gc.NewPins(), running: map[string]*taskRun{},
		metrics: newMetrics(fsm, DefaultConfig(), space),
		fetch: func(ctx context.Context, ref cluster.BlobRef, reason string) (string, bool, error) {
			mu.Lock()
			defer mu.Unlock()
			fetches = append(fetches, reason+":"+ref.Hash[:1])
			pulled := !local[ref.Hash] // the first fetch pulls it from a peer
			local[ref.Hash] = true
			if reason == "prefetch" {
				prefetched <- ref.Hash[:1]
			}
			return filepath.Join(dir, ref.Hash), pulled, nil
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); w.wg.Wait() }()
	lg.must(cluster.OpTaskAssign, cluster.AssignTask{TaskID: enc(0), Node: "n1", Term: 1, Attempt: 1})
	lg.must(cluster.OpTaskAssign, cluster.AssignTask{TaskID: enc(1), Node: "n1", Term: 1, Attempt: 1})
	release := sync.OnceFunc(func() { close(held) })
	defer release() // before the worker is stopped, should the test fail first
	// Chunk 0's rendition is stored here already, so that storing it again
	// passes the blob store's StoredAgain hook, which holds it until the
	// queued encode has started (or gives up, and the test fails below).
	ref0, err := blobs.Put(context.Background(), strings.NewReader(string(gatedOutput(0))))
	if err != nil {
		t.Fatal(err)
	}
	first := ref0.Hash
	storing, stored := make(chan struct{}), make(chan struct{})
	cluster.SetTestHooks(&cluster.TestHooks{StoredAgain: func(h string) {
		if h == first {
			close(storing)
			select {
			case <-stored:
			case <-time.After(20 * time.Second):
			}
		}
	}})
	defer cluster.SetTestHooks(nil)
	storedOnce := sync.OnceFunc(func() { close(stored) })
	defer storedOnce()
	go w.Run(ctx)

	wait := func(what string, ch <-chan int) int {
		t.Helper()
		select {
		case v := <-ch:
			return v
		case <-time.After(10 * time.Second):
			t.Fatalf("timed out waiting for %s", what)
			return 0
		}
	}
	if got := wait("the first encode", tc.started); got != 0 {
		t.Fatalf("chunk %d started first, want 0 (in order)", got)
	}
	select {
	case h := <-prefetched:
		if h != "2" {
			t.Fatalf("prefetched %s, want chunk 1's source", h)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the queued encode's input was not pulled while the slot was busy")
	}
	beat := map[string]bool{}
	for _, b := range w.beat().Tasks {
		beat[b.ID] = true
	}
	if !beat[enc(0)] || !beat[enc(1)] {
		t.Fatalf("the heartbeat must renew the running and the queued task: %+v", w.beat())
	}

	// The first encode ends; storing its rendition and committing its
	// result take their time, and the queued encode starts without
	// waiting for either.
	close(tc.gates[0])
	select {
	case <-storing:
	case <-time.After(10 * time.Second):
		t.Fatal("the first encode's rendition was not stored")
	}
	if got := wait("the queued encode while the first one's renditions are stored", tc.started); got != 1 {
		t.Fatalf("chunk %d started, want the queued 1", got)
	}
	storedOnce()
	release()
	// While chunk 1 runs, chunk 2 is assigned (queued) and the node drains:
	// the queued one goes back at once.
	lg.must(cluster.OpTaskAssign, cluster.AssignTask{TaskID: enc(2), Node: "n1", Term: 1, Attempt: 1})
	select {
	case <-prefetched:
	case <-time.After(10 * time.Second):
		t.Fatal("the newly queued encode's input was not pulled")
	}
	drained := make(chan struct{})
	go func() { w.drain(ctx, time.Minute); close(drained) }()
	deadline := time.Now().Add(10 * time.Second)
	for lg.task(enc(2)).State != cluster.TaskPending {
		if time.Now().After(deadline) {
			t.Fatalf("a draining node kept its queued assignment: %+v", lg.task(enc(2)))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if tk := lg.task(enc(2)); tk.Failures != 0 {
		t.Fatalf("a hand-back counts no failure: %+v", tk)
	}
	close(tc.gates[1])
	<-drained

	lg.mu.Lock()
	r := lg.done[enc(1)]
	lg.mu.Unlock()
	if len(r.Pulled) != 1 || r.Pulled[0].Hash != chunks[1].Source.Hash {
		t.Fatalf("the queued encode's result must record the prefetched copy; pulled %+v", r.Pulled)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(strings.Join(fetches, " "), "prefetch:2"); n != 1 {
		t.Fatalf("chunk 1's source was prefetched %d times: %v", n, fetches)
	}
	select {
	case i := <-tc.started:
		t.Fatalf("chunk %d started on a draining node", i)
	default:
	}
}
