// Package retention is the leader's two bounds on what the cluster keeps:
// media expire after their job's TTL (job.expire), and finished jobs leave
// the history (job.forget) beyond --history. Both loops look at the front
// of an index the state keeps (jobs by expiry, finished jobs by finish
// time), so a round costs what is due, not the history.
//
// They live here, next to the state whose indexes they read, rather than
// in node, which only builds them from its config and starts them: what a
// round proposes and why is read in one place, and the loops need nothing
// of the node but the raft store (Store, declared here).
package retention

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/internal/tick"
)

// Store is what the loops need of the raft store (*cluster.Store): they
// propose only while this node leads.
type Store interface {
	IsLeader() bool
	FSM() *cluster.FSM
	Propose(ctx context.Context, op cluster.Op, body any) error
}

// Expire, while this node leads, proposes job.expire for every finished
// job whose TTL has run out. The command carries the leader's clock and the
// FSM refuses it when early, so a skewed or stale leader cannot expire a
// job before its time as the log sees it; applying it drops the job's
// blobs' references and every holder's collector deletes them.
func Expire(ctx context.Context, store Store, logger *slog.Logger) {
	tick.Every(ctx, time.Second, func() {
		if !store.IsLeader() {
			return
		}
		now := time.Now()
		var due []string
		store.FSM().Read(func(st *cluster.State) {
			st.Expiring(now, func(j *cluster.Job) bool {
				due = append(due, j.ID)
				return len(due) < 1000
			})
		})
	round:
		for _, id := range due {
			err := store.Propose(ctx, cluster.OpJobExpire, cluster.JobRef{JobID: id, Reason: "ttl"})
			switch {
			case err == nil:
				var freed int64
				store.FSM().Read(func(st *cluster.State) {
					if j, ok := st.JobRecord(id); ok {
						freed = j.FreedBytes
					}
				})
				logger.Info("job media expired", "job", id, "freed_bytes", freed)
			case ctx.Err() != nil:
				return
			case errors.Is(err, cluster.ErrNotLeader):
				break round
			default:
				logger.Warn("expiring a job refused", "job", id, "err", err)
			}
		}
	})
}

// History bounds the finished jobs the cluster lists (--history): Jobs
// of them at most, none older than Age (0: no bound). Interval is how
// often the leader looks (0: a minute).
type History struct {
	Jobs     int
	Age      time.Duration
	Interval time.Duration
}

// Forget, while this node leads and the cluster writes log version 2,
// removes the oldest finished jobs beyond h (count and age), a thousand at
// a time. It returns at once when h bounds nothing.
func Forget(ctx context.Context, store Store, h History, logger *slog.Logger) {
	if h.Jobs == 0 && h.Age == 0 {
		return
	}
	t := time.NewTicker(cmp.Or(h.Interval, time.Minute))
	defer t.Stop()
	for {
		if store.IsLeader() && store.FSM().LogVersion() >= cluster.LogV2 {
			for ctx.Err() == nil {
				ids := h.beyond(store.FSM(), time.Now())
				if len(ids) == 0 {
					break
				}
				if err := store.Propose(ctx, cluster.OpJobForget, cluster.JobForget{JobIDs: ids, Reason: "history"}); err != nil {
					logger.Warn("forgetting old jobs refused", "jobs", len(ids), "err", err)
					break
				}
				logger.Info("old jobs left the history", "jobs", len(ids), "oldest", ids[0])
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// beyond lists up to cluster.MaxForget finished jobs, oldest first, that
// the history bounds leave out at now.
func (h History) beyond(fsm *cluster.FSM, now time.Time) []string {
	var ids []string
	fsm.Read(func(st *cluster.State) {
		excess := 0
		if h.Jobs > 0 {
			excess = st.FinishedCount() - h.Jobs
		}
		st.OldestFinished(func(j *cluster.Job) bool {
			old := h.Age > 0 && now.Sub(j.FinishedAt) > h.Age
			if len(ids) >= excess && !old {
				return false
			}
			ids = append(ids, j.ID)
			return len(ids) < cluster.MaxForget
		})
	})
	return ids
}
