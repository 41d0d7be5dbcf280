package e2e

import (
	"cmp"
	"slices"
)

// Number is what Median takes.
// (time.Duration is an int64: Median takes durations too.)
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
