package cluster

import (
	"context"
	"testing"
	"time"
)

func openTestStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := OpenStore(RaftConfig{
		NodeName: "n1", DataDir: dir, BindAddr: "127.0.0.1:0", Bootstrap: true,
		HeartbeatTimeout: 200 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for !s.IsLeader() {
		select {
		case <-ctx.Done():
			s.Close()
			t.Fatal("no leader within 10s")
		case <-time.After(20 * time.Millisecond):
		}
	}
	return s
}

func stateJSON(t *testing.T, s *Store) string {
	var out string
	s.FSM().Read(func(st *State) { out = dump(t, st) })
	return out
}

// TestStoreSurvivesRestart runs real raft on BoltDB: commands before and
// after a snapshot are all there after the node restarts on the same dir,
// and the raft server ID stays the same.
func TestStoreSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openTestStore(t, dir)
	id := s.ID()
	if err := s.Propose(ctx, OpJobSubmit, SubmitJob{Job: testJob("a", true)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Propose(ctx, OpTaskAssign, AssignTask{TaskID: TaskID("a", TaskSplit, 0), Node: "n1", Term: s.Term(), Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.Snapshot(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	if err := s.Propose(ctx, OpJobSubmit, SubmitJob{Job: testJob("b", false)}); err != nil {
		t.Fatal(err)
	}
	// A refused command comes back to the proposer as an error.
	if err := s.Propose(ctx, OpJobSubmit, SubmitJob{Job: testJob("b", false)}); err == nil {
		t.Fatal("duplicate submit accepted")
	}
	want := stateJSON(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := openTestStore(t, dir)
	defer s2.Close()
	if s2.ID() != id {
		t.Fatalf("server id changed across restart: %s → %s", id, s2.ID())
	}
	if err := s2.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	if got := stateJSON(t, s2); got != want {
		t.Fatalf("state after restart differs:\n got %s\nwant %s", got, want)
	}
	var n int
	s2.FSM().Read(func(st *State) { n = st.JobCount() })
	if n != 2 {
		t.Fatalf("want 2 jobs after restart, got %d", n)
	}
}

func TestFSMSnapshotRestoreRoundTrip(t *testing.T) {
	f := NewFSM(nil)
	f.mu.Lock()
	runJob(t, f.state, testJob("x", true))
	f.mu.Unlock()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	g := NewFSM(nil)
	if err := g.Restore(sink.reader()); err != nil {
		t.Fatal(err)
	}
	var a, b string
	f.Read(func(st *State) { a = dump(t, st) })
	g.Read(func(st *State) { b = dump(t, st) })
	if a != b {
		t.Fatalf("restore differs:\n%s\n%s", a, b)
	}
	if err := g.Restore(memSinkFrom(`{"v":7,"state":{}}`).reader()); err == nil {
		t.Fatal("a snapshot from an unknown version was accepted")
	}
}
