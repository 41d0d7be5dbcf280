package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/cluster/gc"
	"github.com/gosty/gosty/transcoder"
)

// proposer commits commands to the job log (on the leader, wherever it is).
type proposer interface {
	Propose(ctx context.Context, op cluster.Op, body any) error
}

// worker runs the tasks the leader assigned to this node: it watches the FSM,
// starts every assignment addressed here (up to slots), and cancels a run
// whose assignment is gone (job canceled, task reassigned). A restarted node
// finds its assignments in the replayed log and runs them again; outputs are
// content-addressed, so a rerun is harmless.
//
// Assignments are addressed by node name, so a node that came back under
// its name with an empty data dir (a new raft ID) would find its old
// self's assignments while it replays the log: it starts nothing while the
// log names another incarnation for its name, only once its own join is
// applied (from then on the assignments are its own to run).
type worker struct {
	name  string
	id    string // this node's raft ID
	fsm   *cluster.FSM
	log   proposer
	blobs *cluster.BlobStore
	tc    Transcoder
	// fetch returns the local path of a blob, pulling it from a peer first
	// when this node has no copy (pulled says so).
	fetch func(ctx context.Context, ref cluster.BlobRef, reason string) (path string, pulled bool, err error)
	slots int
	// queue is how many assignments beyond slots this node takes (it
	// gossips it): a queued encode's input is pulled ahead (prefetch.go).
	queue   int
	logger  *slog.Logger
	metrics *metrics
	pins    *gc.Pins
	// full, when set, says whether the node holds itself full: it then
	// starts no waiting assignment and hands them back.
	full func() bool
	// outOfSpace, when set, says whether a task's failure was for lack
	// of disk space (and, when it was, makes the node hold itself full and
	// gossip it before the failure is reported).
	outOfSpace func(error) bool
	// freeSlots, when set, counts the encode slots no other job than the
	// one named holds or waits for: the split plans its chunks for them.
	freeSlots func(jobID string) int

	// ctx is Run's: results are reported under it, not under the run's
	// own context, which ends as soon as the result is applied.
	ctx      context.Context
	mu       sync.Mutex
	wake     chan struct{}        // a run ended: reconcile now, a slot is free
	running  map[string]*taskRun  // by task id
	queued   map[string]*prefetch // pulls of queued assignments' inputs, by task id
	waiting  map[string]int       // assignments waiting for a slot: task id → attempt
	given    map[string]int       // assignments being handed back (giveBack): task id → attempt
	draining bool                 // start nothing new
	wg       sync.WaitGroup
}

type taskRun struct {
	attempt  int
	cancel   context.CancelFunc
	progress float64
	// released says the run no longer holds a slot: its encoder (or
	// splitter, packager) is done and what is left is storing the outputs
	// and committing the result, which a queued task need not wait for.
	// The run stays listed so that its assignment is not run again before
	// the result is applied.
	released bool
}

func (w *worker) Run(ctx context.Context) {
	w.mu.Lock()
	w.ctx = ctx
	if w.wake == nil {
		w.wake = make(chan struct{}, 1)
	}
	wake := w.wake
	w.mu.Unlock()
	defer w.wg.Wait()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		changed := w.fsm.Changed()
		w.reconcile(ctx)
		select {
		case <-ctx.Done():
			w.mu.Lock()
			for _, r := range w.running {
				r.cancel()
			}
			w.mu.Unlock()
			return
		case <-changed:
		case <-wake:
		case <-tick.C:
		}
	}
}

// reconcile makes the set of running tasks match the assignments for this
// node in the FSM: it starts waiting assignments while slots are free
// (those whose input is already here first), pulls the input of the
// queued ones, and cancels the runs and pulls whose assignment is gone.
func (w *worker) reconcile(ctx context.Context) {
	mine, waiting := w.assignments()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.waiting == nil {
		w.queued, w.waiting, w.given = map[string]*prefetch{}, map[string]int{}, map[string]int{}
	}
	for id, r := range w.running {
		if attempt, ok := mine[id]; !ok || attempt != r.attempt {
			r.cancel() // the assignment is gone: canceled job or reassigned task
		}
	}
	w.dropPrefetches(mine)
	w.order(waiting)
	clear(w.waiting)
	for id, attempt := range w.given {
		if mine[id] != attempt {
			delete(w.given, id) // its hand-back is applied (or it was reassigned)
		}
	}
	full := w.full != nil && w.full()
	for _, s := range waiting {
		switch {
		case w.draining:
		case full: // no room for its work files: it goes where there is
			w.giveBack(ctx, s.task, "handed back: node "+w.name+" is out of space")
		case w.busy() < w.slots || w.running[s.task.ID] != nil:
			w.start(ctx, s.task)
		case w.queued[s.task.ID] == nil && len(w.queued) < w.queue:
			if !s.input.IsZero() {
				w.startPrefetch(ctx, s.task, s.input)
			}
		}
		if w.running[s.task.ID] == nil {
			w.waiting[s.task.ID] = s.task.Attempt
		}
	}
	w.metrics.tasksInFlight.Set(float64(len(w.running)))
}

