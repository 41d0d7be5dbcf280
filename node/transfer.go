package node

import (
	"context"
	"fmt"
	"io"
	"sort"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gosty/gosty/cluster"
)

// holders lists the internal addresses of alive nodes (not this one) that
// the log says hold a blob; for a blob with no record of its own, those of
// set, the manifest that lists it (whose holders hold every file it lists).
// A node that came back as a new incarnation does not count (see
// cluster.State.LiveHolder).
func (n *Node) holders(hash string, set cluster.BlobRef) []string {
	type holder struct{ name, id string }
	var hs []holder
	n.store.FSM().Read(func(st *cluster.State) {
		h, ok := st.Blob(hash)
		if !ok && !set.IsZero() {
			h, ok = st.Blob(set.Hash)
		}
		if ok {
			for _, name := range h.Nodes {
				hs = append(hs, holder{name, st.Incarnation(name)})
			}
		}
	})
	sort.Slice(hs, func(a, b int) bool { return hs[a].name < hs[b].name })
	var out []string
	for _, h := range hs {
		if h.name == n.cfg.Name {
			continue
		}
		m, ok := n.members.Member(h.name)
		if ok && m.State == cluster.StateAlive && m.Meta.Internal != "" && (h.id == "" || h.id == m.Meta.ID) {
			out = append(out, m.Meta.Internal)
		}
	}
	return out
}

// holderWait is how long a task waits for a holder the log names to be
// alive before it calls its input lost: the holder may be restarting, or
// alive to the leader that assigned the task before it is to this node.
// (A lost input requeues the task, and a task that finds its input lost
// cluster.MaxLostInput times in a row fails its job.)
const holderWait = 10 * time.Second

// awaitHolder waits up to holderWait for a live holder of hash while the
// log names any holder at all.
func (n *Node) awaitHolder(ctx context.Context, hash string) []string {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	deadline := time.Now().Add(holderWait)
	for time.Now().Before(deadline) {
		named := false
		n.store.FSM().Read(func(st *cluster.State) {
			b, ok := st.Blob(hash)
			named = ok && len(b.Nodes) > 0
		})
		if !named {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if hs := n.holders(hash, cluster.BlobRef{}); len(hs) > 0 {
			return hs
		}
	}
	return nil
}

// fetch returns the local path of a blob a task needs, pulling it from a
// holder first when it is not here; pulled says it was. Under log version
// 1 the new copy is recorded at once (blob.add); from version 2 the task
// result that needed it records it.
func (n *Node) fetch(ctx context.Context, ref cluster.BlobRef, reason string) (path string, pulled bool, err error) {
	p, err := n.blobs.Path(ref.Hash)
	if err != nil {
		return "", false, err
	}
	if n.blobs.Has(ref.Hash) {
		if ref.Size > verifyBeforeUse || n.check.ok(ref.Hash) || n.check.verify(ctx, ref, nil) == nil {
			return p, false, nil
		}
		// Damaged here (now deleted): fetch a good copy like any other.
	}
	holders := n.holders(ref.Hash, cluster.BlobRef{})
	if len(holders) == 0 {
		holders = n.awaitHolder(ctx, ref.Hash)
	}
	if len(holders) == 0 {
		return "", false, fmt.Errorf("blob %s: %w: no alive holder", ref.Hash, cluster.ErrNotFound)
	}
	if err := n.peers.Pull(ctx, ref, holders, reason); err != nil {
		return "", false, err
	}
	if n.store.FSM().LogVersion() < cluster.LogV2 {
		if err := n.log.Propose(ctx, cluster.OpBlobAdd, cluster.BlobLocation{Blob: ref, Node: n.cfg.Name}); err != nil {
			n.logger.Warn("recording a pulled blob failed", "blob", ref.Hash, "err", err)
		}
	}
	return p, true, nil
}

// openBlob serves a blob from here or streams it from a holder (of the
// blob, or of set, the manifest that lists it).
func (n *Node) openBlob(ctx context.Context, ref, set cluster.BlobRef) (io.ReadSeekCloser, error) {
	if f, ok := n.check.open(ctx, ref); ok {
		return f, nil
	}
	holders := n.holders(ref.Hash, set)
	if len(holders) == 0 {
		return nil, fmt.Errorf("blob %s: %w", ref.Hash, cluster.ErrNotFound)
	}
	return n.peers.Open(ctx, ref, holders)
}

// holderLacks corrects the log when a node the log names as a holder of a
// blob answers that it has none: that claim goes (in the background; a
// pull does not wait for it).
func (n *Node) holderLacks(ref cluster.BlobRef, addr string) {
	var name string
	for _, m := range n.members.Members() {
		if m.Meta.Internal == addr {
			name = m.Name
		}
	}
	if name == "" {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var claimed bool
		n.store.FSM().Read(func(st *cluster.State) {
			b, ok := st.Blob(ref.Hash)
			claimed = ok && b.Nodes.Has(name)
		})
		if !claimed {
			return
		}
		if err := n.log.Propose(ctx, cluster.OpBlobRemove, cluster.BlobLocation{Blob: ref, Node: name}); err != nil {
			n.logger.Warn("dropping a claim its holder denies", "blob", ref.Hash, "node", name, "err", err)
			return
		}
		n.logger.Warn("dropped a claim its holder denies", "blob", ref.Hash, "node", name)
	}()
}

// setPushes is how many files of a manifest go to a peer at once.
const setPushes = 4

// pushCopy sends a local blob to a node and records the new copy. For a
// manifest (set) it sends the manifest first, so that the target's
// collector keeps the files that follow, then every file it lists, and
// records the copy once the target holds them all.
func (n *Node) pushCopy(ctx context.Context, ref cluster.BlobRef, set bool, target, reason string) error {
	m, ok := n.members.Member(target)
	if !ok || m.Meta.Internal == "" {
		return fmt.Errorf("push to %s: %w", target, cluster.ErrNotFound)
	}
	if err := n.peers.Push(ctx, ref, m.Meta.Internal, reason); err != nil {
		return err
	}
	if set {
		man, err := n.manifests.Get(ctx, ref)
		if err != nil {
			return err
		}
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(setPushes)
		for _, f := range man.Files {
			g.Go(func() error { return n.peers.Push(gctx, f.Ref(), m.Meta.Internal, reason) })
		}
		if err := g.Wait(); err != nil {
			return fmt.Errorf("push manifest %s to %s: %w", ref.Hash, target, err)
		}
	}
	return n.log.Propose(ctx, cluster.OpBlobAdd, cluster.BlobLocation{Blob: ref, Node: target})
}

// holdsSet reports whether this node has a manifest and every file it
// lists.
func (n *Node) holdsSet(ctx context.Context, ref cluster.BlobRef) (bool, error) {
	if !n.blobs.Has(ref.Hash) {
		return false, nil
	}
	m, err := n.manifests.Get(ctx, ref)
	if err != nil {
		return false, err
	}
	for _, f := range m.Files {
		if !n.blobs.Has(f.Hash) {
			return false, nil
		}
	}
	return true, nil
}
