package node

import (
	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/transcoder"
)

// Chunk plans (issue 19): a job whose options leave chunk_seconds unset is
// cut into equal chunks whose count fills the encode slots free for it
// when it is submitted (transcoder.PlanChunks), so that a short clip's
// encodes run in full rounds instead of leaving a slot idle behind a long
// tail chunk. The planned length is the job's ChunkSeconds (a number: the
// transcoder knows nothing of the cluster), and the split task cuts
// ChunkSeconds-long equal chunks at keyframes (splitPlan).

// chunkSeconds is the chunk length a job is planned with: the user's
// chunk_seconds as given, or the length of equal chunks that fill the
// free slots.
func (n *Node) chunkSeconds(opts transcoder.Options, p *transcoder.Probe) float64 {
	if opts.ChunkSeconds != 0 {
		return opts.ChunkSeconds
	}
	d := p.Duration
	if p.Video != nil && p.Video.Duration > 0 {
		d = p.Video.Duration
	}
	return transcoder.PlanChunkSeconds(d, n.freeSlots())
}

// freeSlots counts the encode slots that no other job holds or waits for:
// the slots of the nodes that take tasks now (Workers: alive, not leaving,
// not full), less the tasks assigned to them and the tasks pending
// anywhere (those go first). 0 when the cluster is busy: the plan then
// cuts chunks of the default length, as it would for any long video.
func (n *Node) freeSlots() int {
	total := 0
	takes := map[string]bool{}
	for _, w := range n.Workers() {
		if !w.Full {
			total += w.Slots
			takes[w.Name] = true
		}
	}
	busy := 0
	n.store.FSM().Read(func(st *cluster.State) {
		st.Tasks(func(t *cluster.Task) bool {
			if t.State == cluster.TaskPending || (t.State == cluster.TaskAssigned && takes[t.Node]) {
				busy++
			}
			return true
		})
	})
	return max(total-busy, 0)
}

// splitPlan is how the split task cuts a job's source: a user's
// chunk_seconds from the start as always, or the planned equal chunks.
func splitPlan(j cluster.Job) transcoder.ChunkPlan {
	return transcoder.ChunkPlan{Seconds: j.ChunkSeconds, Equal: j.Options.ChunkSeconds == 0}
}