// waitingTask is an assignment of this node that no run of its attempt
// is on, with the blob it reads first if that is worth pulling before it
// starts: an encode's chunk source (the other kinds read the source or
// many blobs, and start first anyway).
type waitingTask struct {
	task  cluster.Task
	input cluster.BlobRef
}

// assignments reads this node's assignments from the FSM (task id →
// attempt) and those of them not running. It runs at every change the
// node applies, so it reads no job whole (a long job has thousands of
// chunks): a run reads its job when it starts (start).
func (w *worker) assignments() (mine map[string]int, waiting []waitingTask) {
	mine = map[string]int{}
	w.fsm.Read(func(st *cluster.State) {
		if inc := st.Incarnation(w.name); inc != "" && inc != w.id {
			return // replaying an older incarnation's history
		}
		st.Tasks(func(t *cluster.Task) bool {
			if t.State == cluster.TaskAssigned && t.Node == w.name {
				mine[t.ID] = t.Attempt
			}
			return true
		})
		w.mu.Lock()
		defer w.mu.Unlock()
		for id, attempt := range mine {
			if r, ok := w.running[id]; ok && r.attempt == attempt {
				continue
			}
			t, _ := st.Task(id)
			s := waitingTask{task: *t}
			if c, ok := st.Chunk(t.JobID, t.Chunk); ok && t.Kind == cluster.TaskEncode {
				s.input = c.Source
			}
			waiting = append(waiting, s)
		}
	})
	return mine, waiting
}

// order sorts waiting assignments in the order they start (w.mu is
// held): a split, audio or package task first (a job's critical path),
// then encodes whose input is already pulled, then by job and chunk.
func (w *worker) order(waiting []waitingTask) {
	rank := func(s waitingTask) int {
		if s.task.Kind != cluster.TaskEncode {
			return 0
		}
		if p := w.queued[s.task.ID]; p != nil && p.ready() {
			return 1
		}
		return 2
	}
	slices.SortFunc(waiting, func(a, b waitingTask) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(a.task.JobID, b.task.JobID),
			cmp.Compare(a.task.Chunk, b.task.Chunk), cmp.Compare(a.task.ID, b.task.ID))
	})
}

// start runs an assignment (w.mu is held), replacing a run of an older
// attempt. The run reads its job from the FSM as it begins (a job
// canceled meanwhile is gone: the run ends at once, and reconcile has
// canceled it).
func (w *worker) start(ctx context.Context, t cluster.Task) {
	if r, ok := w.running[t.ID]; ok {
		r.cancel()
	}
	rctx, cancel := context.WithCancel(ctx)
	r := &taskRun{attempt: t.Attempt, cancel: cancel}
	w.running[t.ID] = r
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer cancel()
		var j cluster.Job
		w.fsm.Read(func(st *cluster.State) { j, _ = st.Job(t.JobID) })
		w.execute(rctx, t, j, r)
		w.mu.Lock()
		if w.running[t.ID] == r {
			delete(w.running, t.ID)
		}
		w.mu.Unlock()
		// The result's entry may hold this slot's next assignment: look
		// now, not at the next tick.
		w.poke()
	}()
}

// poke has Run reconcile now.
func (w *worker) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// busy is how many slots runs hold (w.mu is held): those still working,
// not those that released theirs.
func (w *worker) busy() int {
	n := 0
	for _, r := range w.running {
		if !r.released {
			n++
		}
	}
	return n
}

// progressOf is the fraction done of this node's run of a task (0 if none).
func (w *worker) progressOf(taskID string) float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if r, ok := w.running[taskID]; ok {
		return r.progress
	}
	return 0
}

func (w *worker) setProgress(r *taskRun, p float64) {
	w.mu.Lock()
	r.progress = p
	w.mu.Unlock()
}

// execute runs one task and reports its result or failure to the log.
func (w *worker) execute(ctx context.Context, t cluster.Task, j cluster.Job, r *taskRun) {
	log := w.logger.With("job", t.JobID, "task", t.ID, "kind", t.Kind, "attempt", t.Attempt)
	if t.Kind == cluster.TaskEncode {
		log = log.With("chunk", t.Chunk)
	}
	if j.ID == "" {
		return
	}
	dir := filepath.Join(w.blobs.TempDir(), fmt.Sprintf("%s-%d", strings.ReplaceAll(t.ID, "/", "_"), t.Attempt))
	if err := os.MkdirAll(dir, 0o750); err != nil {
		w.report(ctx, log, t, nil, fmt.Errorf("work dir: %w", err))
		return
	}
	defer os.RemoveAll(dir)

	log.Info("task started")
	start := time.Now()
	res := &cluster.TaskResult{TaskID: t.ID, Node: w.name, Attempt: t.Attempt}
	var err error
	switch t.Kind {
	case cluster.TaskSplit:
		err = w.split(ctx, j, dir, res)
	case cluster.TaskAudio:
		err = w.audio(ctx, j, dir, res)
	case cluster.TaskEncode:
		err = w.encode(ctx, j, t.Chunk, dir, res, func(p float64) { w.setProgress(r, p) }, func() { w.release(r) })
	case cluster.TaskPackage:
		err = w.pack(ctx, j, dir, res)
	default:
		err = fmt.Errorf("unknown task kind %q", t.Kind)
	}
	if ctx.Err() != nil {
		log.Info("task stopped", "reason", context.Cause(ctx))
		return
	}
	if err == nil {
		elapsed := time.Since(start)
		log.Info("task done", "seconds", elapsed.Seconds())
		if t.Kind == cluster.TaskEncode {
			w.metrics.observeEncode(j.Options.Codec, elapsed, t.Duration)
		}
	}
	w.release(r) // a queued task need not wait for the commit
	w.mu.Lock()
	rctx := w.ctx
	w.mu.Unlock()
	w.report(rctx, log, t, res, err)
}

