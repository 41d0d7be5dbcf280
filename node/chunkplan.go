package node

import (
	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/transcoder"
)

// Chunk plans (issue 19): a job whose options leave chunk_seconds unset is
// cut into equal chunks whose count fills the encode slots free for it
// (transcoder.PlanChunks), so that a short clip's encodes run in full
// rounds instead of leaving a slot idle behind a long tail chunk.
//
// The plan is made twice. At submit it is recorded as the job's
// ChunkSeconds (a number: the transcoder knows nothing of the cluster;
// a node of an older release splits by it). When the split task runs, it
// plans again for the slots free then (splitPlan): a job that waited
// behind others was submitted into a busy cluster and would otherwise
// be cut for none free (the default length), and a cluster that grew
// or filled since has other slots to fill. The split cuts equal chunks
// of the planned length at keyframes.

// chunkSeconds is the chunk length a job is planned with at submit: the
// user's chunk_seconds as given, or the length of equal chunks that fill
// the free slots.
func (n *Node) chunkSeconds(opts transcoder.Options, p *transcoder.Probe) float64 {
	if opts.ChunkSeconds != 0 {
		return opts.ChunkSeconds
	}
	d := p.Duration
	if p.Video != nil && p.Video.Duration > 0 {
		d = p.Video.Duration
	}
	return transcoder.PlanChunkSeconds(d, n.freeSlots(""))
}

// freeSlots counts the encode slots that no job but except holds or
// waits for: the slots of the nodes that take tasks now (Workers: alive,
// not leaving, not full), less the other jobs' tasks assigned to them and
// pending anywhere (those go first). 0 when the cluster is busy: the plan
// then cuts chunks of the default length, as it would for any long video.
// It reads only the tasks of jobs with work left (State.Tasks).
func (n *Node) freeSlots(except string) int {
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
			if t.JobID != except && (t.State == cluster.TaskPending || (t.State == cluster.TaskAssigned && takes[t.Node])) {
				busy++
			}
			return true
		})
	})
	return max(total-busy, 0)
}

// splitPlan is how the split task cuts a job's source: a user's
// chunk_seconds from the start as always, or equal chunks planned for the
// slots that free(j.ID) counts when the split runs (the job's own tasks,
// the split among them, do not count against it). Without free (a
// worker built by a test), the plan made at submit.
func splitPlan(j cluster.Job, free func(jobID string) int) transcoder.ChunkPlan {
	plan := transcoder.ChunkPlan{Seconds: j.ChunkSeconds, Equal: j.Options.ChunkSeconds == 0}
	if plan.Equal && free != nil {
		plan.Seconds = transcoder.PlanChunkSeconds(videoDuration(j.Source), free(j.ID))
	}
	return plan
}
