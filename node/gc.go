package node

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/gosty/gosty/cluster"
)

// pins protects blobs that exist on disk but are not yet named by a
// committed command (an upload before its job is submitted, a task's outputs
// before its result is committed) from the collector.
type pins struct {
	mu    sync.Mutex
	owner map[any][]string
	count map[string]int
}

func newPins() *pins { return &pins{owner: map[any][]string{}, count: map[string]int{}} }

func (p *pins) add(owner any, hash string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.owner[owner] = append(p.owner[owner], hash)
	p.count[hash]++
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

// collector deletes local blobs that no job needs any more (deleted jobs,
// and the chunks and intermediate encodes of finished ones) and tells the
// log this node no longer holds them.
type collector struct {
	name   string
	fsm    *cluster.FSM
	blobs  *cluster.BlobStore
	log    proposer
	pins   *pins
	logger *slog.Logger
	// grace covers the moment between a blob landing on disk and its pin:
	// nothing younger is collected.
	grace    time.Duration
	interval time.Duration
}

// Run collects every interval. It does not wake on every log change: each
// collection walks the whole blob directory, and a busy job changes the log
// several times a second.
func (c *collector) Run(ctx context.Context) {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.collect(ctx)
	}
}

func (c *collector) collect(ctx context.Context) {
	var ref map[string]bool
	held := map[string]bool{}
	c.fsm.Read(func(st *cluster.State) {
		ref = st.Referenced()
		for h, hs := range st.Blobs {
			if hs.Nodes[c.name] {
				held[h] = true
			}
		}
	})
	list, err := c.blobs.List()
	if err != nil {
		c.logger.Warn("blob collection: list failed", "err", err)
		return
	}
	cutoff := time.Now().Add(-c.grace)
	for _, b := range list {
		h := b.Ref.Hash
		if ref[h] || c.pins.has(h) || b.ModTime.After(cutoff) {
			continue
		}
		if held[h] {
			// Drop the location first: a reader sent here by the log must
			// not find the bytes gone while the log still names this node.
			err := c.log.Propose(ctx, cluster.OpBlobRemove, cluster.BlobLocation{Blob: b.Ref, Node: c.name})
			if err != nil {
				c.logger.Warn("blob collection: could not record removal", "blob", h, "err", err)
				continue
			}
		}
		if err := c.blobs.Delete(h); err != nil {
			c.logger.Warn("blob collection: delete failed", "blob", h, "err", err)
			continue
		}
		c.logger.Debug("blob collected", "blob", h, "bytes", b.Ref.Size)
	}
}