// release frees r's slot for the next task (once; see taskRun.released).
func (w *worker) release(r *taskRun) {
	w.mu.Lock()
	was := r.released
	r.released = true
	w.mu.Unlock()
	if !was {
		w.poke()
	}
}

// report commits the outcome, retrying while the log is unavailable (an
// election, say). A stale verdict means someone else owns the task now.
func (w *worker) report(ctx context.Context, log *slog.Logger, t cluster.Task, res *cluster.TaskResult, runErr error) {
	op, body := cluster.OpTaskDone, any(res)
	if runErr != nil {
		// Out of space is the node's trouble, not the media's: never
		// permanent, and one ordinary failure (the retry is placed on
		// another node: this one holds itself full and says so first).
		noSpace := w.outOfSpace != nil && w.outOfSpace(runErr)
		permanent := transcoder.IsMediaError(runErr) && !noSpace
		log.Warn("task failed", "err", runErr, "permanent", permanent, "no_space", noSpace)
		op = cluster.OpTaskFail
		// A missing input (its only holders died) is not the task's fault:
		// the leader redoes the lost work and the task waits for it.
		lost := errors.Is(runErr, cluster.ErrNotFound) && !noSpace
		reason := failureReason(runErr)
		if noSpace {
			reason = "out of space on the data volume of " + w.name + ": " + reason
		}
		body = cluster.TaskFailure{TaskID: t.ID, Node: w.name, Attempt: t.Attempt,
			Reason: reason, Permanent: permanent,
			Requeue: lost, Lost: lost && w.fsm.LogVersion() >= cluster.LogV2}
	}
	defer w.pins.Release(res)
	if res != nil && w.fsm.LogVersion() < cluster.LogV2 {
		res.Pulled = nil // version 1 recorded them as they came (fetch)
	}
	backoff := 100 * time.Millisecond
	for {
		err := w.log.Propose(ctx, op, body)
		switch {
		case err == nil:
			return
		case errors.Is(err, cluster.ErrStale), errors.Is(err, cluster.ErrNotFound), errors.Is(err, cluster.ErrInvalid):
			log.Warn("task result refused", "err", err)
			return
		}
		log.Warn("reporting task result failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// failureReason is what the job's error field shows: the media problem as
// the transcoder phrased it, or the error chain.
func failureReason(err error) string {
	var me *transcoder.MediaError
	if errors.As(err, &me) {
		return me.Reason
	}
	s := err.Error()
	if len(s) > 2000 {
		s = s[:2000] + "…"
	}
	return s
}

// store moves a produced file into the blob store and pins it until the
// result that names it is committed.
func (w *worker) store(res *cluster.TaskResult, path string) (cluster.BlobRef, error) {
	return w.blobs.PutFile(path, w.pins.Holder(res))
}

// input fetches a task's input; a copy pulled from a peer is recorded in
// the task's result.
func (w *worker) input(ctx context.Context, ref cluster.BlobRef, res *cluster.TaskResult) (string, error) {
	prefetched := w.takePrefetch(ctx, res.TaskID, res.Attempt, ref)
	p, pulled, err := w.fetch(ctx, ref, "task")
	pulled = pulled || (prefetched && err == nil)
	if err == nil && pulled {
		res.Pulled = append(res.Pulled, ref)
	}
	return p, err
}

// active is how many tasks this node is running now.
func (w *worker) active() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.running)
}

// beat lists the tasks this node is running and those queued for its
// slots, for the leader's leases.
func (w *worker) beat() cluster.Heartbeat {
	w.mu.Lock()
	defer w.mu.Unlock()
	hb := cluster.Heartbeat{Node: w.name}
	for id, r := range w.running {
		hb.Tasks = append(hb.Tasks, cluster.TaskBeat{ID: id, Attempt: r.attempt, Progress: r.progress})
	}
	for id, attempt := range w.waiting { // a lease covers its wait for a slot
		if w.running[id] == nil {
			hb.Tasks = append(hb.Tasks, cluster.TaskBeat{ID: id, Attempt: attempt})
		}
	}
	return hb
}
