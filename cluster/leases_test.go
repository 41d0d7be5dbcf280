package cluster

import (
	"testing"
	"time"
)

func TestLeases(t *testing.T) {
	var l leases
	now := t0
	ttl := func(*Task) time.Duration { return 10 * time.Second }
	a := &Task{ID: "j/encode/00000", Node: "n1", Attempt: 1, State: TaskAssigned}
	b := &Task{ID: "j/encode/00001", Node: "n2", Attempt: 3, State: TaskAssigned}
	current := func(id string) (string, int, time.Duration, bool) {
		for _, t := range []*Task{a, b} {
			if t.ID == id {
				return t.Node, t.Attempt, 10 * time.Second, true
			}
		}
		return "", 0, 0, false
	}

	// A new leader grants every assignment a fresh lease.
	if exp := l.check([]*Task{a, b}, now, ttl); len(exp) != 0 {
		t.Fatalf("fresh leases expired: %v", exp)
	}
	// n1 keeps beating, n2 beats for an old attempt (a stale run): only
	// n2's lease runs out.
	for i := 1; i <= 3; i++ {
		at := now.Add(time.Duration(i) * 5 * time.Second)
		l.renew(Heartbeat{Node: "n1", Tasks: []TaskBeat{{ID: a.ID, Attempt: 1, Progress: 0.1 * float64(i)}}}, at, current)
		l.renew(Heartbeat{Node: "n2", Tasks: []TaskBeat{{ID: b.ID, Attempt: 2}}}, at, current)
	}
	exp := l.check([]*Task{a, b}, now.Add(16*time.Second), ttl)
	if len(exp) != 1 || exp[0] != b {
		t.Fatalf("expired %v, want only %s", exp, b.ID)
	}
	if p := l.progress(a.ID); p < 0.29 || p > 0.31 {
		t.Fatalf("progress %v", p)
	}
	// What followers are told: the job's running tasks that reported
	// progress (b's stale run never did), and nothing of other jobs.
	if r := l.running("j/"); len(r) != 1 || r[a.ID] != l.progress(a.ID) {
		t.Fatalf("running(j/) = %v", r)
	}
	if r := l.running("other/"); len(r) != 0 {
		t.Fatalf("running(other/) = %v", r)
	}
	// A heartbeat from another node for the same task does not renew it.
	l.renew(Heartbeat{Node: "n9", Tasks: []TaskBeat{{ID: a.ID, Attempt: 1}}}, now.Add(100*time.Second), current)
	if exp := l.check([]*Task{a}, now.Add(40*time.Second), ttl); len(exp) != 1 {
		t.Fatalf("a stranger's heartbeat renewed a lease: %v", exp)
	}
	// Reassignment (new attempt) gets a fresh lease; finished tasks are forgotten.
	a2 := &Task{ID: a.ID, Node: "n3", Attempt: 2, State: TaskAssigned}
	if exp := l.check([]*Task{a2}, now.Add(41*time.Second), ttl); len(exp) != 0 {
		t.Fatalf("a new assignment inherited an old lease: %v", exp)
	}
	if _, ok := l.m[b.ID]; ok {
		t.Fatal("a task no longer assigned kept its lease")
	}
}

func TestFailingNodeIsAvoidedForAWhile(t *testing.T) {
	s := NewState()
	for i, id := range []string{"a", "b", "c"} {
		j := testJob(id, false)
		j.SourceBlob.Hash = hash(byte('a' + i))
		mustApply(t, s, OpJobSubmit, SubmitJob{Job: j})
		split := TaskID(id, TaskSplit, 0)
		mustApply(t, s, OpTaskAssign, AssignTask{TaskID: split, Node: "bad", Attempt: 1})
		mustApply(t, s, OpTaskFail, TaskFailure{TaskID: split, Node: "bad", Attempt: 1, Reason: "segfault"})
	}
	// A requeue is not a failure.
	mustApply(t, s, OpTaskAssign, AssignTask{TaskID: TaskID("a", TaskSplit, 0), Node: "other", Attempt: 2})
	mustApply(t, s, OpTaskFail, TaskFailure{TaskID: TaskID("a", TaskSplit, 0), Node: "other", Attempt: 2, Reason: "died", Requeue: true})

	var f failureLog
	f.observe(s, t0)
	workers := []Worker{{Name: "bad", Slots: 1}, {Name: "other", Slots: 1}}
	if got := f.filter(workers, t0, 3, time.Minute); len(got) != 1 || got[0].Name != "other" {
		t.Fatalf("filtered %v", got)
	}
	if got := f.filter(workers[:1], t0, 3, time.Minute); len(got) != 1 {
		t.Fatal("the only worker must not be filtered out")
	}
	f.observe(s, t0.Add(time.Second)) // nothing new
	if len(f.at["bad"]) != 3 || len(f.at["other"]) != 0 {
		t.Fatalf("failure log %v", f.at)
	}
	if got := f.filter(workers, t0.Add(2*time.Minute), 3, time.Minute); len(got) != 2 {
		t.Fatalf("the node should be forgiven after the window: %v", got)
	}
	if len(f.at) != 0 {
		t.Fatalf("failures older than the window are kept: %v", f.at)
	}
}

// TestHeartbeatRenews goes through the leader's Heartbeat on a real store:
// a heartbeat for the current assignment moves its lease on, one for
// another attempt or node does not.
func TestHeartbeatRenews(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	defer s.Close()
	ctx := t.Context()
	if err := s.Propose(ctx, OpJobSubmit, SubmitJob{Job: testJob("j", false)}); err != nil {
		t.Fatal(err)
	}
	split := TaskID("j", TaskSplit, 0)
	if err := s.Propose(ctx, OpTaskAssign, AssignTask{TaskID: split, Node: "n1", Term: s.Term(), Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	sc := NewScheduler(s, nil, nil)
	for _, hb := range []Heartbeat{
		{Node: "n2", Tasks: []TaskBeat{{ID: split, Attempt: 1}}},
		{Node: "n1", Tasks: []TaskBeat{{ID: split, Attempt: 2}}},
	} {
		if err := sc.Heartbeat(ctx, hb); err != nil {
			t.Fatal(err)
		}
		if _, ok := sc.leases.m[split]; ok {
			t.Fatalf("a heartbeat from %s for attempt %d made a lease", hb.Node, hb.Tasks[0].Attempt)
		}
	}
	if err := sc.Heartbeat(ctx, Heartbeat{Node: "n1", Tasks: []TaskBeat{{ID: split, Attempt: 1, Progress: 0.5}}}); err != nil {
		t.Fatal(err)
	}
	ls, ok := sc.leases.m[split]
	if !ok || ls.node != "n1" || time.Until(ls.expires) < sc.LeaseBase/2 || sc.Progress(split) != 0.5 {
		t.Fatalf("the current assignment's heartbeat left lease %+v (%v)", ls, ok)
	}
}
