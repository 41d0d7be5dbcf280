package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/gosty/gosty/cluster"
)

// pins protects blobs that exist on disk but are not yet named by a
// committed command (an upload before its job is submitted, a task's outputs
// before its result is committed) from the collector. A writer takes its
// pin while the blob store stores the blob (holder, a cluster.Hold), and
// releases it once the command that names the blob is applied on this
// node (or refused): there is no moment when such a blob is on disk,
// unpinned and not yet recorded.
type pins struct {
	mu    sync.Mutex
	owner map[any][]string
	count map[string]int
	// held are the owners of holdFor's pins by hash: released early when
	// the log makes the blob durable (its job committed and applied
	// here: the record keeps it now) or lets go of it.
	held map[string][]any
}

func newPins() *pins {
	return &pins{owner: map[any][]string{}, count: map[string]int{}, held: map[string][]any{}}
}

// onBlobs releases the holds on blobs the log now keeps (durable) or
// dropped (released).
func (p *pins) onBlobs(ev cluster.BlobEvents) {
	var owners []any
	p.mu.Lock()
	for _, h := range ev.Durable {
		owners = append(owners, p.held[h]...)
		delete(p.held, h)
	}
	for _, b := range ev.Released {
		owners = append(owners, p.held[b.Hash]...)
		delete(p.held, b.Hash)
	}
	p.mu.Unlock()
	for _, o := range owners {
		p.release(o)
	}
}

func (p *pins) add(owner any, hash string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.owner[owner] = append(p.owner[owner], hash)
	p.count[hash]++
}

// holder pins for owner what the blob store is storing.
func (p *pins) holder(owner any) cluster.Hold {
	return func(hash string) { p.add(owner, hash) }
}

// holdFor pins what the blob store is storing for d (a copy streamed here
// for an upload whose job is not committed yet); a timer releases it.
//
// The hold ends early when the log makes the blob durable or releases it
// (onBlobs): then the record, or its absence, decides.
func (p *pins) holdFor(d time.Duration) cluster.Hold {
	return func(hash string) {
		owner := new(int)
		p.add(owner, hash)
		p.mu.Lock()
		p.held[hash] = append(p.held[hash], owner)
		p.mu.Unlock()
		time.AfterFunc(d, func() {
			p.release(owner)
			p.mu.Lock()
			defer p.mu.Unlock()
			hs := p.held[hash]
			for i, o := range hs {
				if o == owner {
					hs = append(hs[:i], hs[i+1:]...)
					break
				}
			}
			if len(hs) == 0 {
				delete(p.held, hash)
			} else {
				p.held[hash] = hs
			}
		})
	}
}

func (p *pins) release(owner any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, h := range p.owner[owner] {
		if p.count[h]--; p.count[h] <= 0 {
			delete(p.count, h)
		}
	}
	delete(p.owner, owner)
}

func (p *pins) has(hash string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.count[hash] > 0
}

