package gc

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/gosty/gosty/cluster"
)

// Manifests is what the collector needs of a manifest cache: the manifest
// ref names, read from this node or a holder of it.
type Manifests interface {
	Get(ctx context.Context, ref cluster.BlobRef) (*cluster.Manifest, error)
}

// Collector deletes local blobs that no job needs any more: what the log
// stopped referencing (deleted, expired or forgotten jobs, the chunks and
// intermediate encodes of finished ones), and copies that never got a
// record. A blob stays while
//   - the log has a record of it (something references it),
//   - it is a file listed by a manifest the log says this node holds, or
//     by a referenced manifest stored here that a round looks at (a copy
//     being pushed here arrives manifest first; until the push is recorded,
//     the files are also young),
//   - it is pinned (stored by a task or an upload whose command is not
//     committed yet), or
//   - it was stored (or stored again) within the grace period.
//
// It cannot race a store of the same bytes (a file uploaded again after
// its job was deleted, init segments and playlists two jobs share, a copy
// pushed or pulled here again). The blob store stores a blob and deletes
// it under the blob's lock (cluster.BlobStore.DeleteIf); storing bytes that
// are already there refreshes the blob's modification time under that
// lock, and a writer's pin is taken under it too. Each delete decides
// under that lock, right before removing the file, in this order: the
// modification time is older than the grace and no pin is held; then,
// under the state's read lock (a per-blob look, not a copy), the log
// still has no record of the blob and no manifest came since the keep
// set was made. A store therefore either comes first and is seen (fresh, or
// pinned until its command is applied here, after which the record is
// seen), or comes after the delete and writes a new copy. The grace only
// has to cover the stores nothing pins (a copy pushed or pulled here) until
// this node's log has the record that keeps them.
//
// It needs no command: a blob nothing references has no record to update.
// Its cost follows what changes: each round looks at the blobs the FSM says
// lost their last reference (OnBlobs) and the blobs stored here since the
// last round (a copy pushed after its job let go of it, a task's output
// whose result was refused), and again, later, at those that were too young
// or pinned; the whole blob directory is walked at start and every
// fullSweepEvery (releases it did not hear while it was down).
type Collector struct {
	Name      string // this node's
	FSM       *cluster.FSM
	Blobs     *cluster.BlobStore
	Pins      *Pins
	Manifests Manifests
	Logger    *slog.Logger
	// Grace: nothing stored (or stored again) more recently is collected;
	// it covers copies that arrive unpinned (pushes, pulls).
	Grace    time.Duration
	Interval time.Duration
	// Lost drops this node's claim to a manifest the log says it holds
	// but whose document is gone from here (its files are not kept).
	Lost func(ctx context.Context, set cluster.BlobRef)
	// beforeDelete (tests) is called when a blob is about to be deleted.
	beforeDelete func(hash string)

	mu         sync.Mutex
	candidates map[string]bool
	sweep      bool // walk everything next round

	// arriving (owned by the Run goroutine) holds the manifests stored here that the log does not record
	// here yet (a copy being pushed: manifest first, then its files, then
	// the record), by when a round first saw them. Their files are kept
	// while the push goes on, in rounds that no longer look at the
	// manifest itself. An entry goes when the log records the copy here,
	// forgets the manifest, or after arrivalTimeout (a push that died).
	arriving map[string]arrival
}

type arrival struct {
	ref   cluster.BlobRef
	since time.Time
}

const (
	fullSweepEvery = time.Hour
	arrivalTimeout = time.Hour
	maxCandidates  = 200_000 // beyond it the next round walks everything
)

// OnBlobs takes the FSM's blob events; it runs in raft's apply loop and
// only records the released blobs for the next round.
func (c *Collector) OnBlobs(ev cluster.BlobEvents) {
	if len(ev.Released) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.candidates == nil {
		c.candidates = map[string]bool{}
	}
	for _, b := range ev.Released {
		if len(c.candidates) >= maxCandidates {
			c.sweep = true
			return
		}
		c.candidates[b.Hash] = true
	}
}

