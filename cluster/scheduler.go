package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"
)

// Worker is a node that can take tasks, as the scheduler sees it: its name,
// the raft ID it runs under now (its incarnation) and its slots.
type Worker struct {
	Name  string
	ID    string
	Slots int
	// Queue is how many tasks it may hold assigned beyond its slots,
	// pulling their input while its current tasks run (0: none, as nodes
	// that predate pipelining).
	Queue int
	// Full says the node's data volume is below its reserves: it is
	// given no new task (its running ones finish) until it has room.
	Full bool
}

// Workers tells the scheduler which nodes may take new tasks (alive, not
// leaving) and how many each may run at once, and which nodes are alive at
// all (a leaving node still finishes its tasks) and as which incarnation.
type Workers interface {
	Workers() []Worker
	Alive(name string) bool
	// AliveID is the raft ID of the alive node with this name ("" when
	// none is alive).
	AliveID(name string) string
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
	// PlanSeconds, when set, observes how long each planning round takes.
	PlanSeconds interface{ Observe(float64) }
	// due asks the next planning round for the work that follows time, not
	// commits (leases, dead nodes, lost media, failure counts); the tick
	// sets it.
	due atomic.Bool
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

// lead plans for the committer until leadership is lost or ctx ends: every
// entry the leader commits carries the reclaims, rewinds and assignments
// that the state (and the results in that entry) call for, and a tick
// plans again for what time alone changes (leases lapsing, nodes arriving).
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
	s.due.Store(true)
	s.store.commits.setPlanner(&Planner{
		Plan:    func(st *State, queued []Command) []Command { return s.plan(st, queued, term) },
		Applied: s.applied,
	})
	defer s.store.commits.setPlanner(nil)
	t := time.NewTicker(s.Tick)
	defer t.Stop()
	for s.store.IsLeader() && s.store.Term() == term {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.due.Store(true)
			s.store.commits.kick()
		}
	}
}

// plan decides what to commit after queued: assignments for the free
// slots, counting the slots that queued results free, and once a tick the
// tasks taken back from dead or silent nodes and the jobs rewound for lost
// media. It runs for every entry the leader commits, under the state's
// read lock, so what it does there is what the active work needs: nothing
// at all when no slot is free.
func (s *Scheduler) plan(st *State, queued []Command, term uint64) []Command {
	now := time.Now()
	if s.PlanSeconds != nil {
		defer func() { s.PlanSeconds.Observe(time.Since(now).Seconds()) }()
	}
	version := st.Version()
	freed := map[string]bool{}
	for _, c := range queued {
		switch c.Op {
		case OpTaskDone:
			var r TaskResult
			if json.Unmarshal(c.Body, &r) == nil {
				freed[r.TaskID] = true
			}
		case OpTaskFail:
			var f TaskFailure
			if json.Unmarshal(c.Body, &f) == nil {
				freed[f.TaskID] = true
			}
		}
	}
	var out []Command
	add := func(op Op, body any) {
		c, err := NewCommand(version, op, now, body)
		if err != nil {
			s.log.Error("planning", "op", op, "err", err)
			return
		}
		out = append(out, c)
	}
	if s.due.Swap(false) {
		for _, f := range s.reclaim(st, freed, now) {
			freed[f.TaskID] = true
			add(OpTaskFail, f)
		}
		for _, r := range s.recover(st) {
			add(OpJobRewind, r)
		}
		s.failures.observe(st, now)
	}
	workers := s.failures.filter(s.workers.Workers(), now, s.AvoidAfter, s.AvoidWindow)
	for _, a := range assignments(st, workers, freed) {
		a.Term = term
		add(OpTaskAssign, a)
	}
	return out
}

