package e2e

import (
	"cmp"
	"context"
	"slices"
	"time"
)

// Number is what Median takes (time.Duration is an int64, so durations
// too).
type Number interface {
	~int | ~int64 | ~float64
}

// Median is the middle value of xs (the mean of the two middle ones for an
// even count; 0 for none). xs is not changed.
func Median[T Number](xs []T) T {
	s := slices.Clone(xs)
	slices.SortFunc(s, cmp.Compare[T])
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// SleepCtx sleeps for d or until ctx ends, and reports whether it slept
// the whole d.
func SleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
