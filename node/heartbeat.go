package node

import (
	"context"
	"fmt"
	"time"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/internal/tick"
)

// heartbeats tells the leader, every interval, which tasks run here, so
// that their leases hold while they make progress.
func (n *Node) heartbeats(ctx context.Context) {
	interval := 2 * time.Second
	if n.cfg.Fast {
		interval = time.Second
	}
	tick.Every(ctx, interval, func() {
		hb := n.worker.beat()
		if len(hb.Tasks) == 0 {
			return
		}
		if err := n.sendHeartbeat(ctx, hb); err != nil {
			n.logger.Debug("heartbeat not delivered", "err", err)
		}
	})
}

func (n *Node) sendHeartbeat(ctx context.Context, hb cluster.Heartbeat) error {
	if n.store.IsLeader() {
		return n.sched.Heartbeat(ctx, hb)
	}
	id, _ := n.store.Leader()
	m, ok := n.members.ByID(id)
	if id == "" || !ok || m.Meta.Internal == "" {
		return fmt.Errorf("heartbeat: %w: no reachable leader", cluster.ErrNotLeader)
	}
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return n.peers.Heartbeat(hctx, m.Meta.Internal, hb)
}
