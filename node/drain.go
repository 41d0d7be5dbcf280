package node

import (
	"context"
	"time"

	"github.com/gosty/gosty/cluster"
)

// drainBound bounds the drain: running tasks get the drain timeout, the
// blob hand-off and leadership transfer as long again plus 10 s.
func drainBound(drainTimeout time.Duration) time.Duration { return 2*drainTimeout + 10*time.Second }

// ShutdownBound is the longest a graceful stop takes, from SIGTERM until
// the process exits, with the given --drain-timeout: the public API's
// shutdown (10 s), the drain (2 × drain timeout + 10 s), the internal API's
// shutdown (5 s), leaving gossip and closing raft (a few seconds, 7 s
// allowed). Kubernetes' terminationGracePeriodSeconds must exceed it plus
// the preStop hook, or the kubelet kills a node mid-drain (the k8s/ tests
// check the shipped StatefulSet against it).
func ShutdownBound(drainTimeout time.Duration) time.Duration {
	return 10*time.Second + drainBound(drainTimeout) + 5*time.Second + 7*time.Second
}

// drain is the graceful half of leaving (SIGTERM, scale-down, rolling
// restart): announce it, finish or hand back the running tasks, make sure
// nothing stored only here is lost, and hand over leadership. Leaving gossip
// afterwards (close) is what lets the leader drop this node from raft.
func (n *Node) drain(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, drainBound(n.cfg.DrainTimeout))
	defer cancel()
	start := time.Now()
	log := n.logger.With("component", "drain")
	if err := n.members.UpdateMeta(func(m *cluster.MemberMeta) { m.Leaving = true }); err != nil {
		log.Warn("announcing the leave", "err", err)
	}
	n.worker.drain(ctx, n.cfg.DrainTimeout)
	n.handoff(ctx)
	if n.store.IsLeader() {
		if err := n.store.Raft().LeadershipTransfer().Error(); err != nil {
			log.Info("no leadership transfer", "err", err)
		} else {
			log.Info("leadership transferred")
		}
	}
	n.leaveRaft(ctx)
	log.Info("drained", "seconds", time.Since(start).Seconds())
}

// handoff pushes every blob some job still needs to other nodes until it
// has enough copies without this one: the replication factor for sources
// and published outputs, one copy for intermediate media of running jobs.
func (n *Node) handoff(ctx context.Context) {
	self := n.cfg.Name
	targets := map[string]bool{}
	for _, w := range n.Workers() {
		if w.Name != self {
			targets[w.Name] = true
		}
	}
	if len(targets) == 0 {
		return // nobody to hand to: a lone node keeps its data for its return
	}
	type duty struct {
		ref     cluster.BlobRef
		holders map[string]bool
		need    int
	}
	var duties []duty
	n.store.FSM().Read(func(st *cluster.State) {
		durable := st.Durable()
		for hash := range st.Referenced() {
			h := st.Blobs[hash]
			if h == nil || !h.Nodes[self] {
				continue
			}
			others := map[string]bool{}
			for name := range h.Nodes {
				if targets[name] {
					others[name] = true
				}
			}
			need := 1
			if _, ok := durable[hash]; ok {
				need = n.cfg.Replicas
			}
			if need = min(need, len(targets)) - len(others); need > 0 {
				duties = append(duties, duty{ref: cluster.BlobRef{Hash: hash, Size: h.Size}, holders: others, need: need})
			}
		}
	})
	for _, d := range duties {
		for _, target := range rankTargets(d.ref.Hash, targets, d.holders) {
			if d.need == 0 || ctx.Err() != nil {
				break
			}
			if err := n.pushCopy(ctx, d.ref, target); err != nil {
				n.logger.Warn("hand-off push failed", "blob", d.ref.Hash, "to", target, "err", err)
				continue
			}
			d.need--
		}
	}
}

// pushCopy sends a local blob to a node and records the new copy.
func (n *Node) pushCopy(ctx context.Context, ref cluster.BlobRef, target string) error {
	m, ok := n.members.Member(target)
	if !ok || m.Meta.Internal == "" {
		return cluster.ErrNotFound
	}
	if err := n.peers.Push(ctx, ref, m.Meta.Internal, cluster.ReasonReplicate); err != nil {
		return err
	}
	return n.log.Propose(ctx, cluster.OpBlobAdd, cluster.BlobLocation{Blob: ref, Node: target})
}

// leaveRaft asks the leader to take this node out of the configuration, so
// that a scaled-down node does not linger as a voter the cluster waits for.
// (Should this fail, the leader also removes servers whose node it sees
// leave gossip.) A node that is the leader still, or alone, stays.
func (n *Node) leaveRaft(ctx context.Context) {
	id, _ := n.store.Leader()
	if id == "" || id == n.store.ID() {
		return
	}
	m, ok := n.members.ByID(id)
	if !ok || m.Meta.Internal == "" {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := n.peers.Remove(rctx, m.Meta.Internal, cluster.RemoveRequest{ID: n.store.ID(), Name: n.cfg.Name})
	if err != nil {
		n.logger.Warn("leaving raft", "err", err)
	}
}
