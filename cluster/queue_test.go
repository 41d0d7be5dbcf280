package cluster

import (
	"fmt"
	"testing"
)

// splitInto drives a job (no audio) through its split on n1 into n chunks
// whose sources are held by n1.
func splitInto(t *testing.T, s *State, id string, n int) {
	t.Helper()
	mustApply(t, s, OpJobSubmit, SubmitJob{Job: testJob(id, false)})
	split := TaskID(id, TaskSplit, 0)
	mustApply(t, s, OpTaskAssign, AssignTask{TaskID: split, Node: "n1", Term: 1, Attempt: 1})
	var chunks []Chunk
	for i := range n {
		chunks = append(chunks, Chunk{Start: float64(i), Duration: 1, Frames: 25, Source: BlobRef{Hash: fmt.Sprintf("%063x%d", i, 0), Size: 10}})
	}
	mustApply(t, s, OpTaskDone, TaskResult{TaskID: split, Node: "n1", Attempt: 1, Chunks: chunks})
}

func assignAll(t *testing.T, s *State, as []AssignTask) {
	t.Helper()
	for _, a := range as {
		mustApply(t, s, OpTaskAssign, a)
	}
}

func perNode(as []AssignTask) map[string]int {
	out := map[string]int{}
	for _, a := range as {
		out[a.Node]++
	}
	return out
}

// Pipelining: slots are filled first, on every worker; only then does each
// worker get its queue's worth of encodes beyond its slots, and no more
// until one of its tasks ends.
func TestAssignmentsQueueBeyondSlots(t *testing.T) {
	s := NewState()
	splitInto(t, s, "j", 10)
	workers := []Worker{{Name: "n1", Slots: 2, Queue: 1}, {Name: "n2", Slots: 2, Queue: 1}, {Name: "n3", Slots: 1}}

	// Five slots in all: five encodes fill them, then n1 and n2 queue one
	// each (n3 predates pipelining: Queue 0).
	got := Assignments(s, workers)
	if n := perNode(got); len(got) != 7 || n["n1"] != 3 || n["n2"] != 3 || n["n3"] != 1 {
		t.Fatalf("want 3 on n1, 3 on n2, 1 on n3; got %v", n)
	}
	assignAll(t, s, got)
	if again := Assignments(s, workers); len(again) != 0 {
		t.Fatalf("every slot and queue is taken, yet %+v", again)
	}

	// One of n1's tasks ends: its queued one takes the slot (on the node
	// already), and the freed room goes to the next encode in n1's queue.
	done := got[0]
	mustApply(t, s, OpTaskDone, TaskResult{TaskID: done.TaskID, Node: done.Node, Attempt: done.Attempt,
		Outputs: []BlobRef{{Hash: hash('d'), Size: 5}, {Hash: hash('e'), Size: 5}}})
	next := Assignments(s, workers)
	if len(next) != 1 || next[0].Node != done.Node {
		t.Fatalf("want one new assignment for %s, got %+v", done.Node, next)
	}
}

// With fewer encodes than slots, nothing is queued: a queued task on a
// busy node would wait while another node's slot idles.
func TestAssignmentsQueueOnlyWhatSlotsCannotTake(t *testing.T) {
	s := NewState()
	splitInto(t, s, "j", 3)
	got := Assignments(s, []Worker{{Name: "n1", Slots: 2, Queue: 1}, {Name: "n2", Slots: 2, Queue: 1}})
	if n := perNode(got); len(got) != 3 || n["n1"] > 2 || n["n2"] > 2 {
		t.Fatalf("want the 3 encodes in slots, none queued; got %v", n)
	}
}

