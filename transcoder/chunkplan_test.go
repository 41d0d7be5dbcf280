package transcoder

import (
	"math"
	"slices"
	"testing"
)

func TestPlanChunks(t *testing.T) {
	for _, tc := range []struct {
		seconds float64
		slots   int
		want    int
	}{
		{20, 2, 4},      // two full rounds of 5 s chunks
		{20, 6, 6},      // three nodes of two slots: one round
		{10, 2, 2},      // one round of 5 s
		{10, 6, 5},      // not shorter than 2 s: one slot idles
		{12, 2, 2},      // 6 s each: the default length fits one round
		{13, 2, 4},      // longer than two default chunks: a second round
		{60, 2, 10},     // 6 s each, five full rounds
		{300, 2, 50},    // long videos: every 6 s, as before plans
		{300, 40, 80},   // a large cluster: two rounds of 3.75 s
		{3600, 40, 600}, // an hour on 40 slots: 6 s, as before
		{3, 4, 1},       // too short to cut
		{1, 2, 1},
		{20, 0, 4}, // slots unknown: chunks no longer than the default
		{0, 2, 1},
		{math.NaN(), 2, 1},
	} {
		if got := PlanChunks(tc.seconds, tc.slots); got != tc.want {
			t.Errorf("PlanChunks(%g, %d) = %d, want %d", tc.seconds, tc.slots, got, tc.want)
		}
		// The planned length asks Split for the same count.
		if s := PlanChunkSeconds(tc.seconds, tc.slots); tc.seconds > 0 {
			if got := (ChunkPlan{Seconds: s, Equal: true}).Count(tc.seconds); got != tc.want {
				t.Errorf("Count(%g) of PlanChunkSeconds(%g, %d) = %g: %d chunks, want %d", tc.seconds, tc.seconds, tc.slots, s, got, tc.want)
			}
			if s > DefaultChunkSeconds+1e-9 && tc.want > 1 {
				t.Errorf("PlanChunkSeconds(%g, %d) = %g: longer than the default", tc.seconds, tc.slots, s)
			}
		}
	}
}

// lengths turns cuts into chunk lengths.
func lengths(cuts []float64, start, total float64) []float64 {
	var out []float64
	prev := start
	for _, c := range append(slices.Clone(cuts), start+total) {
		out = append(out, math.Round((c-prev)*1000)/1000)
		prev = c
	}
	return out
}

func grid(step, total float64) []float64 {
	var kf []float64
	for t := 0.0; t < total-1e-9; t += step {
		kf = append(kf, t)
	}
	return kf
}

func TestEqualCuts(t *testing.T) {
	for _, tc := range []struct {
		name      string
		keyframes []float64
		total     float64
		n         int
		want      []float64
	}{
		{"20 s at a 2 s GOP in four: longest first", grid(2, 20), 20, 4, []float64{6, 6, 4, 4}},
		{"20 s at a 2 s GOP in six", grid(2, 20), 20, 6, []float64{4, 4, 4, 4, 2, 2}},
		{"20 s at a 2 s GOP in two", grid(2, 20), 20, 2, []float64{10, 10}},
		{"10 s at a 2 s GOP in two", grid(2, 10), 10, 2, []float64{6, 4}},
		{"20 s at a 1 s GOP in four", grid(1, 20), 20, 4, []float64{5, 5, 5, 5}},
		{"60 s at a 2 s GOP in ten", grid(2, 60), 60, 10, []float64{6, 6, 6, 6, 6, 6, 6, 6, 6, 6}},
		{"one chunk", grid(2, 20), 20, 1, []float64{20}},
		// A keyframe far past the share is not taken when a near one
		// before it exists.
		{"uneven keyframes", []float64{0, 4.9, 10.1, 15}, 20, 4, []float64{4.9, 5.2, 4.9, 5}},
		// Too few keyframes for the count: fewer chunks, none under 2 s.
		{"sparse", []float64{0, 10}, 20, 4, []float64{10, 10}},
		{"no room for three of 2 s", grid(1, 5), 5, 3, []float64{3, 2}},
		{"a part GOP at the end: balance first", grid(2, 9), 9, 2, []float64{4, 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := lengths(equalCuts(tc.keyframes, 0, tc.total, tc.n), 0, tc.total)
			if !slices.Equal(got, tc.want) {
				t.Errorf("chunks %v, want %v", got, tc.want)
			}
		})
	}
	// A source whose video starts late: cuts stay on its keyframes.
	kf := []float64{0.5, 2.5, 4.5, 6.5, 8.5}
	if got := lengths(equalCuts(kf, 0.5, 10, 2), 0.5, 10); !slices.Equal(got, []float64{6, 4}) {
		t.Errorf("offset start: chunks %v, want [6 4]", got)
	}
}

// On evenly spaced keyframes, equal chunks differ by at most one GOP and
// never put a shorter chunk before a longer one when the video is a whole
// number of GOPs; none is under MinChunkSeconds.
func TestEqualCutsBalanced(t *testing.T) {
	for _, gop := range []float64{0.5, 1, 2, 2.5, 4} {
		for total := 4.0; total <= 90; total += 0.5 {
			for n := 1; n <= 12; n++ {
				ls := lengths(equalCuts(grid(gop, total), 0, total, n), 0, total)
				if want := min(n, int(total/MinChunkSeconds)); len(ls) != want && gop <= MinChunkSeconds {
					t.Fatalf("gop %g, %g s in %d: chunks %v, want %d of them", gop, total, n, ls, want)
				}
				if slices.Max(ls)-slices.Min(ls) > gop+1e-6 && gop <= MinChunkSeconds {
					t.Fatalf("gop %g, %g s in %d: chunks %v differ by more than a GOP", gop, total, n, ls)
				}
				whole := math.Abs(total/gop-math.Round(total/gop)) < 1e-9
				for i := 1; i < len(ls) && whole; i++ {
					if ls[i] > ls[i-1]+1e-6 {
						t.Fatalf("gop %g, %g s in %d: chunks %v not longest first", gop, total, n, ls)
					}
				}
				for _, l := range ls {
					if l < MinChunkSeconds-1e-6 {
						t.Fatalf("gop %g, %g s in %d: chunks %v: one under %g s", gop, total, n, ls, MinChunkSeconds)
					}
				}
			}
		}
	}
}
