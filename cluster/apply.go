package cluster

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The handlers of each command. They validate first and change nothing on
// a refusal; every change to a record goes through putJob, putChunk,
// putTask or the holder functions (refs.go), which keep the indexes and the
// blob references in step.

// MaxRenditions bounds the ladder one job may ask for (log version 2; the
// API refuses more with a 400 before anything is stored).
const MaxRenditions = 12

// submit applies job.submit: the job, its first tasks, and the holders of
// its source (the origin and the nodes its upload was copied to).
func (s *State) submit(j Job, holders []string, at time.Time) error {
	if j.ID == "" || j.SourceBlob.IsZero() || j.Origin == "" {
		return fmt.Errorf("submit: %w: job needs id, source blob and origin", ErrInvalid)
	}
	if len(holders) > MaxSubmitHolders || slices.Contains(holders, "") {
		return fmt.Errorf("submit %s: %w: at most %d holders, each named", j.ID, ErrInvalid, MaxSubmitHolders)
	}
	if !ValidJobID(j.ID) || !ValidHash(j.SourceBlob.Hash) {
		return fmt.Errorf("submit: %w: malformed job id or source hash", ErrInvalid)
	}
	old := s.ingested(j) // the ingesting record of a URL source (ingest.go)
	if old == nil && s.job(j.ID) != nil {
		return fmt.Errorf("submit %s: %w: job exists", j.ID, ErrConflict)
	}
	if len(j.Renditions) == 0 {
		return fmt.Errorf("submit %s: %w: no renditions", j.ID, ErrInvalid)
	}
	if err := checkSubtitles(&j); err != nil {
		return err
	}
	if s.version >= LogV2 && len(j.Renditions) > MaxRenditions {
		return fmt.Errorf("submit %s: %w: %d renditions, at most %d", j.ID, ErrInvalid, len(j.Renditions), MaxRenditions)
	}
	j.State = JobQueued
	j.Chunks = nil
	j.Outputs = nil
	j.Manifest, j.Sizes = BlobRef{}, nil
	// What the log decides later is not the proposer's to set.
	j.Webhook, j.ExpiredAt, j.FreedBytes, j.FinishedAt = nil, time.Time{}, 0, time.Time{}
	j.TTL = max(j.TTL, 0)
	if p := j.Publish; p != nil { // the target and expire flag only (publish.go)
		j.Publish = &PublishStatus{Target: p.Target, Expire: p.Expire, State: PublishWaiting}
		if p.Target == "" || len(p.Target) > MaxPublishTarget {
			// Dropped rather than refused: a node that predates the field
			// takes the job, and so must this one.
			j.Publish = nil
		}
	}
	if _, err := ParsePriority(string(j.Priority)); err != nil {
		j.Priority = PriorityNormal
	}
	j.CreatedAt, j.UpdatedAt = at, at
	if old != nil {
		j.CreatedAt = old.CreatedAt
	}
	s.putJob(old, &j)
	s.addHolder(j.SourceBlob, j.Origin)
	for _, h := range holders {
		s.addHolder(j.SourceBlob, h)
	}
	s.newTask(j.ID, TaskSplit, 0, j.Source.Duration)
	if j.Source.Audio != nil {
		s.newTask(j.ID, TaskAudio, 0, j.Source.Duration)
	}
	return nil
}

// unfinished is the job an op on a running job applies to: ErrNotFound
// without one, ErrConflict once it has ended.
func (s *State) unfinished(op, id string) (*Job, error) {
	j := s.job(id)
	if j == nil {
		return nil, fmt.Errorf("%s %s: %w", op, id, ErrNotFound)
	}
	if j.State.Terminal() {
		return nil, fmt.Errorf("%s %s: %w: job is %s", op, id, ErrConflict, j.State)
	}
	return j, nil
}

