package cluster

import (
	"context"
	"time"
)

// CaughtUp gates loops that act only on the leader and must first see what
// an earlier leader recorded (webhook deliveries, publishing): a new
// leader applies everything committed before its term before it acts, so
// that an attempt the old leader recorded is not made again.
type CaughtUp struct {
	Store *Store
	term  uint64 // the term whose log this node has caught up with
}

// Ready reports whether this node leads and has applied everything
// committed before its current term (one raft barrier per term, bounded
// by 10 s; a barrier that fails is tried again at the next call).
func (c *CaughtUp) Ready(ctx context.Context) bool {
	if !c.Store.IsLeader() {
		c.term = 0
		return false
	}
	cur := c.Store.Term()
	if cur == c.term {
		return true
	}
	bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.Store.Barrier(bctx); err != nil {
		return false
	}
	c.term = cur
	return true
}