// Run collects every interval: the released blobs, or everything when a
// sweep is due.
func (c *Collector) Run(ctx context.Context) {
	t := time.NewTicker(c.Interval)
	defer t.Stop()
	lastSweep := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		stored, all := c.Blobs.Stored()
		c.mu.Lock()
		sweep := c.sweep || all || time.Since(lastSweep) > fullSweepEvery
		cands := c.candidates
		c.candidates, c.sweep = nil, false
		c.mu.Unlock()
		for _, h := range stored {
			if cands == nil {
				cands = map[string]bool{}
			}
			cands[h] = true
		}
		switch {
		case sweep:
			lastSweep = time.Now()
			c.collect(ctx, nil)
		case len(cands) > 0:
			c.collect(ctx, cands)
		}
	}
}

// collect deletes what it may of cands (nil: every local blob).
func (c *Collector) collect(ctx context.Context, cands map[string]bool) {
	local := c.local(cands)
	if len(local) == 0 {
		return
	}
	keep, gen, ok := c.kept(ctx, local)
	if !ok {
		return
	}
	c.deleteUnkept(ctx, local, keep, gen, cands == nil)
}

// local lists which of cands are stored here (nil: every local blob), and
// with a released manifest the files it lists: they go with it, unless
// something keeps them.
func (c *Collector) local(cands map[string]bool) []string {
	var local []string
	if cands == nil {
		list, err := c.Blobs.List()
		if err != nil {
			c.Logger.Warn("blob collection: list failed", "err", err)
			return nil
		}
		for _, b := range list {
			local = append(local, b.Ref.Hash)
		}
		return local
	}
	for h := range cands {
		if c.Blobs.Has(h) {
			local = append(local, h)
		}
	}
	released := map[string]bool{}
	for _, h := range local {
		released[h] = true
	}
	for _, h := range local {
		if m, err := c.localManifest(h); err == nil {
			for _, f := range m.Files {
				if !released[f.Hash] && c.Blobs.Has(f.Hash) {
					released[f.Hash] = true
					local = append(local, f.Hash)
				}
			}
		}
	}
	return local
}

// deleteUnkept deletes the blobs of local that keep does not hold, each
// deciding under the blob's lock (deleteIf); those too young or pinned
// now are looked at again next round.
func (c *Collector) deleteUnkept(ctx context.Context, local []string, keep map[string]bool, gen uint64, sweep bool) {
	cutoff := time.Now().Add(-c.Grace)
	deleted := 0
	var later []string // too young or pinned now: look again next round
	defer func() {
		if len(later) > 0 {
			c.OnBlobs(cluster.BlobEvents{Released: refsOf(later)})
		}
	}()
	for _, h := range local {
		if keep[h] {
			continue
		}
		if ctx.Err() != nil {
			return
		}
		gone, young, changed, err := c.deleteIf(h, cutoff, gen)
		switch {
		case err != nil:
			c.Logger.Warn("blob collection: delete failed", "blob", h, "err", err)
		case young:
			later = append(later, h)
		case changed:
			c.mu.Lock()
			c.sweep = true // something changed: look again next round
			c.mu.Unlock()
			return
		case gone:
			deleted++
			c.Logger.Debug("blob collected", "blob", h)
		}
	}
	if deleted > 0 {
		c.Logger.Info("blobs collected", "blobs", deleted, "sweep", sweep)
	}
}

