package cluster

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/google/btree"
)

// MaxTaskAttempts is how many times a task may fail before its job fails.
const MaxTaskAttempts = 3

// State is the replicated job log applied to memory: jobs, the chunks and
// tasks of running jobs, and where every referenced blob lives. It is a
// plain value with no locking and no I/O so that it can be tested,
// snapshotted and replayed on its own; FSM adds the locking and the raft
// plumbing.
//
// What it holds, and how each piece leaves:
//   - jobs: every job until it is deleted (DELETE) or falls out of the
//     history window (job.forget). A finished job is compact (Job.Compact):
//     a record of fixed size and one manifest blob for its files.
//   - chunks, tasks and retired attempt counts: only for jobs with work
//     left; they go when the job finishes (log version 2) or is compacted
//     (job.compact, for jobs finished under version 1).
//   - blobs: one record per blob some job references (sources, the
//     intermediate media of running jobs, manifests, and the files of
//     version-1 jobs not yet compacted), with its holders. A record goes
//     when its last reference does.
//   - nodes: raft server ID → node name, one entry per live incarnation
//     (an old incarnation of a name is dropped when the new one joins).
//
// Records are immutable once stored (see index.go): Apply replaces them.
type State struct {
	persisted

	ix     index
	counts map[JobState]int
	// sets are the manifests referenced now; setGen counts the ones ever
	// added, so that a collector can tell that one came meanwhile.
	sets   map[string]bool
	setGen uint64
	in     interner // shared copies of values many records hold

	// What the last Apply did, for the FSM to report; not replicated.
	out applyReport
}

// persisted is the part of a State a snapshot writes (see snapshot.go);
// the rest of State is derived from it again on restore.
type persisted struct {
	version int
	jobs    *btree.BTreeG[*Job]
	chunks  *btree.BTreeG[*Chunk]
	tasks   *btree.BTreeG[*Task]
	blobs   *btree.BTreeG[*BlobHolders]
	nodes   map[string]string
	retired map[string]int // task ID → attempts, for tasks removed by a rewind
}

// applyReport collects what one Apply changed that others watch.
type applyReport struct {
	finished []Job     // jobs that reached a final state
	expired  []Job     // jobs whose media expired
	touched  []string  // jobs changed or removed
	released []BlobRef // blob records dropped: their bytes may go
	durable  []string  // blobs that became durable or lost a holder: replication may be due
}

// BlobHolders records one referenced blob: its size, the nodes that hold a
// copy, and (derived, not persisted) how many references keep it.
type BlobHolders struct {
	Hash  string  `json:"hash"`
	Size  int64   `json:"size"`
	Nodes NodeSet `json:"nodes"`

	refs    int  // references from jobs in the state
	durable int  // of which must keep the replication factor
	set     bool // a manifest: its holders hold every file it lists too
}

// NodeSet is a small sorted set of node names (a blob's holders: about the
// replication factor of them), lighter than a map for the hundreds of
// thousands of records a long history keeps.
type NodeSet []string

// Has reports whether name is in the set.
func (s NodeSet) Has(name string) bool {
	_, ok := slices.BinarySearch(s, name)
	return ok
}

// With returns a new set with name added.
func (s NodeSet) With(name string) NodeSet {
	i, ok := slices.BinarySearch(s, name)
	if ok {
		return s
	}
	return slices.Insert(slices.Clone(s), i, name)
}

// Without returns a new set without name.
func (s NodeSet) Without(name string) NodeSet {
	i, ok := slices.BinarySearch(s, name)
	if !ok {
		return s
	}
	return slices.Delete(slices.Clone(s), i, i+1)
}

// Map returns the set as a map.
func (s NodeSet) Map() map[string]bool {
	m := make(map[string]bool, len(s))
	for _, n := range s {
		m[n] = true
	}
	return m
}

// Refs is how many references keep the blob.
func (b *BlobHolders) Refs() int { return b.refs }

