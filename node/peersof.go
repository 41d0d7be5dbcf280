package node

// What the node's parts ask of the other nodes: raft's addresses from
// gossip (addressBook), the internal API's raft and progress routes
// (raftPeer), and who can take tasks and hold blobs now (Workers, Alive,
// aliveNames).

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/gosty/gosty/cluster"
)

// addressBook resolves raft server IDs to their current raft address from
// gossip, so that a node that comes back on a new IP is still reached.
type addressBook struct {
	mu sync.RWMutex
	m  *cluster.Membership
}

func (a *addressBook) set(m *cluster.Membership) {
	a.mu.Lock()
	a.m = m
	a.mu.Unlock()
}

func (a *addressBook) ServerAddr(id raft.ServerID) (raft.ServerAddress, error) {
	a.mu.RLock()
	m := a.m
	a.mu.RUnlock()
	if m == nil {
		return "", errors.New("membership not started")
	}
	mem, ok := m.ByID(string(id))
	if !ok || mem.Meta.Raft == "" {
		return "", fmt.Errorf("server %s not in gossip", id)
	}
	return raft.ServerAddress(mem.Meta.Raft), nil
}

// raftPeer adapts the node to what the internal API needs of the leader.
type raftPeer struct{ n *Node }

func (r raftPeer) ApplyForwarded(ctx context.Context, cmd []byte) (uint64, error) {
	return r.n.store.ApplyEncoded(ctx, cmd)
}
func (r raftPeer) Join(ctx context.Context, req cluster.JoinRequest) error {
	m, ok := r.n.members.ByID(req.ID)
	if err := r.n.store.CheckJoinVersion(req.Name, m.Meta, ok); err != nil {
		return err
	}
	return r.n.store.Join(ctx, req)
}
func (r raftPeer) Status() cluster.RaftStatus { return r.n.store.Status() }
func (r raftPeer) Remove(ctx context.Context, req cluster.RemoveRequest) error {
	return r.n.promote.Remove(ctx, req)
}
func (r raftPeer) Heartbeat(ctx context.Context, hb cluster.Heartbeat) error {
	return r.n.sched.Heartbeat(ctx, hb)
}
func (r raftPeer) Progress(jobID string) (map[string]float64, error) {
	if p, ok := r.n.ingest.progress(jobID); ok { // fetched here (ingest.go)
		return map[string]float64{ingestProgressKey: p}, nil
	}
	return r.n.sched.RunningProgress(jobID)
}

// Workers lists the nodes that can take tasks: alive members that are not
// leaving.
func (n *Node) Workers() []cluster.Worker {
	var out []cluster.Worker
	for _, m := range n.members.Alive() {
		if m.Meta.Leaving || (m.Name == n.cfg.Name && n.stopping.Load()) {
			continue
		}
		full := m.Meta.Disk != nil && m.Meta.Disk.Full
		if m.Name == n.cfg.Name {
			full = n.space.Full() // fresher than what we gossiped
		}
		out = append(out, cluster.Worker{Name: m.Name, ID: m.Meta.ID, Slots: m.Meta.Slots, Queue: m.Meta.Queue, Full: full})
	}
	return out
}

// Alive reports whether a node is alive in gossip (leaving or not).
func (n *Node) Alive(name string) bool {
	m, ok := n.members.Member(name)
	return ok && m.State == cluster.StateAlive
}

// AliveID is the raft ID of the alive node named name ("" when none).
func (n *Node) AliveID(name string) string {
	if m, ok := n.members.Member(name); ok && m.State == cluster.StateAlive {
		return m.Meta.ID
	}
	return ""
}

// aliveNames is the set of nodes that can hold and serve blobs now: alive,
// not leaving, and running the incarnation the log knows for their name
// (see cluster.State.LiveHolder).
func (n *Node) aliveNames() map[string]bool {
	ws := n.Workers()
	out := make(map[string]bool, len(ws))
	n.store.FSM().Read(func(st *cluster.State) {
		for _, w := range ws {
			if st.LiveHolder(w.Name, w.ID) {
				out[w.Name] = true
			}
		}
	})
	return out
}
