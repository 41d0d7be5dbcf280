// Package tick is the loop of gosty's background work: a round every
// interval until the context ends. Each loop lives with the data it owns
// (replication, expiry, heartbeats, the bucket watch, ...); this is only
// the ticker they share, so that each says what a round does and not how
// it waits.
package tick

import (
	"context"
	"time"
)

// Every calls round every d until ctx ends; the first call comes after d,
// a round that outlasts d delays the next (ticks do not pile up), and no
// round starts once ctx has ended.
func Every(ctx context.Context, d time.Duration, round func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if ctx.Err() != nil {
			return
		}
		round()
	}
}