// Durable reports whether the blob must be kept at the replication factor
// (a source, a manifest, a published file of a version-1 job): what is
// made from those can be made again, so one copy of it is enough.
func (b *BlobHolders) Durable() bool { return b.durable > 0 }

// Set reports whether the blob is a job's manifest: a holder of it holds
// every file it lists as well, and copies move as a whole.
func (b *BlobHolders) Set() bool { return b.set }

// Ref is the blob's reference.
func (b *BlobHolders) Ref() BlobRef { return BlobRef{Hash: b.Hash, Size: b.Size} }

// NewState returns an empty state at log version 1: a new cluster moves to
// the newest version as soon as its leader sees that every server reads it.
func NewState() *State {
	return &State{
		persisted: persisted{
			version: LogV1,
			jobs:    newJobTree(), chunks: newChunkTree(), tasks: newTaskTree(), blobs: newBlobTree(),
			nodes: map[string]string{}, retired: map[string]int{},
		},
		ix: newIndex(), counts: map[JobState]int{}, sets: map[string]bool{},
	}
}

// Version is the log version the cluster writes (see LogV1, LogV2).
func (s *State) Version() int { return s.version }

// TaskID names the task of kind k for a job; chunk is used by encode tasks.
func TaskID(jobID string, k TaskKind, chunk int) string {
	if k == TaskEncode {
		return fmt.Sprintf("%s/%s/%05d", jobID, k, chunk)
	}
	return jobID + "/" + string(k)
}

// Apply changes the state by one command. The error says why a command was
// refused (stale completion, unknown job, ...); a refused command changes
// nothing. For a batch, Apply returns only a refusal of the batch itself;
// ApplyBatch gives each command's verdict.
func (s *State) Apply(c Command) error {
	switch c.Op {
	case OpBatch:
		_, err := s.ApplyBatch(c)
		return err
	case OpJobSubmit:
		return applyBody(c, func(b SubmitJob, at time.Time) error { return s.submitSubtitled(b, at) })
	case OpJobCancel:
		return applyBody(c, s.cancel)
	case OpJobDelete:
		return applyBody(c, func(r JobRef, _ time.Time) error { return s.delete(r) })
	case OpTaskAssign:
		return applyBody(c, s.assign)
	case OpTaskDone:
		return applyBody(c, s.done)
	case OpTaskFail:
		return applyBody(c, s.fail)
	case OpBlobAdd:
		return applyBody(c, func(b BlobLocation, _ time.Time) error { return s.addHolder(b.Blob, b.Node) })
	case OpBlobRemove:
		return applyBody(c, func(b BlobLocation, _ time.Time) error { return s.removeHolder(b.Blob.Hash, b.Node) })
	case OpJobRewind:
		return applyBody(c, s.rewind)
	case OpJobExpire:
		return applyBody(c, s.expire)
	case OpJobNotify:
		return applyBody(c, s.notify)
	case OpNodeJoin:
		return applyBody(c, func(b NodeJoin, _ time.Time) error { return s.nodeJoin(b) })
	case OpJobCompact:
		return applyBody(c, s.compactCmd)
	case OpJobForget:
		return applyBody(c, s.forget)
	case OpClusterUpgrade:
		return applyBody(c, func(b ClusterUpgrade, _ time.Time) error { return s.upgrade(b) })
	case OpJobIngest:
		return applyBody(c, s.ingest)
	case OpJobIngestFail:
		return applyBody(c, s.ingestFail)
	case OpJobIngestTake:
		return applyBody(c, s.ingestTake)
	case OpJobPublish:
		return applyBody(c, s.publish)
	default:
		// An op this build does not know came from a newer node. Skipping it
		// keeps replicas identical (they all skip it) and the reason is logged.
		return fmt.Errorf("apply: unknown op %q", c.Op)
	}
}

