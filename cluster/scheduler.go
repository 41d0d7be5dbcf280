package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"
)

// Worker is a node that can take tasks, as the scheduler sees it.
type Worker struct {
	Name  string
	Slots int
}

// Workers tells the scheduler which nodes may take new tasks (alive, not
// leaving) and how many each may run at once, and which nodes are alive at
// all (a leaving node still finishes its tasks).
type Workers interface {
	Workers() []Worker
	Alive(name string) bool
}

// Scheduler runs on whichever node leads: it turns pending tasks into
// assignments. All its state is in the FSM, so a new leader simply starts
// over from the log after a Barrier.
type Scheduler struct {
	store   *Store
	workers Workers
	log     *slog.Logger
	// Tick bounds how long a change can wait for a round when no FSM
	// change wakes the loop (for example a node's slots freeing up).
	Tick time.Duration
	// A task's lease is LeaseBase plus LeasePerMediaSecond for every
	// second of media it covers, renewed by the worker's heartbeats.
	LeaseBase           time.Duration
	LeasePerMediaSecond time.Duration

	leases leases
	// Nodes that fail tasks again and again are left out for a while.
	AvoidAfter  int           // failures within AvoidWindow
	AvoidWindow time.Duration //
	failures    failureLog
}

// NewScheduler returns a scheduler over store that places work on workers.
func NewScheduler(store *Store, workers Workers, log *slog.Logger) *Scheduler {
	if log == nil {
		log = slog.Default()
	}
	return &Scheduler{store: store, workers: workers, log: log.With("component", "scheduler"), Tick: time.Second,
		LeaseBase: 15 * time.Second, LeasePerMediaSecond: time.Second,
		AvoidAfter: 3, AvoidWindow: 5 * time.Minute}
}

// Run schedules while this node leads, until ctx ends.
func (s *Scheduler) Run(ctx context.Context) {
	for {
		if s.store.IsLeader() {
			s.lead(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-s.store.LeaderCh():
		case <-time.After(s.Tick):
		}
	}
}

// lead runs scheduling rounds until leadership is lost or ctx ends.
func (s *Scheduler) lead(ctx context.Context) {
	bctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := s.store.Barrier(bctx)
	cancel()
	if err != nil {
		s.log.Warn("barrier failed; not scheduling yet", "err", err)
		return
	}
	term := s.store.Term()
	s.leases.reset() // every assignment gets a fresh lease from this leader
	s.log.Info("scheduling as leader", "term", term)
	t := time.NewTicker(s.Tick)
	defer t.Stop()
	for s.store.IsLeader() {
		changed := s.store.FSM().Changed()
		s.round(ctx, term)
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-t.C:
		}
	}
}

func (s *Scheduler) round(ctx context.Context, term uint64) {
	s.reclaim(ctx)
	s.recover(ctx)
	var plan []AssignTask
	s.store.FSM().Read(func(st *State) {
		now := time.Now()
		s.failures.observe(st, now)
		plan = Assignments(st, s.failures.filter(s.workers.Workers(), now, s.AvoidAfter, s.AvoidWindow))
	})
	for _, a := range plan {
		a.Term = term
		err := s.store.Propose(ctx, OpTaskAssign, a)
		switch {
		case err == nil:
			s.log.Info("task assigned", "task", a.TaskID, "node", a.Node, "attempt", a.Attempt)
		case errors.Is(err, ErrNotLeader), ctx.Err() != nil:
			return
		default:
			s.log.Warn("assignment refused", "task", a.TaskID, "err", err)
		}
	}
}

// reclaim takes tasks back from nodes that died (requeued: not the task's
// fault) and from runs whose lease lapsed (a failure: the node is alive but
// not making progress, say paused or wedged).
func (s *Scheduler) reclaim(ctx context.Context) {
	var assigned []*Task
	s.store.FSM().Read(func(st *State) {
		for _, t := range st.Tasks {
			if t.State == TaskAssigned {
				c := *t
				assigned = append(assigned, &c)
			}
		}
	})
	var fails []TaskFailure
	var live []*Task
	for _, t := range assigned {
		if !s.workers.Alive(t.Node) {
			fails = append(fails, TaskFailure{TaskID: t.ID, Node: t.Node, Attempt: t.Attempt,
				Reason: fmt.Sprintf("node %s is gone", t.Node), Requeue: true})
			continue
		}
		live = append(live, t)
	}
	for _, t := range s.leases.check(live, time.Now(), s.leaseTTL) {
		fails = append(fails, TaskFailure{TaskID: t.ID, Node: t.Node, Attempt: t.Attempt,
			Reason: fmt.Sprintf("lease expired: no heartbeat from %s for %v", t.Node, s.leaseTTL(t).Round(time.Second))})
	}
	for _, f := range fails {
		err := s.store.Propose(ctx, OpTaskFail, f)
		switch {
		case err == nil:
			s.log.Warn("task taken back", "task", f.TaskID, "node", f.Node, "attempt", f.Attempt, "reason", f.Reason)
		case errors.Is(err, ErrNotLeader), ctx.Err() != nil:
			return
		default:
			s.log.Debug("taking a task back refused", "task", f.TaskID, "err", err)
		}
	}
}

