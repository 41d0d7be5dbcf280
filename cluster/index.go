package cluster

import (
	"time"

	"github.com/google/btree"
)

// The state's records live in B-trees (github.com/google/btree) rather than
// maps for two reasons. A tree is ordered, so the job list pages by a
// cursor and the history, expiry and blob scans walk a range instead of
// everything. And a tree clones lazily (copy-on-write of its nodes), so a
// snapshot is taken in O(1) under the lock and written out while the state
// moves on. That last part holds only because records are never changed in
// place: a change builds a new record and puts it in the tree (putJob,
// putTask, putChunk, putBlob), and a record handed out stays as it was.

const treeDegree = 32

// jobKey orders jobs by a time, then by ID.
type jobKey struct {
	at int64 // unix nanoseconds
	id string
}

func lessJobKey(a, b jobKey) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.id < b.id
}

func keyOf(t time.Time, id string) jobKey { return jobKey{at: t.UnixNano(), id: id} }

func newKeyTree() *btree.BTreeG[jobKey] { return btree.NewG(treeDegree, lessJobKey) }

func newJobTree() *btree.BTreeG[*Job] {
	return btree.NewG(treeDegree, func(a, b *Job) bool { return a.ID < b.ID })
}

func newChunkTree() *btree.BTreeG[*Chunk] {
	return btree.NewG(treeDegree, func(a, b *Chunk) bool {
		if a.JobID != b.JobID {
			return a.JobID < b.JobID
		}
		return a.Index < b.Index
	})
}

func newTaskTree() *btree.BTreeG[*Task] {
	return btree.NewG(treeDegree, func(a, b *Task) bool { return a.ID < b.ID })
}

func newBlobTree() *btree.BTreeG[*BlobHolders] {
	return btree.NewG(treeDegree, func(a, b *BlobHolders) bool { return a.Hash < b.Hash })
}

// index keeps the derived orderings of jobs: never persisted, rebuilt when
// a snapshot is restored, and kept in step by setJob for every change.
type index struct {
	created   *btree.BTreeG[jobKey]              // every job by (CreatedAt, ID)
	byState   map[JobState]*btree.BTreeG[jobKey] // by state, then (CreatedAt, ID)
	finished  *btree.BTreeG[jobKey]              // finished jobs by (FinishedAt, ID): the history bound
	expiring  *btree.BTreeG[jobKey]              // jobs with a TTL still to run out, by (ExpiresAt, ID)
	webhooks  map[string]bool                    // jobs with a delivery pending
	publishes map[string]bool                    // jobs with an upload or a removal due (publish.go)
	legacy    map[string]bool                    // finished jobs still in the version-1 shape (not compact)
}

func newIndex() index {
	ix := index{created: newKeyTree(), byState: map[JobState]*btree.BTreeG[jobKey]{},
		finished: newKeyTree(), expiring: newKeyTree(), webhooks: map[string]bool{}, legacy: map[string]bool{},
		publishes: map[string]bool{}}
	for _, s := range allJobStates {
		ix.byState[s] = newKeyTree()
	}
	return ix
}

var allJobStates = []JobState{JobIngesting, JobQueued, JobSplitting, JobTranscoding, JobPackaging, JobDone, JobFailed, JobCanceled}

// activeStates are the states of jobs with work left.
var activeStates = []JobState{JobIngesting, JobQueued, JobSplitting, JobTranscoding, JobPackaging}

// update moves a job's entries from what old said to what j says (old or j
// may be nil: a new or a removed job).
func (ix *index) update(old, j *Job) {
	if old != nil {
		ix.created.Delete(keyOf(old.CreatedAt, old.ID))
		if t := ix.byState[old.State]; t != nil {
			t.Delete(keyOf(old.CreatedAt, old.ID))
		}
		if old.State.Terminal() {
			ix.finished.Delete(keyOf(old.FinishedAt, old.ID))
		}
		if exp := old.ExpiresAt(); !exp.IsZero() {
			ix.expiring.Delete(keyOf(exp, old.ID))
		}
		delete(ix.webhooks, old.ID)
		delete(ix.publishes, old.ID)
		delete(ix.legacy, old.ID)
	}
	if j == nil {
		return
	}
	ix.created.ReplaceOrInsert(keyOf(j.CreatedAt, j.ID))
	if t := ix.byState[j.State]; t != nil {
		t.ReplaceOrInsert(keyOf(j.CreatedAt, j.ID))
	}
	if j.State.Terminal() {
		ix.finished.ReplaceOrInsert(keyOf(j.FinishedAt, j.ID))
		if !j.Compact() {
			ix.legacy[j.ID] = true
		}
	}
	if exp := j.ExpiresAt(); !exp.IsZero() {
		ix.expiring.ReplaceOrInsert(keyOf(exp, j.ID))
	}
	if j.Webhook != nil && j.Webhook.State == WebhookPending && j.CallbackURL != "" {
		ix.webhooks[j.ID] = true
	}
	if j.Publish.Due() {
		ix.publishes[j.ID] = true
	}
}