// applied logs what became of a planned command.
func (s *Scheduler) applied(c Command, err error) {
	switch c.Op {
	case OpTaskAssign:
		var a AssignTask
		if json.Unmarshal(c.Body, &a) != nil {
			return
		}
		if err != nil {
			s.log.Warn("assignment refused", "task", a.TaskID, "err", err)
			return
		}
		s.log.Info("task assigned", "task", a.TaskID, "node", a.Node, "attempt", a.Attempt)
	case OpTaskFail:
		var f TaskFailure
		if json.Unmarshal(c.Body, &f) != nil {
			return
		}
		if err != nil {
			s.log.Debug("taking a task back refused", "task", f.TaskID, "err", err)
			return
		}
		s.log.Warn("task taken back", "task", f.TaskID, "node", f.Node, "attempt", f.Attempt, "reason", f.Reason)
	case OpJobRewind:
		var r JobRewind
		if json.Unmarshal(c.Body, &r) != nil {
			return
		}
		if err != nil {
			s.log.Warn("rewind refused", "job", r.JobID, "err", err)
			return
		}
		s.log.Warn("job rewound", "job", r.JobID, "reason", r.Reason)
	}
}

// reclaim takes tasks back from nodes that died (requeued: not the task's
// fault) and from runs whose lease lapsed (a failure: the node is alive but
// not making progress, say paused or wedged). Tasks with a result queued
// are left alone.
func (s *Scheduler) reclaim(st *State, freed map[string]bool, now time.Time) []TaskFailure {
	var fails []TaskFailure
	var live []*Task
	st.Tasks(func(t *Task) bool {
		if t.State != TaskAssigned || freed[t.ID] {
			return true
		}
		if !s.workers.Alive(t.Node) {
			fails = append(fails, TaskFailure{TaskID: t.ID, Node: t.Node, Attempt: t.Attempt,
				Reason: fmt.Sprintf("node %s is gone", t.Node), Requeue: true})
			return true
		}
		live = append(live, t)
		return true
	})
	for _, t := range s.leases.check(live, now, s.leaseTTL) {
		fails = append(fails, TaskFailure{TaskID: t.ID, Node: t.Node, Attempt: t.Attempt,
			Reason: fmt.Sprintf("lease expired: no heartbeat from %s for %v", t.Node, s.leaseTTL(t).Round(time.Second))})
	}
	return fails
}

// recover redoes the work whose only copies died with a node: encoded
// chunks and the audio live on the node that made them until packaging, and
// chunk sources on the node that split. The source and published outputs
// are replicated and need no such care. Only jobs with work left are
// looked at.
func (s *Scheduler) recover(st *State) []JobRewind {
	var rewinds []JobRewind
	held := func(b BlobRef) bool {
		if h, ok := st.Blob(b.Hash); ok {
			for _, name := range h.Nodes {
				if st.LiveHolder(name, s.workers.AliveID(name)) {
					return true
				}
			}
		}
		return false
	}
	st.ActiveJobs(func(j *Job) bool {
		if !held(j.SourceBlob) {
			return true // nothing to redo from
		}
		r := JobRewind{JobID: j.ID}
		for _, c := range st.Chunks(j.ID) {
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
		return true
	})
	return rewinds
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
	live := make(map[string]int, len(f.seen))
	st.Tasks(func(t *Task) bool {
		if t.Failures > f.seen[t.ID] && t.FailedOn != "" {
			for range t.Failures - f.seen[t.ID] {
				f.at[t.FailedOn] = append(f.at[t.FailedOn], now)
			}
		}
		live[t.ID] = t.Failures
		return true
	})
	f.seen = live // tasks that left the state are forgotten
}

// filter leaves out workers with at least n failures within window, as long
// as some worker remains.
func (f *failureLog) filter(workers []Worker, now time.Time, n int, window time.Duration) []Worker {
	if n <= 0 {
		return workers
	}
	var keep []Worker
	for name, times := range f.at { // failures older than the window are forgotten
		if times = slices.DeleteFunc(times, func(at time.Time) bool { return now.Sub(at) >= window }); len(times) == 0 {
			delete(f.at, name)
		} else {
			f.at[name] = times
		}
	}
	for _, w := range workers {
		if len(f.at[w.Name]) < n {
			keep = append(keep, w)
		}
	}
	if len(keep) == 0 {
		return workers
	}
	return keep
}