// deleteIf is the decision and the delete, under the blob's lock (no
// store of it runs meanwhile), in the order that leaves no gap: a writer
// pins under that lock while storing and lets go of the pin only once the
// command naming the blob is applied here, so a blob not pinned now is
// either not being stored or already recorded. young: stored after
// cutoff or pinned; changed: the log recorded it, or a manifest came,
// since the keep set was made (at generation gen).
func (c *Collector) deleteIf(h string, cutoff time.Time, gen uint64) (gone, young, changed bool, err error) {
	gone, err = c.Blobs.DeleteIf(h, func(mt time.Time) bool {
		if mt.After(cutoff) || c.Pins.Has(h) {
			young = true // stored lately, or its command is not in yet
			return false
		}
		// Still no record, and no manifest added since the keep
		// set was made (a per-blob look under the state's lock).
		c.FSM.Read(func(st *cluster.State) {
			_, referenced := st.Blob(h)
			changed = referenced || st.SetGeneration() != gen
		})
		if changed {
			return false
		}
		if c.beforeDelete != nil {
			c.beforeDelete(h)
		}
		return true
	})
	return gone, young, changed, err
}

// kept returns which of local the log still needs here: blobs with a
// record, and files of referenced manifests stored here. gen is the
// state's manifest generation the answer holds for.
func (c *Collector) kept(ctx context.Context, local []string) (keep map[string]bool, gen uint64, ok bool) {
	keep = map[string]bool{}
	var sets []cluster.BlobRef
	now := time.Now()
	if c.arriving == nil {
		c.arriving = map[string]arrival{}
	}
	c.FSM.Read(func(st *cluster.State) {
		gen = st.SetGeneration()
		for _, h := range local {
			if b, ok := st.Blob(h); ok {
				keep[h] = true
				if b.Set() && !b.Nodes.Has(c.Name) {
					if _, seen := c.arriving[h]; !seen {
						c.arriving[h] = arrival{ref: b.Ref(), since: now}
					}
				}
			}
		}
		for h, a := range c.arriving {
			b, ok := st.Blob(h)
			if !ok || b.Nodes.Has(c.Name) || now.Sub(a.since) > arrivalTimeout {
				delete(c.arriving, h) // recorded here (listed below), forgotten, or given up
				continue
			}
			sets = append(sets, a.ref)
		}
		st.Sets(func(b *cluster.BlobHolders) bool {
			if b.Nodes.Has(c.Name) {
				sets = append(sets, b.Ref())
			}
			return true
		})
	})
	want := map[string]bool{}
	for _, h := range local {
		if !keep[h] {
			want[h] = true
		}
	}
	for _, s := range sets {
		if len(want) == 0 {
			break
		}
		if !c.Blobs.Has(s.Hash) {
			// Recorded here but lost: nothing of it to keep, and the
			// claim goes so that replication makes the copy again.
			if _, arriving := c.arriving[s.Hash]; !arriving && c.Lost != nil {
				c.Lost(ctx, s)
			}
			continue
		}
		m, err := c.Manifests.Get(ctx, s)
		if err != nil {
			c.Logger.Warn("blob collection: a manifest stored here cannot be read; collecting nothing this round", "manifest", s.Hash, "err", err)
			return nil, 0, false
		}
		for _, f := range m.Files {
			if want[f.Hash] {
				keep[f.Hash] = true
				delete(want, f.Hash)
			}
		}
	}
	return keep, gen, true
}

func refsOf(hashes []string) []cluster.BlobRef {
	out := make([]cluster.BlobRef, len(hashes))
	for i, h := range hashes {
		out[i] = cluster.BlobRef{Hash: h}
	}
	return out
}

// localManifest reads a blob stored here as a manifest, if it is one (it
// looks at the first bytes before reading more).
func (c *Collector) localManifest(h string) (*cluster.Manifest, error) {
	ref, ok := c.Blobs.Stat(h)
	if !ok || ref.Size > cluster.MaxManifestBytes {
		return nil, cluster.ErrNotFound
	}
	f, err := c.Blobs.Open(h)
	if err != nil {
		return nil, err
	}
	head := make([]byte, len(manifestPrefix))
	_, err = io.ReadFull(f, head)
	f.Close()
	if err != nil || string(head) != manifestPrefix {
		return nil, cluster.ErrNotFound
	}
	return c.Manifests.Get(context.Background(), ref)
}

// manifestPrefix is how every manifest document starts.
var manifestPrefix = fmt.Sprintf(`{"v":%d,"job":`, cluster.ManifestVersion)