// recover redoes the work whose only copies died with a node: encoded
// chunks and the audio live on the node that made them until packaging, and
// chunk sources on the node that split. The source and published outputs
// are replicated and need no such care.
func (s *Scheduler) recover(ctx context.Context) {
	var rewinds []JobRewind
	s.store.FSM().Read(func(st *State) {
		held := func(b BlobRef) bool {
			if h := st.Blobs[b.Hash]; h != nil {
				for name := range h.Nodes {
					if s.workers.Alive(name) {
						return true
					}
				}
			}
			return false
		}
		for _, j := range st.Jobs {
			if j.State.Terminal() || !held(j.SourceBlob) {
				continue // nothing to redo from, or nothing to redo
			}
			r := JobRewind{JobID: j.ID}
			for _, c := range j.Chunks {
				lost := false
				for _, o := range c.Outputs {
					lost = lost || !held(o)
				}
				if lost {
					r.Chunks = append(r.Chunks, c.Index)
				}
				if (lost || len(c.Outputs) == 0) && !held(c.Source) {
					r.Resplit = true
				}
			}
			r.Audio = !j.Audio.IsZero() && !held(j.Audio)
			if len(r.Chunks) > 0 || r.Audio || r.Resplit {
				r.Reason = fmt.Sprintf("lost with a node: %d encoded chunks, audio %v, chunk sources %v", len(r.Chunks), r.Audio, r.Resplit)
				rewinds = append(rewinds, r)
			}
		}
	})
	for _, r := range rewinds {
		if err := s.store.Propose(ctx, OpJobRewind, r); err != nil {
			s.log.Warn("rewind refused", "job", r.JobID, "err", err)
			continue
		}
		s.log.Warn("job rewound", "job", r.JobID, "reason", r.Reason)
	}
}

// Progress is the last progress a worker reported for a task's current run
// (0 when unknown or not the leader).
func (s *Scheduler) Progress(taskID string) float64 { return s.leases.progress(taskID) }

// RunningProgress is what workers last reported for the running tasks of
// one job, by task id. Only the leader hears heartbeats, so followers ask
// it (over the internal API) to show the same progress it does.
func (s *Scheduler) RunningProgress(jobID string) (map[string]float64, error) {
	if !s.store.IsLeader() {
		return nil, fmt.Errorf("progress of %s: %w", jobID, ErrNotLeader)
	}
	return s.leases.running(jobID + "/"), nil
}

// failureLog remembers, in the leader's memory, when each node failed a
// task (not counting requeues: a death or a leave is not the node's fault).
type failureLog struct {
	seen map[string]int         // task id → failures already counted
	at   map[string][]time.Time // node → failure times
}

func (f *failureLog) observe(st *State, now time.Time) {
	if f.seen == nil {
		f.seen, f.at = map[string]int{}, map[string][]time.Time{}
	}
	for id, t := range st.Tasks {
		if t.Failures > f.seen[id] && t.FailedOn != "" {
			for range t.Failures - f.seen[id] {
				f.at[t.FailedOn] = append(f.at[t.FailedOn], now)
			}
		}
		f.seen[id] = t.Failures
	}
}

// filter leaves out workers with at least n failures within window, as long
// as some worker remains.
func (f *failureLog) filter(workers []Worker, now time.Time, n int, window time.Duration) []Worker {
	if n <= 0 {
		return workers
	}
	var keep []Worker
	for _, w := range workers {
		recent := 0
		for _, at := range f.at[w.Name] {
			if now.Sub(at) < window {
				recent++
			}
		}
		if recent < n {
			keep = append(keep, w)
		}
	}
	if len(keep) == 0 {
		return workers
	}
	return keep
}

var kindOrder = map[TaskKind]int{TaskSplit: 0, TaskAudio: 1, TaskEncode: 2, TaskPackage: 3}

// Assignments decides which pending tasks go where, given the nodes and
// their slots, in fairOrder (priority class, then a fair share between
// submitters, then older jobs first, and within a job the pipeline's order); a
// split or audio task must run where the source is, an encode prefers the
// node that holds its chunk and a package the node that holds most outputs.
func Assignments(st *State, workers []Worker) []AssignTask {
	free := map[string]int{}
	for _, w := range workers {
		free[w.Name] = w.Slots
	}
	for _, t := range st.Tasks {
		if t.State == TaskAssigned {
			if _, ok := free[t.Node]; ok {
				free[t.Node]--
			}
		}
	}
	var pending []*Task
	for _, t := range st.Tasks {
		j := st.Jobs[t.JobID]
		if t.State == TaskPending && j != nil && !j.State.Terminal() {
			pending = append(pending, t)
		}
	}
	pending = fairOrder(st, pending)

	// Two passes: first every task that can run where its input already is,
	// then the rest wherever a slot is free. A FIFO single pass would let an
	// early chunk take the slot on the node holding a later chunk.
	var out []AssignTask
	placed := map[string]bool{}
	for _, local := range []bool{true, false} {
		for _, t := range pending {
			if placed[t.ID] {
				continue
			}
			node := pick(st, t, workers, free, local)
			if node == "" {
				continue
			}
			free[node]--
			placed[t.ID] = true
			out = append(out, AssignTask{TaskID: t.ID, Node: node, Attempt: t.Attempt + 1})
		}
	}
	return out
}