// The queue takes every kind in the fair order: a later high-priority
// job's split takes the queue room a low job's encodes would otherwise
// fill at every result, so it runs next on that node, not after every
// low chunk.
func TestAssignmentsQueueKeepsPriority(t *testing.T) {
	s := NewState()
	splitInto(t, s, "low", 6)
	workers := []Worker{{Name: "n1", Slots: 1, Queue: 1}}
	first := Assignments(s, workers)
	if len(first) != 2 {
		t.Fatalf("want a running and a queued encode, got %+v", first)
	}
	assignAll(t, s, first)
	high := testJob("high", false)
	high.Priority = PriorityHigh
	high.SourceBlob.Hash = hash('f')
	mustApply(t, s, OpJobSubmit, SubmitJob{Job: high})
	done := first[0]
	mustApply(t, s, OpTaskDone, TaskResult{TaskID: done.TaskID, Node: done.Node, Attempt: done.Attempt,
		Outputs: []BlobRef{{Hash: hash('d'), Size: 5}, {Hash: hash('e'), Size: 5}}})
	next := Assignments(s, workers)
	if len(next) != 1 || next[0].TaskID != TaskID("high", TaskSplit, 0) {
		t.Fatalf("the room the result freed must go to the high job's split, got %+v", next)
	}
	// A full node queues nothing.
	if got := Assignments(s, []Worker{{Name: "n1", Slots: 4, Queue: 4, Full: true}}); len(got) != 0 {
		t.Fatalf("a full node got %+v", got)
	}
}

// deadWorkers is a Workers view in which the named nodes are gone.
type deadWorkers struct {
	all  []Worker
	dead map[string]bool
}

func (d deadWorkers) Workers() []Worker {
	var out []Worker
	for _, w := range d.all {
		if !d.dead[w.Name] {
			out = append(out, w)
		}
	}
	return out
}
func (d deadWorkers) Alive(name string) bool     { return !d.dead[name] }
func (d deadWorkers) AliveID(name string) string { return "" }

// A node that dies takes its queued assignments with it only for a
// moment: the scheduler takes back its running and its queued tasks alike
// (requeued, no failure counted), and they are placed on the survivors.
func TestQueuedTasksOfADeadNodeGoBack(t *testing.T) {
	s := NewState()
	splitInto(t, s, "j", 6)
	all := []Worker{{Name: "n1", Slots: 1, Queue: 1}, {Name: "n2", Slots: 1, Queue: 1}}
	assignAll(t, s, Assignments(s, all))
	var onN1 []string
	s.Tasks(func(tk *Task) bool {
		if tk.State == TaskAssigned && tk.Node == "n1" {
			onN1 = append(onN1, tk.ID)
		}
		return true
	})
	if len(onN1) != 2 {
		t.Fatalf("n1 should hold a running and a queued encode, holds %v", onN1)
	}
	w := deadWorkers{all: all, dead: map[string]bool{"n1": true}}
	sched := NewScheduler(nil, w, nil)
	fails := sched.reclaim(s, map[string]bool{}, t0)
	if len(fails) != 2 {
		t.Fatalf("want both of n1's tasks back, got %+v", fails)
	}
	for _, f := range fails {
		if !f.Requeue {
			t.Fatalf("a dead node's task counts no failure: %+v", f)
		}
		mustApply(t, s, OpTaskFail, f)
	}
	for _, id := range onN1 {
		if tk := taskOf(s, id); tk.State != TaskPending || tk.Failures != 0 {
			t.Fatalf("%s after the reclaim: %+v", id, tk)
		}
	}
	// A node with room (n2 is busy) gets them: a slot's and a queue's worth.
	w.all = append(w.all, Worker{Name: "n3", Slots: 1, Queue: 1})
	if got := perNode(Assignments(s, w.Workers())); got["n3"] != 2 || len(got) != 1 {
		t.Fatalf("want 2 placed on n3, got %v", got)
	}
}

// A round looks for tasks local to its free slots only near the head of
// the fair order (localScan): a chunk held by the free node within that
// window takes its slot ahead of earlier ones, one beyond it waits its
// turn and the slot goes to the head of the order. So a round costs in
// proportion to its free slots, not to a long job's pending chunks.
func TestLocalPlacementLooksNearTheHead(t *testing.T) {
	for _, tc := range []struct {
		at   int // the chunk n2 holds
		want int // the chunk n2 gets
	}{{at: 40, want: 40}, {at: localScan(1) + 20, want: 0}} {
		s := NewState()
		splitInto(t, s, "j", localScan(1)+100)
		src, _ := s.Chunk("j", tc.at)
		mustApply(t, s, OpBlobAdd, BlobLocation{Blob: src.Source, Node: "n2"})
		got := Assignments(s, []Worker{{Name: "n1"}, {Name: "n2", Slots: 1}})
		if len(got) != 1 || got[0].Node != "n2" || got[0].TaskID != TaskID("j", TaskEncode, tc.want) {
			t.Errorf("n2 holds chunk %d: got %+v, want chunk %d on n2", tc.at, got, tc.want)
		}
	}
}
