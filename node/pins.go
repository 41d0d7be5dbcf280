package node

import (
	"time"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/cluster/gc"
)

// pins are the collector's pins (gc.Pins) under the names the worker and
// the other writers here call them by. It only forwards; it goes once
// worker.go and tasks.go hold a *gc.Pins themselves.
type pins struct{ p *gc.Pins }

func newPins() *pins { return &pins{gc.NewPins()} }

func (p *pins) holder(owner any) cluster.Hold        { return p.p.Holder(owner) }
func (p *pins) holdFor(d time.Duration) cluster.Hold { return p.p.HoldFor(d) }
func (p *pins) release(owner any)                    { p.p.Release(owner) }
func (p *pins) has(hash string) bool                 { return p.p.Has(hash) }
func (p *pins) onBlobs(ev cluster.BlobEvents)        { p.p.OnBlobs(ev) }