func (s *State) rewind(r JobRewind, at time.Time) error {
	j, err := s.unfinished("rewind", r.JobID)
	if err != nil {
		return err
	}
	nj := *j
	// Packaging starts over in every case: its inputs changed.
	s.retire(TaskID(j.ID, TaskPackage, 0))
	if r.Resplit {
		var encodes []string
		s.JobTasks(j.ID, func(t *Task) bool {
			if t.Kind == TaskEncode {
				encodes = append(encodes, t.ID)
			}
			return true
		})
		for _, id := range encodes {
			s.retire(id)
		}
		s.dropChunks(j.ID, true)
		s.newTask(j.ID, TaskSplit, 0, j.Source.Duration)
		nj.State, nj.ChunkCount = JobQueued, 0
	}
	for _, i := range r.Chunks {
		if r.Resplit {
			continue
		}
		c, ok := s.Chunk(j.ID, i)
		if !ok {
			continue
		}
		nc := *c
		nc.Outputs, nc.EncodedBy, nc.RunningOn = nil, "", ""
		nc.Thumbs = BlobRef{}
		s.putChunk(c, &nc, true)
		if t, ok := s.Task(TaskID(j.ID, TaskEncode, i)); ok {
			nt := *t
			nt.State, nt.Node, nt.Lost = TaskPending, "", 0
			s.tasks.ReplaceOrInsert(&nt)
		}
	}
	if r.Audio && j.Source.Audio != nil {
		nj.Audio = BlobRef{}
		if t, ok := s.Task(TaskID(j.ID, TaskAudio, 0)); ok {
			nt := *t
			nt.State, nt.Node, nt.Lost = TaskPending, "", 0
			s.tasks.ReplaceOrInsert(&nt)
		}
	}
	if nj.State == JobPackaging {
		nj.State = JobTranscoding
	}
	nj.UpdatedAt = at
	s.putJob(j, &nj)
	return nil
}

// retire removes a task but remembers its attempt count for when the same
// task is made again.
func (s *State) retire(id string) {
	if t, ok := s.Task(id); ok {
		s.retired[id] = t.Attempt
		s.tasks.Delete(t)
	}
}

func (s *State) cancel(r JobRef, at time.Time) error {
	j, err := s.unfinished("cancel", r.JobID)
	if err != nil {
		return err
	}
	nj := *j
	s.finish(j, &nj, JobCanceled, cmp.Or(r.Reason, "canceled by user"), at)
	return nil
}

// finish ends a running job (old is its record, nj the changed copy): its
// unfinished tasks fail so that no node keeps working on them.
func (s *State) finish(old, nj *Job, st JobState, reason string, at time.Time) {
	nj.State, nj.Error, nj.UpdatedAt, nj.FinishedAt = st, reason, at, at
	nj.IngestOptions = nil // only an ingesting job needs them
	nj.Scores = nil        // only a running job needs them
	publishEnded(nj)
	if st == JobFailed {
		startWebhook(nj)
	}
	var open []*Task
	s.JobTasks(nj.ID, func(t *Task) bool {
		if t.State != TaskDone {
			open = append(open, t)
		}
		return true
	})
	for _, t := range open {
		nt := *t
		nt.State = TaskFailed
		s.tasks.ReplaceOrInsert(&nt)
	}
	s.putJob(old, nj)
	s.ended(nj, 0)
}

// ended reports a job that just reached a final state and, from log
// version 2 on, compacts it at once. published is what its files add up to
// when a manifest names them.
func (s *State) ended(j *Job, published int64) {
	// A result in the version-1 shape (per-file outputs, from a worker
	// that had not seen the upgrade yet) waits for job.compact.
	if s.version >= LogV2 && len(j.Outputs) == 0 {
		j = s.compact(j, published)
	}
	s.out.finished = append(s.out.finished, s.fullJob(j))
}

// startWebhook marks a job's callback as due: the leader's notifier
// delivers it until a job.notify records the outcome.
func startWebhook(j *Job) {
	if j.CallbackURL != "" && j.Webhook == nil {
		j.Webhook = &WebhookStatus{State: WebhookPending}
	}
}

