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

// Backoff is how long after the last of attempts the next may start: none
// before the first, then base doubling per attempt up to max (the retry
// rule of webhook deliveries and S3 publishing).
func Backoff(attempts int, base, max time.Duration) time.Duration {
	if attempts <= 0 {
		return 0
	}
	d := base
	for i := 1; i < attempts && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}