// ApplyBatch applies the commands of a batch one after the other and
// returns each one's verdict. A batch inside a batch is refused.
func (s *State) ApplyBatch(c Command) ([]error, error) {
	var b Batch
	if err := decodeBody(c, &b); err != nil {
		return nil, err
	}
	if len(b.Cmds) > MaxBatch {
		return nil, fmt.Errorf("batch: %w: %d commands, at most %d", ErrInvalid, len(b.Cmds), MaxBatch)
	}
	errs := make([]error, len(b.Cmds))
	for i, sub := range b.Cmds {
		switch {
		case sub.Op == OpBatch:
			errs[i] = fmt.Errorf("batch: %w: nested batch", ErrInvalid)
		case sub.V < 1 || sub.V > CommandVersion || sub.V < sub.Op.minVersion():
			errs[i] = fmt.Errorf("batch: %w: %s at version %d", ErrInvalid, sub.Op, sub.V)
		default:
			errs[i] = s.Apply(sub)
		}
	}
	return errs, nil
}

// apply decodes a command's body and hands it to fn with the proposer's
// time.
func applyBody[T any](c Command, fn func(T, time.Time) error) error {
	var b T
	if err := decodeBody(c, &b); err != nil {
		return err
	}
	return fn(b, c.At)
}

func decodeBody(c Command, v any) error {
	if err := json.Unmarshal(c.Body, v); err != nil {
		return fmt.Errorf("apply %s: %w: %v", c.Op, ErrInvalid, err)
	}
	return nil
}

// takeReport returns what the applies since the last call did and clears it.
func (s *State) takeReport() applyReport {
	r := s.out
	s.out = applyReport{}
	return r
}

// ---- reads. Everything returned is a copy or an immutable record: callers
// may keep it but never change it.

// Job returns a copy of one job; a running job's copy has its chunks.
func (s *State) Job(id string) (Job, bool) {
	j := s.job(id)
	if j == nil {
		return Job{}, false
	}
	return s.fullJob(j), true
}

// JobRecord returns the stored record of a job, without its chunks. It is
// shared and immutable: read it, never change it.
func (s *State) JobRecord(id string) (*Job, bool) {
	j := s.job(id)
	return j, j != nil
}

// fullJob is a copy of j with the chunks the state keeps for it.
func (s *State) fullJob(j *Job) Job {
	c := *j
	c.Chunks = s.Chunks(j.ID)
	return c
}

// Chunks returns copies of a job's chunks in order (none once it is
// compact).
func (s *State) Chunks(jobID string) []Chunk {
	var out []Chunk
	s.chunks.AscendGreaterOrEqual(&Chunk{JobID: jobID}, func(c *Chunk) bool {
		if c.JobID != jobID {
			return false
		}
		cc := *c
		cc.JobID = ""
		out = append(out, cc)
		return true
	})
	return out
}

// Chunk returns one chunk's record (shared, immutable).
func (s *State) Chunk(jobID string, i int) (*Chunk, bool) {
	c, ok := s.chunks.Get(&Chunk{JobID: jobID, Index: i})
	return c, ok
}

// ChunkCount is how many chunks a running job has.
func (s *State) ChunkCount(jobID string) int {
	n := 0
	s.chunks.AscendGreaterOrEqual(&Chunk{JobID: jobID}, func(c *Chunk) bool {
		if c.JobID != jobID {
			return false
		}
		n++
		return true
	})
	return n
}

// Task returns a task's record (shared, immutable).
func (s *State) Task(id string) (*Task, bool) {
	t, ok := s.tasks.Get(&Task{ID: id})
	return t, ok
}

// Tasks calls fn with every task (of jobs with work left, and of version-1
// jobs not yet compacted) until fn returns false.
func (s *State) Tasks(fn func(*Task) bool) { s.tasks.Ascend(fn) }

// JobTasks calls fn with every task of one job.
func (s *State) JobTasks(jobID string, fn func(*Task) bool) {
	prefix := jobID + "/"
	s.tasks.AscendGreaterOrEqual(&Task{ID: prefix}, func(t *Task) bool {
		if len(t.ID) < len(prefix) || t.ID[:len(prefix)] != prefix {
			return false
		}
		return fn(t)
	})
}

