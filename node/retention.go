package node

import (
	"cmp"
	"context"
	"errors"
	"time"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/internal/tick"
)

// The leader's two bounds on what the cluster keeps: media expire after
// their job's TTL (job.expire), and finished jobs leave the history
// (job.forget) beyond --history. Both loops look at the front of an index
// the state keeps (jobs by expiry, finished jobs by finish time), so a
// round costs what is due, not the history.

// expireLoop, while this node leads, proposes job.expire for every finished
// job whose TTL has run out. The command carries the leader's clock and the
// FSM refuses it when early, so a skewed or stale leader cannot expire a
// job before its time as the log sees it; applying it drops the job's
// blobs' references and every holder's collector deletes them.
func (n *Node) expireLoop(ctx context.Context) {
	tick.Every(ctx, time.Second, func() {
		if !n.store.IsLeader() {
			return
		}
		now := time.Now()
		var due []string
		n.store.FSM().Read(func(st *cluster.State) {
			st.Expiring(now, func(j *cluster.Job) bool {
				due = append(due, j.ID)
				return len(due) < 1000
			})
		})
	round:
		for _, id := range due {
			err := n.store.Propose(ctx, cluster.OpJobExpire, cluster.JobRef{JobID: id, Reason: "ttl"})
			switch {
			case err == nil:
				var freed int64
				n.store.FSM().Read(func(st *cluster.State) {
					if j, ok := st.JobRecord(id); ok {
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
	})
}

// historyLoop, while this node leads and the cluster writes log version 2,
// removes the oldest finished jobs beyond --history (count and age), a
// thousand at a time.
func (n *Node) historyLoop(ctx context.Context) {
	if n.cfg.HistoryJobs == 0 && n.cfg.HistoryAge == 0 {
		return
	}
	t := time.NewTicker(cmp.Or(n.cfg.HistoryInterval, time.Minute))
	defer t.Stop()
	for {
		if n.store.IsLeader() && n.store.FSM().LogVersion() >= cluster.LogV2 {
			for ctx.Err() == nil {
				ids := n.beyondHistory(time.Now())
				if len(ids) == 0 {
					break
				}
				if err := n.store.Propose(ctx, cluster.OpJobForget, cluster.JobForget{JobIDs: ids, Reason: "history"}); err != nil {
					n.logger.Warn("forgetting old jobs refused", "jobs", len(ids), "err", err)
					break
				}
				n.logger.Info("old jobs left the history", "jobs", len(ids), "oldest", ids[0])
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// beyondHistory lists up to cluster.MaxForget finished jobs, oldest first,
// that the history bounds leave out at now.
func (n *Node) beyondHistory(now time.Time) []string {
	var ids []string
	n.store.FSM().Read(func(st *cluster.State) {
		excess := 0
		if n.cfg.HistoryJobs > 0 {
			excess = st.FinishedCount() - n.cfg.HistoryJobs
		}
		st.OldestFinished(func(j *cluster.Job) bool {
			old := n.cfg.HistoryAge > 0 && now.Sub(j.FinishedAt) > n.cfg.HistoryAge
			if len(ids) >= excess && !old {
				return false
			}
			ids = append(ids, j.ID)
			return len(ids) < cluster.MaxForget
		})
	})
	return ids
}
