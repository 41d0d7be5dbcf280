package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/raft"

	"github.com/gosty/gosty/cluster"
)

// drainBound bounds the drain: running tasks get the drain timeout, the
// blob hand-off as long again, and leaving raft (leadership transfer
// included) 10 s.
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
// nothing stored only here is lost, hand over leadership and leave raft.
// Leaving gossip follows (close).
func (n *Node) drain(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, drainBound(n.cfg.DrainTimeout))
	defer cancel()
	start := time.Now()
	log := n.logger.With("component", "drain")
	if err := n.members.UpdateMeta(func(m *cluster.MemberMeta) { m.Leaving = true }); err != nil {
		log.Warn("announcing the leave", "err", err)
	}
	n.worker.drain(ctx, n.cfg.DrainTimeout)
	// The hand-off leaves leaveRaft its time, however much media there is.
	deadline, _ := ctx.Deadline()
	hctx, hcancel := context.WithDeadline(ctx, deadline.Add(-leaveRaftTimeout))
	n.repl.Handoff(hctx, n.logger)
	hcancel()
	n.leaveRaft(ctx)
	log.Info("drained", "seconds", time.Since(start).Seconds())
}

// leaveRaft takes this node out of the raft configuration before it goes,
// so that a scaled-down node does not linger as a voter the cluster waits
// for. It asks the leader until the removal is committed: the leader may be
// unknown for a moment (right after this node handed leadership over) or
// change under it. A node that leads hands leadership over first, to a
// voter that stays, and again should a peer that drains at the same time
// hand it back. A node alone in the configuration stays.
//
// This must not be left to the leader, which removes servers whose node
// left gossip: it can only do so while it has a quorum, and when a cluster
// is scaled down to one node the last two voters are that quorum — once
// the departing one is gone, the one that stays can neither commit nor be
// elected.
//
// The leader never lets a leave take the cluster below a quorum of healthy
// voters (cluster.Promoter.Remove): it promotes a healthy non-voter first
// when the voters that stay would be short of one. A leader that leaves
// does the same before it hands leadership over (PrepareLeave), with what
// it knows as the leader: raft's heartbeats tell it at once which voters
// just crashed, which the next leader may not know yet, and the voter it
// hands leadership to must be a healthy one.
func (n *Node) leaveRaft(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, leaveRaftTimeout)
	defer cancel()
	log := n.logger.With("component", "drain")
	self := n.store.ID()
	backoff := 50 * time.Millisecond
	var lastErr error
	for ctx.Err() == nil {
		servers, err := n.store.Configuration()
		if err == nil && !slices.ContainsFunc(servers, func(s raft.Server) bool { return string(s.ID) == self }) {
			return // not (or no longer) a member
		}
		if err == nil && len(servers) == 1 {
			return // alone: it keeps its log for its return
		}
		switch id, _ := n.store.Leader(); {
		case id == self:
			if lastErr = n.promote.PrepareLeave(ctx); lastErr == nil {
				lastErr = n.transferLeadership()
			}
		case id == "":
			lastErr = errors.New("no leader known")
		default:
			m, ok := n.members.ByID(id)
			if !ok || m.Meta.Internal == "" {
				lastErr = fmt.Errorf("leader %s not in gossip", id)
				break
			}
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			lastErr = n.peers.Remove(rctx, m.Meta.Internal, cluster.RemoveRequest{ID: self, Name: n.cfg.Name})
			cancel()
			if lastErr == nil {
				log.Info("left raft", "leader", m.Name)
				return
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
	log.Warn("could not leave raft", "err", lastErr)
}

// leaveRaftTimeout bounds leaveRaft (within the drain's bound).
const leaveRaftTimeout = 10 * time.Second

// transferLeadership hands leadership to a voter that stays (healthy:
// alive in gossip, not leaving, reached by raft) if there is one, else to
// whichever voter raft picks. Nodes of a scale-down drain at once:
// leadership handed to one of them would leave with it.
func (n *Node) transferLeadership() error {
	servers, err := n.store.Configuration()
	if err != nil {
		return fmt.Errorf("leadership transfer: %w", err)
	}
	for _, s := range servers {
		if s.Suffrage != raft.Voter || string(s.ID) == n.store.ID() {
			continue
		}
		if m, ok := n.members.ByID(string(s.ID)); ok && n.promote.Healthy(string(s.ID)) {
			if err := n.store.TransferLeadership(string(s.ID), string(s.Address)); err != nil {
				return fmt.Errorf("leadership transfer to %s: %w", m.Name, err)
			}
			n.logger.Info("leadership transferred", "component", "drain", "to", m.Name)
			return nil
		}
	}
	if err := n.store.TransferLeadership("", ""); err != nil {
		return fmt.Errorf("leadership transfer: %w", err)
	}
	n.logger.Info("leadership transferred", "component", "drain", "to", "any voter (none stays)")
	return nil
}
