package replica

import (
	"context"
	"hash/fnv"
	"io"
	"log/slog"
	"sort"
	"time"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/cluster/peerproto"
)

// handoffSettle is how long the hand-off waits before it checks its work
// again: long enough for gossip to spread the leaving flags of nodes that
// started to drain meanwhile.
const handoffSettle = time.Second

// Handoff, when this node leaves, pushes every blob some job still needs
// to other nodes until it has enough copies without this one: the
// replication factor for sources and published outputs, one copy for
// intermediate media of running jobs.
//
// Nodes of a scale-down drain at the same time (a StatefulSet with
// podManagementPolicy Parallel stops them all at once), and a node that
// had not announced its leave yet when this one picked targets may have
// been given copies it will not hand on (it took stock before the copy was
// recorded). So the hand-off checks again, after a moment, with what it
// knows then, until a round finds nothing missing: copies on nodes that
// turned out to be leaving do not count.
func (r *Replicator) Handoff(ctx context.Context, logger *slog.Logger) {
	for round := 1; round <= 5 && ctx.Err() == nil; round++ {
		if r.handoffRound(ctx, round, logger) == 0 {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(handoffSettle):
		}
	}
}

type handoffDuty struct {
	ref     cluster.BlobRef
	set     bool
	holders map[string]bool
	need    int
}

// handoffRound pushes what is missing now and returns how many copies it
// made.
func (r *Replicator) handoffRound(ctx context.Context, round int, logger *slog.Logger) int {
	targets := map[string]bool{}
	for _, w := range r.cfg.Nodes.Workers() {
		if w.Name != r.cfg.Name {
			targets[w.Name] = true
		}
	}
	if len(targets) == 0 {
		return 0 // nobody to hand to: a lone node keeps its data for its return
	}
	duties := r.handoffDuties(ctx, targets)
	pushed := map[string]int{}
	copies := 0
	for _, d := range duties {
		for _, target := range r.roomFirst(RankTargets(d.ref.Hash, targets, d.holders)) {
			if d.need == 0 || ctx.Err() != nil {
				break
			}
			if err := r.cfg.Nodes.PushCopy(ctx, d.ref, d.set, target, peerproto.ReasonReplicate); err != nil {
				logger.Warn("hand-off push failed", "blob", d.ref.Hash, "to", target, "err", err)
				continue
			}
			pushed[target]++
			copies++
			d.need--
		}
	}
	if round == 1 || copies > 0 {
		logger.Info("media handed off", "component", "drain", "round", round, "blobs", len(duties), "copies_to", pushed)
	}
	return copies
}

// handoffDuties lists the blobs held here that have fewer copies on
// targets than they need.
func (r *Replicator) handoffDuties(ctx context.Context, targets map[string]bool) []handoffDuty {
	self := r.cfg.Name
	var duties []handoffDuty
	r.eachBlob(ctx, func(b *cluster.BlobHolders) {
		if !b.Nodes.Has(self) {
			return
		}
		others := map[string]bool{}
		for _, name := range b.Nodes {
			if targets[name] {
				others[name] = true
			}
		}
		need := 1
		if b.Durable() {
			need = r.cfg.Replicas
		}
		if need = min(need, len(targets)) - len(others); need > 0 {
			duties = append(duties, handoffDuty{ref: b.Ref(), set: b.Set(), holders: others, need: need})
		}
	})
	return duties
}

// roomFirst orders targets so that those with room on their disk come
// first (a node that is Full only for a moment may still take a copy).
func (r *Replicator) roomFirst(targets []string) []string {
	out := make([]string, 0, len(targets))
	var full []string
	for _, t := range targets {
		if r.cfg.Nodes.Full(t) {
			full = append(full, t)
		} else {
			out = append(out, t)
		}
	}
	return append(out, full...)
}

// RankTargets orders the alive nodes that lack a blob by rendezvous score.
func RankTargets(hash string, alive, holders map[string]bool) []string {
	var out []string
	for name := range alive {
		if !holders[name] {
			out = append(out, name)
		}
	}
	score := func(name string) uint64 {
		h := fnv.New64a()
		io.WriteString(h, hash)
		io.WriteString(h, name)
		return h.Sum64()
	}
	sort.Slice(out, func(a, b int) bool { return score(out[a]) > score(out[b]) })
	return out
}
