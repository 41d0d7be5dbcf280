package gc

import (
	"sync"
	"time"

	"github.com/gosty/gosty/cluster"
)

// Pins protects blobs that exist on disk but are not yet named by a
// committed command (an upload before its job is submitted, a task's outputs
// before its result is committed) from the collector. A writer takes its
// pin while the blob store stores the blob (Holder, a cluster.Hold), and
// releases it once the command that names the blob is applied on this
// node (or refused): there is no moment when such a blob is on disk,
// unpinned and not yet recorded.
//
// A pin lives in memory until Release (or, for HoldFor's, its timer or the
// log's word on the blob): a restarted node has none, and its collector's
// grace covers what was being stored.
type Pins struct {
	mu    sync.Mutex
	owner map[any][]string
	count map[string]int
	// held are the owners of HoldFor's pins by hash: released early when
	// the log makes the blob durable (its job committed and applied
	// here: the record keeps it now) or lets go of it.
	held map[string][]any
}

// NewPins returns an empty set of pins.
func NewPins() *Pins {
	return &Pins{owner: map[any][]string{}, count: map[string]int{}, held: map[string][]any{}}
}

// OnBlobs releases the holds on blobs the log now keeps (durable) or
// dropped (released).
func (p *Pins) OnBlobs(ev cluster.BlobEvents) {
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
		p.Release(o)
	}
}

func (p *Pins) add(owner any, hash string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.owner[owner] = append(p.owner[owner], hash)
	p.count[hash]++
}

// Holder pins for owner what the blob store is storing.
func (p *Pins) Holder(owner any) cluster.Hold {
	return func(hash string) { p.add(owner, hash) }
}

// HoldFor pins what the blob store is storing for d (a copy streamed here
// for an upload whose job is not committed yet); a timer releases it.
//
// The hold ends early when the log makes the blob durable or releases it
// (OnBlobs): then the record, or its absence, decides.
func (p *Pins) HoldFor(d time.Duration) cluster.Hold {
	return func(hash string) {
		owner := new(int)
		p.add(owner, hash)
		p.mu.Lock()
		p.held[hash] = append(p.held[hash], owner)
		p.mu.Unlock()
		time.AfterFunc(d, func() {
			p.Release(owner)
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

// Release lets go of every pin owner holds.
func (p *Pins) Release(owner any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, h := range p.owner[owner] {
		if p.count[h]--; p.count[h] <= 0 {
			delete(p.count, h)
		}
	}
	delete(p.owner, owner)
}

// Has reports whether anyone pins hash.
func (p *Pins) Has(hash string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.count[hash] > 0
}
