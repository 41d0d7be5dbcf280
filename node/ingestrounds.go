package node

// The ingester's rounds (ingest.go has the why): stopping the fetches of
// jobs that ended or were taken elsewhere, resuming this node's own after a
// restart, and, on the leader, taking over those of nodes that are gone.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/internal/tick"
)

// Run keeps the fetches' context and, every tick, settles ingests no one
// runs: on every node its own that it does not run (it restarted: it
// fetches them again), on the leader those whose node is not alive (it
// takes them over). It also stops fetches of jobs that ended or were taken
// from this node.
func (g *ingester) Run(ctx context.Context) {
	g.mu.Lock()
	g.base = ctx
	g.mu.Unlock()
	defer func() {
		// ctx is done: no reserve adds a fetch once it has seen that under
		// the lock, and one that is adding has done so by now.
		g.mu.Lock()
		g.mu.Unlock() //nolint:staticcheck // a barrier
		g.wg.Wait()
	}()
	tick.Every(ctx, g.tick, func() {
		g.round(ctx)
	})
}

// round is one pass over the ingesting jobs (as many as are fetching, not
// the history: the state indexes jobs by state).
func (g *ingester) round(ctx context.Context) {
	n := g.n
	if !n.joined.Load() {
		return
	}
	var adopt []cluster.Job // this node's without a fetch, or gone nodes' (leader)
	var ended []string
	leader := n.store.IsLeader()
	now := time.Now()
	seen := map[string]bool{}
	g.mu.Lock()
	if !leader {
		clear(g.gone)
	}
	n.store.FSM().Read(func(st *cluster.State) {
		for id := range g.runs {
			if j, ok := st.JobRecord(id); ok && (j.State != cluster.JobIngesting || j.Origin != n.cfg.Name) {
				ended = append(ended, id)
			}
		}
		st.JobsInState(cluster.JobIngesting, func(j *cluster.Job) bool {
			seen[j.ID] = true
			switch {
			case j.Origin == n.cfg.Name:
				if _, ok := g.runs[j.ID]; !ok {
					adopt = append(adopt, *j)
				}
			case leader:
				if m, ok := n.members.Member(j.Origin); ok && (m.State == cluster.StateAlive || m.State == cluster.StateSuspect) {
					delete(g.gone, j.ID)
				} else if since, marked := g.gone[j.ID]; !marked {
					g.gone[j.ID] = now // gossip may be wrong for a moment: wait a grace
				} else if now.Sub(since) >= g.grace {
					adopt = append(adopt, *j)
				}
			}
			return true
		})
	})
	for id := range g.gone {
		if !seen[id] {
			delete(g.gone, id)
		}
	}
	for _, id := range ended {
		if r, ok := g.runs[id]; ok {
			r.cancel() // canceled, failed or taken elsewhere: stop fetching
		}
	}
	g.mu.Unlock()
	for _, j := range adopt {
		if ctx.Err() != nil {
			return
		}
		g.adopt(ctx, j)
	}
}

// adopt fetches an ingesting job no node runs: this node's own after a
// restart, or a gone node's, which it takes over first (job.ingest_take).
// A source this node may not fetch fails the job; a node that fetches all
// it may already leaves it to the next round.
func (g *ingester) adopt(ctx context.Context, j cluster.Job) {
	n := g.n
	from, me := j.Origin, n.cfg.Name
	what := "restarted during the fetch"
	if from != me {
		what = "left the cluster during the fetch"
	}
	u, _, err := n.checkSource(ctx, j.SourceURL, n.watchedSource(j))
	if err != nil {
		reason := fmt.Sprintf("the node fetching the source (%s) %s, and %s may not fetch it: %v; submit it again", from, what, me, err)
		g.logger.Warn("failing an ingest no node runs", "job", j.ID, "reason", reason)
		g.fail(ctx, j.ID, from, reason)
		return
	}
	run, err := g.reserve(j.ID)
	if err != nil {
		return
	}
	if from != me {
		err := n.log.Propose(ctx, cluster.OpJobIngestTake, cluster.IngestTake{JobID: j.ID, From: from, To: me})
		if err != nil {
			g.release(j.ID)
			if !errors.Is(err, cluster.ErrConflict) && !errors.Is(err, cluster.ErrNotFound) {
				g.logger.Warn("taking over an ingest failed; the next round tries again", "job", j.ID, "from", from, "err", err)
			}
			return
		}
		j.Origin = me
	}
	g.logger.Info("fetching the source again", "job", j.ID, "url", cluster.RedactURL(j.SourceURL), "node", from, "because", what)
	g.launch(run, j, u)
}