// pick chooses a node with a free slot for t, or "" when none fits now.
// With localOnly, only a node that holds some of t's input qualifies.
func pick(st *State, t *Task, workers []Worker, free map[string]int, localOnly bool) string {
	j := st.Jobs[t.JobID]
	holds := func(node string, b BlobRef) bool {
		h := st.Blobs[b.Hash]
		return h != nil && h.Nodes[node]
	}
	score := func(node string) int { return 0 }
	switch t.Kind {
	case TaskSplit, TaskAudio:
		score = func(node string) int {
			if holds(node, j.SourceBlob) {
				return 1
			}
			return -1 // the source must be local: splitting is where bytes are cheapest
		}
	case TaskEncode:
		if t.Chunk < len(j.Chunks) {
			src := j.Chunks[t.Chunk].Source
			score = func(node string) int {
				if holds(node, src) {
					return 1
				}
				return 0
			}
		}
	case TaskPackage:
		score = func(node string) int {
			n := 0
			for _, c := range j.Chunks {
				for _, o := range c.Outputs {
					if holds(node, o) {
						n++
					}
				}
			}
			return n
		}
	}
	best, bestScore := "", -1
	for _, w := range workers {
		if free[w.Name] <= 0 {
			continue
		}
		// A node this task just failed on is avoided while others exist.
		if w.Name == t.FailedOn && len(workers) > 1 {
			continue
		}
		sc := score(w.Name)
		if sc < 0 || (localOnly && sc == 0) {
			continue
		}
		// Ties go to the node with more free slots, spreading the load.
		if sc > bestScore || (sc == bestScore && free[w.Name] > free[best]) {
			best, bestScore = w.Name, sc
		}
	}
	return best
}

// fairOrder sorts pending tasks for placement: by priority class (high,
// normal, low); within a class, submitters take turns, the one with the
// fewest tasks running (counting those already given a turn) going next,
// ties to the submitter with the oldest waiting job; each submitter's own
// tasks go oldest job first and in pipeline order. So one submitter's huge
// upload cannot starve another's small one, and a high-priority job
// overtakes everything queued below it (running tasks finish first: there
// is no preemption).
func fairOrder(st *State, pending []*Task) []*Task {
	byAge := func(a, b *Task) bool {
		ja, jb := st.Jobs[a.JobID], st.Jobs[b.JobID]
		if !ja.CreatedAt.Equal(jb.CreatedAt) {
			return ja.CreatedAt.Before(jb.CreatedAt)
		}
		if ja.ID != jb.ID {
			return ja.ID < jb.ID
		}
		if ka, kb := kindOrder[a.Kind], kindOrder[b.Kind]; ka != kb {
			return ka < kb
		}
		return a.Chunk < b.Chunk
	}
	sort.Slice(pending, func(a, b int) bool { return byAge(pending[a], pending[b]) })

	running := map[string]int{} // submitter → tasks assigned now
	for _, t := range st.Tasks {
		if j := st.Jobs[t.JobID]; t.State == TaskAssigned && j != nil {
			running[j.Submitter]++
		}
	}
	type class struct {
		queues map[string][]*Task // submitter → its tasks, in age order
		order  []string           // submitters by first appearance (oldest job first)
	}
	var classes [3]class
	for _, t := range pending {
		j := st.Jobs[t.JobID]
		c := &classes[j.Priority.rank()]
		if c.queues == nil {
			c.queues = map[string][]*Task{}
		}
		if _, ok := c.queues[j.Submitter]; !ok {
			c.order = append(c.order, j.Submitter)
		}
		c.queues[j.Submitter] = append(c.queues[j.Submitter], t)
	}
	out := make([]*Task, 0, len(pending))
	for _, c := range classes {
		for left := len(c.order); left > 0; {
			best := ""
			found := false
			for _, sub := range c.order { // oldest first, so ties go to it
				if len(c.queues[sub]) == 0 {
					continue
				}
				if !found || running[sub] < running[best] {
					best, found = sub, true
				}
			}
			out = append(out, c.queues[best][0])
			c.queues[best] = c.queues[best][1:]
			running[best]++
			if len(c.queues[best]) == 0 {
				left--
			}
		}
	}
	return out
}
