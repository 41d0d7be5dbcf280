package node

import (
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"sort"
	"time"

	"github.com/gosty/gosty/cluster"
)

// holders lists the internal addresses of alive nodes (not this one) that
// the log says hold a blob.
func (n *Node) holders(hash string) []string {
	var names []string
	n.store.FSM().Read(func(st *cluster.State) {
		if h := st.Blobs[hash]; h != nil {
			for name := range h.Nodes {
				names = append(names, name)
			}
		}
	})
	sort.Strings(names)
	var out []string
	for _, name := range names {
		if name == n.cfg.Name {
			continue
		}
		if m, ok := n.members.Member(name); ok && m.State == cluster.StateAlive && m.Meta.Internal != "" {
			out = append(out, m.Meta.Internal)
		}
	}
	return out
}

// fetch returns the local path of a blob a task needs, pulling it from a
// holder first when it is not here, and records the new copy in the log.
func (n *Node) fetch(ctx context.Context, ref cluster.BlobRef, reason string) (string, error) {
	p, err := n.blobs.Path(ref.Hash)
	if err != nil {
		return "", err
	}
	if n.blobs.Has(ref.Hash) {
		return p, nil
	}
	holders := n.holders(ref.Hash)
	if len(holders) == 0 {
		return "", fmt.Errorf("blob %s: %w: no alive holder", ref.Hash, cluster.ErrNotFound)
	}
	if err := n.peers.Pull(ctx, ref, holders, reason); err != nil {
		return "", err
	}
	if err := n.log.Propose(ctx, cluster.OpBlobAdd, cluster.BlobLocation{Blob: ref, Node: n.cfg.Name}); err != nil {
		n.logger.Warn("recording a pulled blob failed", "blob", ref.Hash, "err", err)
	}
	return p, nil
}

// openBlob serves a blob from here or streams it from a holder.
func (n *Node) openBlob(ctx context.Context, ref cluster.BlobRef) (io.ReadSeekCloser, error) {
	if f, err := n.blobs.Open(ref.Hash); err == nil {
		return f, nil
	}
	holders := n.holders(ref.Hash)
	if len(holders) == 0 {
		return nil, fmt.Errorf("blob %s: %w", ref.Hash, cluster.ErrNotFound)
	}
	return n.peers.Open(ctx, ref, holders)
}

// replicator keeps every durable blob (sources, published outputs) at the
// replication factor. Each blob is the duty of its lowest-named alive
// holder, which pushes copies to the nodes that rank highest for that blob
// (rendezvous hashing spreads the copies and keeps the choice stable).
type replicator struct {
	n        *Node
	logger   *slog.Logger
	interval time.Duration
}

func (r *replicator) Run(ctx context.Context) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.round(ctx)
	}
}

type replicaDuty struct {
	ref     cluster.BlobRef
	holders map[string]bool
}

func (r *replicator) round(ctx context.Context) {
	n := r.n
	alive := n.aliveNames()
	var duties []replicaDuty
	n.store.FSM().Read(func(st *cluster.State) {
		for hash, ref := range st.Durable() {
			h := st.Blobs[hash]
			if h == nil || !h.Nodes[n.cfg.Name] {
				continue
			}
			live := map[string]bool{}
			first := ""
			for name := range h.Nodes {
				if alive[name] {
					live[name] = true
					if first == "" || name < first {
						first = name
					}
				}
			}
			if first == n.cfg.Name && len(live) < n.cfg.Replicas {
				duties = append(duties, replicaDuty{ref: ref, holders: live})
			}
		}
	})
	for _, d := range duties {
		need := n.cfg.Replicas - len(d.holders)
		for _, target := range rankTargets(d.ref.Hash, alive, d.holders) {
			if need == 0 || ctx.Err() != nil {
				break
			}
			if err := n.pushCopy(ctx, d.ref, target); err != nil {
				r.logger.Warn("replication push failed", "blob", d.ref.Hash, "to", target, "err", err)
				continue
			}
			need--
		}
	}
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
