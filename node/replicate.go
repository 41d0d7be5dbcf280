package node

import (
	"context"
	"hash/fnv"
	"io"
	"log/slog"
	"maps"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/cluster/peerproto"
	"github.com/gosty/gosty/internal/tick"
)

// replicator keeps every durable blob (sources, manifests with the files
// they list, published files of jobs from the first log format) at the
// replication factor. Each blob is the duty of its lowest-named alive
// holder, which pushes copies to the nodes that rank highest for that blob
// (rendezvous hashing spreads the copies and keeps the choice stable).
//
// Its cost follows what changes, not what is kept: the FSM tells it which
// blobs became durable or lost a holder (onBlobs), and only those are
// looked at each round, plus the ones found short of copies before. The
// whole set of durable blobs is walked, a page at a time with the lock let
// go in between, only when membership changes (a node that dies takes its
// copies with it) and every fullScanEvery as a safety net.
type replicator struct {
	n        *Node
	logger   *slog.Logger
	interval time.Duration

	mu     sync.Mutex
	dirty  map[string]bool // blobs to look at in the next round
	full   bool            // walk everything in the next round
	under  map[string]bool // durable blobs short of copies (cluster-wide)
	alive  map[string]bool // membership of the last round
	last   time.Time       // last full walk
	gauge  atomic.Int64    // len(under), for the metric
	maxDir int
}

const (
	fullScanEvery = 10 * time.Minute
	scanPage      = 1000
	maxDirty      = 100_000 // beyond it the next round walks everything
)

func newReplicator(n *Node, logger *slog.Logger, interval time.Duration) *replicator {
	return &replicator{n: n, logger: logger, interval: interval, dirty: map[string]bool{}, under: map[string]bool{},
		full: true, maxDir: maxDirty}
}

// onBlobs takes the FSM's blob events; it runs in raft's apply loop and
// only records them.
func (r *replicator) onBlobs(ev cluster.BlobEvents) {
	if len(ev.Durable) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, h := range ev.Durable {
		if len(r.dirty) >= r.maxDir {
			r.full = true
			return
		}
		r.dirty[h] = true
	}
}

// underReplicated is how many durable blobs have fewer copies on alive
// nodes than the replication factor (as of the last round).
func (r *replicator) underReplicated() int { return int(r.gauge.Load()) }

func (r *replicator) Run(ctx context.Context) {
	tick.Every(ctx, r.interval, func() {
		r.round(ctx)
	})
}

type replicaDuty struct {
	ref     cluster.BlobRef
	set     bool
	holders map[string]bool
}

func (r *replicator) round(ctx context.Context) {
	n := r.n
	alive := n.aliveNames()
	r.mu.Lock()
	full := r.full || !maps.Equal(alive, r.alive) || time.Since(r.last) > fullScanEvery
	var check []string
	if !full {
		for h := range r.dirty {
			check = append(check, h)
		}
		for h := range r.under {
			if !r.dirty[h] {
				check = append(check, h)
			}
		}
	}
	r.dirty, r.full, r.alive = map[string]bool{}, false, alive
	if full {
		r.last = time.Now()
	}
	r.mu.Unlock()

	want := min(n.cfg.Replicas, len(alive))
	var duties []replicaDuty
	under := map[string]bool{}
	look := func(b *cluster.BlobHolders) {
		if !b.Durable() {
			return
		}
		live, first := 0, ""
		for _, name := range b.Nodes {
			if alive[name] {
				live++
				if first == "" || name < first {
					first = name
				}
			}
		}
		if live < want {
			under[b.Hash] = true
			if first == n.cfg.Name {
				duties = append(duties, replicaDuty{ref: b.Ref(), set: b.Set(), holders: b.Nodes.Map()})
			}
		}
	}
	if full {
		after := ""
		for more := true; more && ctx.Err() == nil; {
			more = false
			n.store.FSM().Read(func(st *cluster.State) {
				k := 0
				st.Blobs(after, func(b *cluster.BlobHolders) bool {
					look(b)
					after = b.Hash
					k++
					more = k == scanPage
					return !more
				})
			})
		}
	} else {
		n.store.FSM().Read(func(st *cluster.State) {
			for _, h := range check {
				if b, ok := st.Blob(h); ok {
					look(b)
				}
			}
		})
	}
	r.mu.Lock()
	if full {
		r.under = under
	} else {
		for _, h := range check {
			delete(r.under, h)
		}
		maps.Copy(r.under, under)
	}
	r.gauge.Store(int64(len(r.under)))
	r.mu.Unlock()

	for _, d := range duties {
		need := want - countAlive(d.holders, alive)
		for _, target := range rankTargets(d.ref.Hash, alive, d.holders) {
			if need <= 0 || ctx.Err() != nil {
				break
			}
			if n.full(target) {
				continue // below its disk reserve: it would refuse (507)
			}
			if err := n.pushCopy(ctx, d.ref, d.set, target, peerproto.ReasonReplicate); err != nil {
				r.logger.Warn("replication push failed", "blob", d.ref.Hash, "set", d.set, "to", target, "err", err)
				continue
			}
			need--
		}
		r.mu.Lock()
		r.dirty[d.ref.Hash] = true // look again: the copy may have landed
		r.mu.Unlock()
	}
}

func countAlive(holders, alive map[string]bool) int {
	n := 0
	for name := range holders {
		if alive[name] {
			n++
		}
	}
	return n
}

// rankTargets orders the alive nodes that lack a blob by rendezvous score.
func rankTargets(hash string, alive, holders map[string]bool) []string {
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
