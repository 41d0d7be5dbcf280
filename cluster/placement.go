package cluster

// Where the scheduler puts tasks (scheduler.go decides when): the pending
// tasks in order (kind, priority, fair share between submitters), and for
// each the worker with a free slot that holds most of its input.

import (
	"slices"
	"sort"
)

var kindOrder = map[TaskKind]int{TaskSplit: 0, TaskAudio: 1, TaskEncode: 2, TaskPackage: 3}

// Assignments decides which pending tasks go where, given the nodes and
// their slots, in fairOrder (priority class, then a fair share between
// submitters, then older jobs first, and within a job the pipeline's order); a
// split or audio task must run where the source is, an encode prefers the
// node that holds its chunk and a package the node that holds most outputs.
func Assignments(st *State, workers []Worker) []AssignTask { return assignments(st, workers, nil) }

// assignments is Assignments with the slots of the freed tasks (whose
// results are about to be committed) counted as free.
//
// Slots are filled first; only the tasks left over after that are queued:
// each worker may hold Worker.Queue assignments beyond its slots, whose
// input it pulls while its current tasks run and which it starts the
// moment a slot frees, without waiting for a commit (pipelining). The
// queue takes every kind, in the same fair order: were it kept for
// encodes, a node whose queue is refilled with an encode at every result
// would never have a slot free for another job's split or package, and a
// high-priority job would wait for a long low one to finish. A queued
// assignment is an ordinary assigned task to the rest of the system: its
// lease is renewed by the worker's heartbeats, and it goes back to the
// queue when its node dies, leaves or runs out of space.
func assignments(st *State, workers []Worker, freed map[string]bool) []AssignTask {
	free := map[string]int{}
	queue := map[string]int{}
	for _, w := range workers {
		if !w.Full { // a full node has no room for a task's work files and outputs
			free[w.Name], queue[w.Name] = w.Slots, max(w.Queue, 0)
		}
	}
	var pending []*Task
	st.Tasks(func(t *Task) bool {
		switch t.State {
		case TaskAssigned:
			if _, ok := free[t.Node]; ok && !freed[t.ID] {
				free[t.Node]-- // below zero: assignments held in its queue
			}
		case TaskPending:
			pending = append(pending, t)
		}
		return true
	})
	room := 0
	for name, n := range free {
		room += max(n, 0) + max(min(queue[name], queue[name]+n), 0)
	}
	if room == 0 || len(pending) == 0 {
		return nil // the common case of a busy cluster: nothing to place
	}
	pending = slices.DeleteFunc(pending, func(t *Task) bool {
		j, ok := st.JobRecord(t.JobID)
		return !ok || j.State.Terminal()
	})
	pending = fairOrder(st, pending)

	placed := map[string]bool{}
	out := place(st, pending, workers, free, placed, nil)
	for name, n := range free { // the slots are taken: now the queues
		free[name] = max(min(queue[name], queue[name]+n), 0)
	}
	return place(st, pending, workers, free, placed, out)
}

// place assigns the pending tasks to the workers' free room, appending to
// out. Two passes: first every task that
// can run where its input already is, then the rest wherever there is room.
// A FIFO single pass would let an early chunk take the slot on the node
// holding a later chunk.
//
// The first pass looks only at the next localScan tasks in fair order
// that are not placed yet: a round runs at every result, most rounds have
// a slot or two to fill, and a long job has thousands of chunks pending,
// nearly all on the node that split it; looking each one up to find none
// local to the free node cost the leader a third of its CPU at 20 nodes.
// A task further down the order waits its turn, as it would anyway.
func place(st *State, pending []*Task, workers []Worker, free map[string]int, placed map[string]bool, out []AssignTask) []AssignTask {
	room := 0
	for _, n := range free {
		room += max(n, 0)
	}
	p := newPlacer(st, workers)
	for _, local := range []bool{true, false} {
		scan := localScan(room)
		for _, t := range pending {
			if room == 0 {
				return out
			}
			if placed[t.ID] {
				continue
			}
			if local {
				if scan == 0 {
					break
				}
				scan--
			}
			node := p.pick(t, free, local)
			if node == "" {
				continue
			}
			free[node]--
			room--
			placed[t.ID] = true
			out = append(out, AssignTask{TaskID: t.ID, Node: node, Attempt: t.Attempt + 1})
		}
	}
	return out
}