// ActiveJobs calls fn with the record of every job that has work left, in
// no particular order, until fn returns false.
func (s *State) ActiveJobs(fn func(*Job) bool) {
	for _, st := range activeStates {
		stop := false
		s.ix.byState[st].Ascend(func(k jobKey) bool {
			if !fn(s.job(k.id)) {
				stop = true
				return false
			}
			return true
		})
		if stop {
			return
		}
	}
}

// Blob returns one blob's record (shared, immutable).
func (s *State) Blob(hash string) (*BlobHolders, bool) {
	b, ok := s.blobs.Get(&BlobHolders{Hash: hash})
	return b, ok
}

// Blobs calls fn with the blob records from hash after (exclusive; "" for
// the first) in hash order until fn returns false, so long scans can go in
// pages and let go of the lock in between.
func (s *State) Blobs(after string, fn func(*BlobHolders) bool) {
	s.blobs.AscendGreaterOrEqual(&BlobHolders{Hash: after}, func(b *BlobHolders) bool {
		if b.Hash == after {
			return true
		}
		return fn(b)
	})
}

// Sets calls fn with the record of every referenced manifest until fn
// returns false: one per done job whose media are kept.
func (s *State) Sets(fn func(*BlobHolders) bool) {
	for h := range s.sets {
		if b, ok := s.Blob(h); ok && !fn(b) {
			return
		}
	}
}

// SetGeneration changes whenever a manifest is added.
func (s *State) SetGeneration() uint64 { return s.setGen }

// BlobCount is how many blob records there are.
func (s *State) BlobCount() int { return s.blobs.Len() }

// Incarnation is the raft ID the log knows for a node name ("" when none).
func (s *State) Incarnation(name string) string {
	for id, n := range s.nodes {
		if n == name {
			return id
		}
	}
	return ""
}

// LiveHolder reports whether the copies the log records under name count:
// the node is alive (aliveID, its raft ID in gossip, is not empty) and runs
// the incarnation the log knows for its name. A node that came back under
// its name with an empty data dir runs a new raft ID: until its node.join
// is committed (which drops every claim of the name), nothing recorded
// under the name is taken as held.
func (s *State) LiveHolder(name, aliveID string) bool {
	if aliveID == "" {
		return false
	}
	id := s.Incarnation(name)
	return id == "" || id == aliveID
}

// Nodes returns a copy of the raft ID → node name map.
func (s *State) Nodes() map[string]string { return maps.Clone(s.nodes) }

// Counts returns how many jobs are in each state.
func (s *State) Counts() map[JobState]int { return maps.Clone(s.counts) }

// JobCount is how many jobs the state holds.
func (s *State) JobCount() int { return s.jobs.Len() }

// FinishedCount is how many finished jobs the state holds.
func (s *State) FinishedCount() int { return s.ix.finished.Len() }

// OldestFinished calls fn with finished jobs, oldest finish first, until fn
// returns false.
func (s *State) OldestFinished(fn func(*Job) bool) {
	s.ix.finished.Ascend(func(k jobKey) bool { return fn(s.job(k.id)) })
}

// Expiring calls fn with jobs whose TTL runs out at or before t, soonest
// first, until fn returns false.
func (s *State) Expiring(t time.Time, fn func(*Job) bool) {
	end := t.UnixNano()
	s.ix.expiring.Ascend(func(k jobKey) bool {
		if k.at > end {
			return false
		}
		return fn(s.job(k.id))
	})
}

// PendingWebhooks calls fn with every job whose callback is still to be
// delivered, in no particular order.
func (s *State) PendingWebhooks(fn func(*Job) bool) {
	for id := range s.ix.webhooks {
		if !fn(s.job(id)) {
			return
		}
	}
}

// LegacyJobs calls fn with finished jobs still in the version-1 shape (not
// compact), in no particular order, until fn returns false.
func (s *State) LegacyJobs(fn func(*Job) bool) {
	for id := range s.ix.legacy {
		if !fn(s.job(id)) {
			return
		}
	}
}

func (s *State) job(id string) *Job {
	j, _ := s.jobs.Get(&Job{ID: id})
	return j
}
