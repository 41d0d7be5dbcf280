package replica

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/gosty/gosty/cluster"
)

// nodes is a cluster of alive nodes with room whose pushes are recorded
// in the log at once (as a node's push records the copy it made).
type nodes struct {
	fsm    *cluster.FSM
	alive  []string
	mu     sync.Mutex
	pushes []string // "hash>target"
	index  uint64
}

func (n *nodes) apply(t *testing.T, op cluster.Op, body any) {
	t.Helper()
	data, err := cluster.EncodeCommand(op, time.Now(), body)
	if err != nil {
		t.Fatal(err)
	}
	n.index++
	if err, ok := n.fsm.Apply(&raft.Log{Index: n.index, Type: raft.LogCommand, Data: data}).(error); ok && err != nil {
		t.Fatalf("%s: %v", op, err)
	}
}

func (n *nodes) Alive() map[string]bool {
	out := map[string]bool{}
	for _, name := range n.alive {
		out[name] = true
	}
	return out
}

func (n *nodes) Workers() []cluster.Worker {
	var out []cluster.Worker
	for _, name := range n.alive {
		out = append(out, cluster.Worker{Name: name, Slots: 1})
	}
	return out
}

func (n *nodes) Full(string) bool { return false }

func (n *nodes) PushCopy(ctx context.Context, ref cluster.BlobRef, set bool, target, reason string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.pushes = append(n.pushes, ref.Hash[:1]+">"+target)
	data, err := cluster.EncodeCommand(cluster.OpBlobAdd, time.Now(), cluster.BlobLocation{Blob: ref, Node: target})
	if err != nil {
		return err
	}
	n.index++
	if err, ok := n.fsm.Apply(&raft.Log{Index: n.index, Type: raft.LogCommand, Data: data}).(error); ok && err != nil {
		return err
	}
	return nil
}

// oneSource is a log (no raft) with one job whose source only a holds,
// in a cluster of a, b and c.
func oneSource(t *testing.T) *nodes {
	n := &nodes{fsm: cluster.NewFSM(slog.New(slog.DiscardHandler)), alive: []string{"a", "b", "c"}}
	n.apply(t, cluster.OpJobSubmit, cluster.SubmitJob{Job: cluster.Job{
		ID: "j", Name: "clip.mp4", Origin: "a",
		SourceBlob: cluster.BlobRef{Hash: strings.Repeat("e", 64), Size: 100},
		Source:     cluster.Probe{Duration: 12, Video: &cluster.VideoStream{Width: 640, Height: 360, FrameRate: 25, Duration: 12}},
		Renditions: []cluster.Rendition{{Name: "360p", Width: 640, Height: 360}},
	}})
	return n
}

// TestReplicateRound: a source short of copies is its lowest-named
// holder's duty alone, which pushes what is missing to the nodes that
// rank highest; the next round finds nothing short.
func TestReplicateRound(t *testing.T) {
	n := oneSource(t)
	quiet := slog.New(slog.DiscardHandler)
	b := New(Config{Name: "b", Replicas: 2, FSM: n.fsm, Nodes: n, Logger: quiet, Interval: time.Second})
	b.round(context.Background())
	if len(n.pushes) != 0 || b.UnderReplicated() != 1 {
		t.Fatalf("a node that does not hold the source pushed %v; %d under-replicated, want 1", n.pushes, b.UnderReplicated())
	}
	a := New(Config{Name: "a", Replicas: 2, FSM: n.fsm, Nodes: n, Logger: quiet, Interval: time.Second})
	a.round(context.Background())
	want := "e>" + RankTargets(strings.Repeat("e", 64), n.Alive(), map[string]bool{"a": true})[0]
	if !slices.Equal(n.pushes, []string{want}) {
		t.Fatalf("pushes %v, want %v", n.pushes, want)
	}
	a.round(context.Background()) // looks again at what it pushed
	if len(n.pushes) != 1 || a.UnderReplicated() != 0 {
		t.Fatalf("after the copy: pushes %v, %d under-replicated", n.pushes, a.UnderReplicated())
	}
}

// TestHandoff: a node that leaves pushes what it alone holds to the
// nodes that stay, up to the replication factor.
func TestHandoff(t *testing.T) {
	n := oneSource(t)
	a := New(Config{Name: "a", Replicas: 3, FSM: n.fsm, Nodes: n, Logger: slog.New(slog.DiscardHandler), Interval: time.Second})
	a.Handoff(context.Background(), slog.New(slog.DiscardHandler))
	slices.Sort(n.pushes)
	if !slices.Equal(n.pushes, []string{"e>b", "e>c"}) {
		t.Fatalf("hand-off pushes %v, want e>b, e>c", n.pushes)
	}
}