// localScan is how many unplaced tasks place's first pass looks at to
// fill room slots with tasks whose input is local.
func localScan(room int) int { return 64 + 16*room }

// placer picks nodes for tasks in one round. What does not change within
// the round is worked out once: the workers' incarnations and how many
// have room. The round asks it about every pending task (a long job has
// thousands), so a pick looks its task's input up once, not once per
// worker.
type placer struct {
	st      *State
	workers []Worker
	ids     map[string]string // worker name → its ID
	roomy   int               // workers with room on their disk
}

func newPlacer(st *State, workers []Worker) *placer {
	p := &placer{st: st, workers: workers, ids: make(map[string]string, len(workers))}
	for _, w := range workers {
		p.ids[w.Name] = w.ID
		if !w.Full {
			p.roomy++
		}
	}
	return p
}

// holders is the set of workers whose copy of b counts: a worker is alive
// by definition, and its copies count if it runs the incarnation the log
// knows (an ID-less worker: a test's).
func (p *placer) holders(b BlobRef) func(node string) bool {
	h, ok := p.st.Blob(b.Hash)
	if !ok {
		return func(string) bool { return false }
	}
	return func(node string) bool {
		return h.Nodes.Has(node) && (p.ids[node] == "" || p.st.LiveHolder(node, p.ids[node]))
	}
}

// score says how well a node suits t: higher is better, below zero never
// (a split's or audio's source must be local: splitting is where bytes
// are cheapest); an encode prefers the node that holds its chunk, a
// package the node that holds most of the job's outputs.
func (p *placer) score(t *Task) func(node string) int {
	j, _ := p.st.JobRecord(t.JobID)
	switch t.Kind {
	case TaskSplit, TaskAudio:
		holds := p.holders(j.SourceBlob)
		return func(node string) int {
			if holds(node) {
				return 1
			}
			return -1
		}
	case TaskEncode:
		if c, ok := p.st.Chunk(j.ID, t.Chunk); ok {
			holds := p.holders(c.Source)
			return func(node string) int {
				if holds(node) {
					return 1
				}
				return 0
			}
		}
	case TaskPackage:
		held := map[string]int{}
		for _, c := range p.st.Chunks(j.ID) {
			for _, o := range c.Outputs {
				holds := p.holders(o)
				for _, w := range p.workers {
					if holds(w.Name) {
						held[w.Name]++
					}
				}
			}
		}
		return func(node string) int { return held[node] }
	}
	return func(string) int { return 0 }
}

// pick chooses a node with a free slot for t, or "" when none fits now.
// With localOnly, only a node that holds some of t's input qualifies.
func (p *placer) pick(t *Task, free map[string]int, localOnly bool) string {
	var score func(string) int
	best, bestScore := "", -1
	for _, w := range p.workers {
		if free[w.Name] <= 0 {
			continue
		}
		// A node this task just failed on is avoided while others (with
		// room on their disk) exist.
		if w.Name == t.FailedOn && p.roomy > 1 {
			continue
		}
		if score == nil {
			score = p.score(t) // only for a task some worker has room for
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
	jobs := map[string]*Job{}
	for _, t := range pending {
		if _, ok := jobs[t.JobID]; !ok {
			jobs[t.JobID], _ = st.JobRecord(t.JobID)
		}
	}
	jobOf := func(id string) *Job {
		if j, ok := jobs[id]; ok {
			return j
		}
		j, _ := st.JobRecord(id)
		jobs[id] = j
		return j
	}
	byAge := func(a, b *Task) bool {
		ja, jb := jobOf(a.JobID), jobOf(b.JobID)
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
	st.Tasks(func(t *Task) bool {
		if j := jobOf(t.JobID); t.State == TaskAssigned && j != nil {
			running[j.Submitter]++
		}
		return true
	})
	type class struct {
		queues map[string][]*Task // submitter → its tasks, in age order
		order  []string           // submitters by first appearance (oldest job first)
	}
	var classes [3]class
	for _, t := range pending {
		j := jobOf(t.JobID)
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
