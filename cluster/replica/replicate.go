package replica

import (
	"context"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/cluster/peerproto"
	"github.com/gosty/gosty/internal/tick"
)

// Nodes is what replication and the hand-off need of the node that runs
// them: who can take a copy, whose disk is full, and the push that makes
// a copy and records it.
type Nodes interface {
	// Alive is the set of nodes that can hold and serve blobs now (alive,
	// not leaving, the incarnation the log knows).
	Alive() map[string]bool
	// Workers are the alive nodes that are not leaving.
	Workers() []cluster.Worker
	// Full reports whether a node has no room on its disk.
	Full(name string) bool
	// PushCopy sends a local blob to target (a manifest, set, with every
	// file it lists) and records the copy.
	PushCopy(ctx context.Context, ref cluster.BlobRef, set bool, target, reason string) error
}

// Config is what a Replicator is built from.
type Config struct {
	Name     string // this node's
	Replicas int    // the replication factor (--replicas)
	FSM      *cluster.FSM
	Nodes    Nodes
	Logger   *slog.Logger
	Interval time.Duration // between rounds
}

// Replicator keeps every durable blob (sources, manifests with the files
// they list, published files of jobs from the first log format) at the
// replication factor. Each blob is the duty of its lowest-named alive
// holder, which pushes copies to the nodes that rank highest for that blob
// (rendezvous hashing spreads the copies and keeps the choice stable).
//
// Its cost follows what changes, not what is kept: the FSM tells it which
// blobs became durable or lost a holder (OnBlobs), and only those are
// looked at each round, plus the ones found short of copies before. The
// whole set of durable blobs is walked, a page at a time with the lock let
// go in between, only when membership changes (a node that dies takes its
// copies with it) and every fullScanEvery as a safety net.
type Replicator struct {
	cfg Config

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

// New returns a Replicator whose first round walks every blob.
func New(cfg Config) *Replicator {
	return &Replicator{cfg: cfg, dirty: map[string]bool{}, under: map[string]bool{}, full: true, maxDir: maxDirty}
}

// OnBlobs takes the FSM's blob events; it runs in raft's apply loop and
// only records them.
func (r *Replicator) OnBlobs(ev cluster.BlobEvents) {
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

// UnderReplicated is how many durable blobs have fewer copies on alive
// nodes than the replication factor (as of the last round).
func (r *Replicator) UnderReplicated() int { return int(r.gauge.Load()) }

// Run makes a round every interval until ctx ends.
func (r *Replicator) Run(ctx context.Context) {
	tick.Every(ctx, r.cfg.Interval, func() {
		r.round(ctx)
	})
}

type duty struct {
	ref     cluster.BlobRef
	set     bool
	holders map[string]bool
}

// round looks at the blobs due (all of them, or those that changed and
// those short of copies before), records which are short, and pushes the
// copies that are this node's duty.
func (r *Replicator) round(ctx context.Context) {
	alive := r.cfg.Nodes.Alive()
	full, check := r.due(alive)
	want := min(r.cfg.Replicas, len(alive))
	duties, under := r.look(ctx, full, check, alive, want)
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
	r.push(ctx, duties, alive, want)
}

// due says whether this round walks every blob (full), or else which it
// looks at, and starts a new set of changed blobs.
func (r *Replicator) due(alive map[string]bool) (full bool, check []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	full = r.full || !maps.Equal(alive, r.alive) || time.Since(r.last) > fullScanEvery
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
	return full, check
}

// look finds the durable blobs among those due with fewer than want
// copies on alive nodes (under), and the ones this node, their
// lowest-named alive holder, must copy.
func (r *Replicator) look(ctx context.Context, full bool, check []string, alive map[string]bool, want int) ([]duty, map[string]bool) {
	var duties []duty
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
			if first == r.cfg.Name {
				duties = append(duties, duty{ref: b.Ref(), set: b.Set(), holders: b.Nodes.Map()})
			}
		}
	}
	if !full {
		r.cfg.FSM.Read(func(st *cluster.State) {
			for _, h := range check {
				if b, ok := st.Blob(h); ok {
					look(b)
				}
			}
		})
		return duties, under
	}
	r.eachBlob(ctx, look)
	return duties, under
}

// eachBlob calls fn for every blob record, scanPage records per read
// lock, so that a large state never holds the lock for a whole walk.
func (r *Replicator) eachBlob(ctx context.Context, fn func(*cluster.BlobHolders)) {
	after := ""
	for more := true; more && ctx.Err() == nil; {
		more = false
		r.cfg.FSM.Read(func(st *cluster.State) {
			k := 0
			st.Blobs(after, func(b *cluster.BlobHolders) bool {
				fn(b)
				after = b.Hash
				k++
				more = k == scanPage
				return !more
			})
		})
	}
}

// push makes the copies of duties, to the alive nodes that rank highest
// and have room, and has each blob looked at again next round.
func (r *Replicator) push(ctx context.Context, duties []duty, alive map[string]bool, want int) {
	for _, d := range duties {
		need := want - countAlive(d.holders, alive)
		for _, target := range RankTargets(d.ref.Hash, alive, d.holders) {
			if need <= 0 || ctx.Err() != nil {
				break
			}
			if r.cfg.Nodes.Full(target) {
				continue // below its disk reserve: it would refuse (507)
			}
			if err := r.cfg.Nodes.PushCopy(ctx, d.ref, d.set, target, peerproto.ReasonReplicate); err != nil {
				r.cfg.Logger.Warn("replication push failed", "blob", d.ref.Hash, "set", d.set, "to", target, "err", err)
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
