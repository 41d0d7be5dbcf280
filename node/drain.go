package node

import (
	"context"
	"time"

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
// restart): announce it, finish or hand back the running tasks (the
// worker), make sure nothing stored only here is lost (the replicator's
// hand-off, cluster/replica), hand over leadership and leave raft
// (cluster.Leaver). Leaving gossip follows (close).
func (n *Node) drain(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, drainBound(n.cfg.DrainTimeout))
	defer cancel()
	start := time.Now()
	log := n.logger.With("component", "drain")
	if err := n.members.UpdateMeta(func(m *cluster.MemberMeta) { m.Leaving = true }); err != nil {
		log.Warn("announcing the leave", "err", err)
	}
	n.worker.drain(ctx, n.cfg.DrainTimeout)
	// The hand-off leaves leaving raft its time, however much media there is.
	deadline, _ := ctx.Deadline()
	hctx, hcancel := context.WithDeadline(ctx, deadline.Add(-cluster.LeaveTimeout))
	n.repl.Handoff(hctx, n.logger)
	hcancel()
	leaver := &cluster.Leaver{Store: n.store, Members: n.members, Promoter: n.promote, Peers: n.peers,
		Name: n.cfg.Name, Logger: log}
	leaver.Leave(ctx)
	log.Info("drained", "seconds", time.Since(start).Seconds())
}