// collector deletes local blobs that no job needs any more: what the log
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
// still has no record of the blob and no manifest came since the keep set
// was made. A store therefore either comes first and is seen (fresh, or
// pinned until its command is applied here, after which the record is
// seen), or comes after the delete and writes a new copy. The grace only
// has to cover the stores nothing pins (a copy pushed or pulled here) until
// this node's log has the record that keeps them.
//
// It needs no command: a blob nothing references has no record to update.
// Its cost follows what changes: each round looks at the blobs the FSM says
// lost their last reference (onBlobs) and the blobs stored here since the
// last round (a copy pushed after its job let go of it, a task's output
// whose result was refused), and again, later, at those that were too young
// or pinned; the whole blob directory is walked at start and every
// fullSweepEvery (releases it did not hear while it was down).
type collector struct {
	name      string
	fsm       *cluster.FSM
	blobs     *cluster.BlobStore
	pins      *pins
	manifests *manifestCache
	logger    *slog.Logger
	// grace: nothing stored (or stored again) more recently is collected;
	// it covers copies that arrive unpinned (pushes, pulls).
	grace    time.Duration
	interval time.Duration
	// lost drops this node's claim to a manifest the log says it holds
	// but whose document is gone from here (its files are not kept).
	lost func(ctx context.Context, set cluster.BlobRef)
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

func (c *collector) onBlobs(ev cluster.BlobEvents) {
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
func (c *collector) Run(ctx context.Context) {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	lastSweep := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		stored, all := c.blobs.Stored()
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
func (c *collector) collect(ctx context.Context, cands map[string]bool) {
	var local []string
	if cands == nil {
		list, err := c.blobs.List()
		if err != nil {
			c.logger.Warn("blob collection: list failed", "err", err)
			return
		}
		for _, b := range list {
			local = append(local, b.Ref.Hash)
		}
	} else {
		for h := range cands {
			if c.blobs.Has(h) {
				local = append(local, h)
			}
		}
	}
	if len(local) == 0 {
		return
	}
	// A released manifest's files go with it, unless something keeps them.
	released := map[string]bool{}
	for _, h := range local {
		released[h] = true
	}
	for _, h := range local {
		if cands == nil {
			break
		}
		if m, err := c.localManifest(h); err == nil {
			for _, f := range m.Files {
				if !released[f.Hash] && c.blobs.Has(f.Hash) {
					released[f.Hash] = true
					local = append(local, f.Hash)
				}
			}
		}
	}

	keep, gen, ok := c.kept(ctx, local)
	if !ok {
		return
	}
	cutoff := time.Now().Add(-c.grace)
	deleted := 0
	var later []string // too young or pinned now: look again next round
	defer func() {
		if len(later) > 0 {
			c.onBlobs(cluster.BlobEvents{Released: refsOf(later)})
		}
	}()
	for _, h := range local {
		if keep[h] {
			continue
		}
		if ctx.Err() != nil {
			return
		}
		// The decision and the delete, under the blob's lock (no store of
		// it runs meanwhile), in the order that leaves no gap: a writer
		// pins under that lock while storing and lets go of the pin only
		// once the command naming the blob is applied here, so a blob
		// not pinned now is either not being stored or already recorded.
		var young, changed bool
		gone, err := c.blobs.DeleteIf(h, func(mt time.Time) bool {
			if mt.After(cutoff) || c.pins.has(h) {
				young = true // stored lately, or its command is not in yet
				return false
			}
			// Still no record, and no manifest added since the keep
			// set was made (a per-blob look under the state's lock).
			c.fsm.Read(func(st *cluster.State) {
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
		switch {
		case err != nil:
			c.logger.Warn("blob collection: delete failed", "blob", h, "err", err)
		case young:
			later = append(later, h)
		case changed:
			c.mu.Lock()
			c.sweep = true // something changed: look again next round
			c.mu.Unlock()
			return
		case gone:
			deleted++
			c.logger.Debug("blob collected", "blob", h)
		}
	}
	if deleted > 0 {
		c.logger.Info("blobs collected", "blobs", deleted, "sweep", cands == nil)
	}
}

// kept returns which of local the log still needs here: blobs with a
// record, and files of referenced manifests stored here. gen is the
// state's manifest generation the answer holds for.
func (c *collector) kept(ctx context.Context, local []string) (keep map[string]bool, gen uint64, ok bool) {
	keep = map[string]bool{}
	var sets []cluster.BlobRef
	now := time.Now()
	if c.arriving == nil {
		c.arriving = map[string]arrival{}
	}
	c.fsm.Read(func(st *cluster.State) {
		gen = st.SetGeneration()
		for _, h := range local {
			if b, ok := st.Blob(h); ok {
				keep[h] = true
				if b.Set() && !b.Nodes.Has(c.name) {
					if _, seen := c.arriving[h]; !seen {
						c.arriving[h] = arrival{ref: b.Ref(), since: now}
					}
				}
			}
		}
		for h, a := range c.arriving {
			b, ok := st.Blob(h)
			if !ok || b.Nodes.Has(c.name) || now.Sub(a.since) > arrivalTimeout {
				delete(c.arriving, h) // recorded here (listed below), forgotten, or given up
				continue
			}
			sets = append(sets, a.ref)
		}
		st.Sets(func(b *cluster.BlobHolders) bool {
			if b.Nodes.Has(c.name) {
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
		if !c.blobs.Has(s.Hash) {
			// Recorded here but lost: nothing of it to keep, and the
			// claim goes so that replication makes the copy again.
			if _, arriving := c.arriving[s.Hash]; !arriving && c.lost != nil {
				c.lost(ctx, s)
			}
			continue
		}
		m, err := c.manifests.get(ctx, s)
		if err != nil {
			c.logger.Warn("blob collection: a manifest stored here cannot be read; collecting nothing this round", "manifest", s.Hash, "err", err)
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
func (c *collector) localManifest(h string) (*cluster.Manifest, error) {
	ref, ok := c.blobs.Stat(h)
	if !ok || ref.Size > maxManifestBytes {
		return nil, cluster.ErrNotFound
	}
	f, err := c.blobs.Open(h)
	if err != nil {
		return nil, err
	}
	head := make([]byte, len(manifestPrefix))
	_, err = io.ReadFull(f, head)
	f.Close()
	if err != nil || string(head) != manifestPrefix {
		return nil, cluster.ErrNotFound
	}
	return c.manifests.get(context.Background(), ref)
}

// manifestPrefix is how every manifest document starts.
var manifestPrefix = fmt.Sprintf(`{"v":%d,"job":`, cluster.ManifestVersion)