func (s *State) notify(n JobNotify, at time.Time) error {
	j := s.job(n.JobID)
	if j == nil {
		return fmt.Errorf("notify %s: %w", n.JobID, ErrNotFound)
	}
	w := j.Webhook
	if w == nil || w.State != WebhookPending {
		return fmt.Errorf("notify %s: %w: no delivery pending", n.JobID, ErrConflict)
	}
	if n.Attempt != w.Attempts+1 {
		return fmt.Errorf("notify %s attempt %d: %w: %d attempts recorded", n.JobID, n.Attempt, ErrStale, w.Attempts)
	}
	nw := *w
	nw.Attempts, nw.LastError, nw.LastAttemptAt = n.Attempt, n.Error, at
	switch {
	case n.Delivered:
		nw.State, nw.DeliveredAt, nw.LastError = WebhookDelivered, at, ""
	case n.GiveUp:
		nw.State = WebhookFailed
	}
	nj := *j
	nj.Webhook = &nw
	s.putJob(j, &nj)
	return nil
}

func (s *State) delete(r JobRef) error {
	j := s.job(r.JobID)
	if j == nil {
		return fmt.Errorf("delete %s: %w", r.JobID, ErrNotFound)
	}
	if !j.State.Terminal() {
		return fmt.Errorf("delete %s: %w: job is %s; cancel it first", r.JobID, ErrConflict, j.State)
	}
	s.removeJob(j)
	return nil
}

// removeJob takes a finished job and everything of it out of the state;
// the blobs only it referenced lose their records, and the nodes'
// collectors delete the bytes.
func (s *State) removeJob(j *Job) {
	s.dropJobWork(j.ID)
	s.putJob(j, nil)
}

// dropJobWork removes a job's tasks, retired attempt counts and chunks.
func (s *State) dropJobWork(jobID string) {
	var ids []*Task
	s.JobTasks(jobID, func(t *Task) bool {
		ids = append(ids, t)
		return true
	})
	for _, t := range ids {
		s.tasks.Delete(t)
	}
	for id := range s.retired {
		if strings.HasPrefix(id, jobID+"/") {
			delete(s.retired, id)
		}
	}
	s.dropChunks(jobID, false)
}

// dropChunks removes a job's chunks; active says whether they still
// reference their media (the job has work left).
func (s *State) dropChunks(jobID string, active bool) {
	var cs []*Chunk
	s.chunks.AscendGreaterOrEqual(&Chunk{JobID: jobID}, func(c *Chunk) bool {
		if c.JobID != jobID {
			return false
		}
		cs = append(cs, c)
		return true
	})
	for _, c := range cs {
		s.putChunk(c, nil, active)
	}
}

// expire releases a finished job's media once its TTL has run out (at is
// the proposer's clock; an early proposal is refused). The job stays
// listed, without outputs, with expired_at and the bytes freed.
func (s *State) expire(r JobRef, at time.Time) error {
	j := s.job(r.JobID)
	if j == nil {
		return fmt.Errorf("expire %s: %w", r.JobID, ErrNotFound)
	}
	if !j.ExpiredAt.IsZero() {
		return fmt.Errorf("expire %s: %w: already expired", r.JobID, ErrConflict)
	}
	exp := j.ExpiresAt()
	if exp.IsZero() || at.Before(exp) {
		return fmt.Errorf("expire %s: %w: job is %s and not past its TTL", r.JobID, ErrConflict, j.State)
	}
	nj := *j
	nj.ExpiredAt, nj.UpdatedAt = at, at
	nj.Outputs, nj.HLS, nj.DASH, nj.MP4 = nil, "", "", nil
	nj.Poster, nj.Storyboard = "", ""
	nj.Manifest = BlobRef{}
	publishExpired(&nj)
	mark := len(s.out.released)
	s.putJob(j, &nj)
	// What only this job referenced is what expiring it frees: each blob
	// once, and the files a manifest lists by the total the job recorded.
	var freed int64
	for _, b := range s.out.released[mark:] {
		freed += b.Size
		if b.Hash == j.Manifest.Hash && j.Sizes != nil {
			freed += j.Sizes.Published
		}
	}
	nj2 := nj
	nj2.FreedBytes = freed
	s.putJob(&nj, &nj2)
	s.out.expired = append(s.out.expired, nj2)
	return nil
}

