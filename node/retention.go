package node

import (
	"context"
	"errors"
	"time"

	"github.com/gosty/gosty/cluster"
)

// expireLoop, while this node leads, proposes job.expire for every finished
// job whose TTL has run out. The command carries the leader's clock and the
// FSM refuses it when early, so a skewed or stale leader cannot expire a
// job before its time as the log sees it; applying it drops the job's
// blobs from the referenced set and every holder's collector deletes them.
func (n *Node) expireLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !n.store.IsLeader() {
			continue
		}
		now := time.Now()
		var due []string
		n.store.FSM().Read(func(st *cluster.State) {
			for id, j := range st.Jobs {
				if exp := j.ExpiresAt(); !exp.IsZero() && !now.Before(exp) {
					due = append(due, id)
				}
			}
		})
	round:
		for _, id := range due {
			err := n.store.Propose(ctx, cluster.OpJobExpire, cluster.JobRef{JobID: id, Reason: "ttl"})
			switch {
			case err == nil:
				var freed int64
				n.store.FSM().Read(func(st *cluster.State) {
					if j := st.Jobs[id]; j != nil {
						freed = j.FreedBytes
					}
				})
				n.logger.Info("job media expired", "job", id, "freed_bytes", freed)
			case ctx.Err() != nil:
				return
			case errors.Is(err, cluster.ErrNotLeader):
				break round
			default:
				n.logger.Warn("expiring a job refused", "job", id, "err", err)
			}
		}
	}
}
