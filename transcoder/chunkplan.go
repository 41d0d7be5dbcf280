package transcoder

import (
	"math"
	"sort"
)

// ChunkPlan says how Split cuts a source into chunks.
//
// Seconds alone (Equal false) is a user's chunk_seconds: cuts at the
// keyframes nearest to multiples of it from the start, the tail kept
// whole while shorter than Seconds+MinChunkSeconds (as every job was cut
// before plans existed).
//
// With Equal, Seconds is a planned length (PlanChunkSeconds): the video is
// cut into ceil(duration/Seconds) chunks of about equal length at
// keyframes, the longer ones first (equalCuts), so that a last round of
// encodes does not leave slots idle behind one long tail chunk.
type ChunkPlan struct {
	Seconds float64 // 0 = DefaultChunkSeconds
	Equal   bool
}

// MinPlannedChunkSeconds is the shortest chunk a plan makes to fill more
// slots. Every chunk pays for a process start, a decoder and six encoder
// set-ups, a cold rate control and a task hand-off: measured with `make
// bench` (1080p, 30 s, 2 slots, before plans), 2 s chunks cost 8.5% over
// plain ffmpeg against 5% for 6 s chunks. That is why a plan never cuts a
// long video finer than DefaultChunkSeconds; on a short one, a slot left
// idle costs more than that.
const MinPlannedChunkSeconds = MinChunkSeconds

// PlanChunks is how many chunks a video of seconds is cut into when slots
// encode slots are free for it: a multiple of slots (every round of encodes
// fills them all), with chunks no longer than DefaultChunkSeconds (so a
// long video is cut as it always was, about every 6 s) and, where the
// video is too short to fill every slot, none shorter than
// MinPlannedChunkSeconds. With slots unknown (0), ceil(seconds/6) chunks.
func PlanChunks(seconds float64, slots int) int {
	if seconds <= 0 || math.IsNaN(seconds) || math.IsInf(seconds, 0) {
		return 1
	}
	n := int(math.Ceil(seconds/DefaultChunkSeconds - 1e-9))
	if slots > 0 {
		rounds := int(math.Ceil(seconds/(float64(slots)*DefaultChunkSeconds) - 1e-9))
		n = rounds * slots
	}
	return max(1, min(n, int(seconds/MinPlannedChunkSeconds+1e-9)))
}

// PlanChunkSeconds is the planned chunk length for ChunkPlan.Seconds:
// seconds cut into PlanChunks(seconds, slots) equal parts.
func PlanChunkSeconds(seconds float64, slots int) float64 {
	n := PlanChunks(seconds, slots)
	if seconds <= 0 || math.IsNaN(seconds) || math.IsInf(seconds, 0) {
		return DefaultChunkSeconds
	}
	return seconds / float64(n)
}

// Count is how many chunks an Equal plan asks of a video of total seconds
// (the inverse of PlanChunkSeconds).
func (plan ChunkPlan) Count(total float64) int {
	if total <= 0 {
		return 1
	}
	if plan.Seconds <= 0 {
		plan.Seconds = DefaultChunkSeconds
	}
	n := int(math.Ceil(total/plan.Seconds - 1e-6))
	return max(1, min(n, int(total/MinChunkSeconds+1e-9)))
}

// equalCuts cuts the video [start, start+total) at keyframes into n chunks
// of about equal length, longest first. Each cut takes the first keyframe
// at or after an equal share of what is left, so that on evenly spaced
// keyframes a chunk is at least as long as those after it (20 s at a 2 s
// GOP in four: 6, 6, 4, 4 s, and two slots finish together), unless that
// leaves this chunk longer than the average of the rest by more than the
// gap between the keyframes either side of the share (9 s at a 2 s GOP in
// two: 4 and 5 s, not 6 and 3), when the nearer of the two is taken. Every
// chunk keeps at least MinChunkSeconds, with room left for the chunks
// still to come: keyframes too sparse for n chunks give fewer (and Split
// re-keys if one is then too long).
func equalCuts(keyframes []float64, start, total float64, n int) []float64 {
	end := start + total
	n = min(n, int(total/MinChunkSeconds+1e-9))
	var cuts []float64
	prev := start
	for m := n; m > 1; m-- {
		share := (end - prev) / float64(m)
		want := prev + share
		lo := sort.SearchFloat64s(keyframes, prev+MinChunkSeconds-1e-6)
		hi := sort.SearchFloat64s(keyframes, end-float64(m-1)*MinChunkSeconds+1e-6) - 1
		if lo > hi {
			continue // no room for m chunks here: try fewer
		}
		up := max(sort.SearchFloat64s(keyframes, want-1e-6), lo) // first at or after want
		down := min(up-1, hi)                                    // the last before it
		best := down
		switch {
		case up > hi:
		case down < lo:
			best = up
		case keyframes[up]-prev-(end-keyframes[up])/float64(m-1) <= keyframes[up]-keyframes[down]+1e-6:
			best = up
		case keyframes[up]-want < want-keyframes[down]:
			best = up
		}
		cuts = append(cuts, keyframes[best])
		prev = keyframes[best]
	}
	return cuts
}