func (s *State) nodeJoin(b NodeJoin) error {
	if b.ID == "" || b.Name == "" {
		return fmt.Errorf("node join: %w: id and name are required", ErrInvalid)
	}
	reborn := false
	for id, name := range s.nodes {
		if name == b.Name && id != b.ID {
			delete(s.nodes, id) // the old incarnation of this name
			reborn = true
		}
	}
	s.nodes[b.ID] = s.name(b.Name)
	if reborn && s.version >= LogV2 {
		s.dropHolder(b.Name)
	}
	return nil
}

// dropHolder forgets every copy recorded under a node name: a new
// incarnation of the name (an empty data dir) holds nothing until it
// reports what it has. It walks every blob record, once per rebirth.
func (s *State) dropHolder(name string) {
	var held []*BlobHolders
	s.blobs.Ascend(func(b *BlobHolders) bool {
		if b.Nodes.Has(name) {
			held = append(held, b)
		}
		return true
	})
	for _, b := range held {
		s.removeHolder(b.Hash, name)
	}
}

// compactCmd applies job.compact: a job finished under log version 1 takes
// the compact shape.
func (s *State) compactCmd(c JobCompact, _ time.Time) error {
	j := s.job(c.JobID)
	if j == nil {
		return fmt.Errorf("compact %s: %w", c.JobID, ErrNotFound)
	}
	if !j.State.Terminal() || j.Compact() {
		return fmt.Errorf("compact %s: %w: job is %s (compact: %v)", c.JobID, ErrConflict, j.State, j.Compact())
	}
	if len(j.Outputs) > 0 {
		if c.Manifest.IsZero() || !ValidHash(c.Manifest.Hash) || len(c.Holders) == 0 {
			return fmt.Errorf("compact %s: %w: a job with outputs needs its manifest and its holders", c.JobID, ErrInvalid)
		}
	} else if !c.Manifest.IsZero() {
		return fmt.Errorf("compact %s: %w: the job has no outputs for a manifest", c.JobID, ErrInvalid)
	}
	var published int64
	for _, b := range j.Outputs {
		published += b.Size
	}
	nj := *j
	nj.Outputs, nj.Manifest = nil, c.Manifest
	s.putJob(j, &nj)
	for _, h := range c.Holders {
		s.addHolder(c.Manifest, h)
	}
	s.compact(&nj, published)
	return nil
}

// compact drops a finished job's chunks, tasks and retired counts, keeping
// their totals, and stores the compact record. It returns that record.
func (s *State) compact(j *Job, published int64) *Job {
	sz := &JobSizes{Published: published}
	n := 0
	s.chunks.AscendGreaterOrEqual(&Chunk{JobID: j.ID}, func(c *Chunk) bool {
		if c.JobID != j.ID {
			return false
		}
		n++
		sz.ChunkSize += c.Source.Size
		for _, o := range c.Outputs {
			sz.Encoded += o.Size
		}
		return true
	})
	s.dropJobWork(j.ID)
	nj := *j
	nj.Sizes = sz
	nj.ChunkCount = max(nj.ChunkCount, n)
	s.putJob(j, &nj)
	return &nj
}

// forget applies job.forget: finished jobs beyond the history bound leave
// the state. Jobs that are gone already or still running are passed over.
func (s *State) forget(f JobForget, _ time.Time) error {
	if len(f.JobIDs) == 0 || len(f.JobIDs) > MaxForget {
		return fmt.Errorf("forget: %w: %d jobs (1 to %d)", ErrInvalid, len(f.JobIDs), MaxForget)
	}
	for _, id := range f.JobIDs {
		if j := s.job(id); j != nil && j.State.Terminal() {
			s.removeJob(j)
		}
	}
	return nil
}

func (s *State) upgrade(u ClusterUpgrade) error {
	if u.Version <= s.version || u.Version > CommandVersion {
		return fmt.Errorf("upgrade to log version %d: %w: at %d, this build reads up to %d", u.Version, ErrConflict, s.version, CommandVersion)
	}
	s.version = u.Version
	return nil
}
