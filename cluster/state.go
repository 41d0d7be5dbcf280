package cluster

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"
)

// MaxTaskAttempts is how many times a task may fail before its job fails.
const MaxTaskAttempts = 3

// State is the replicated job log applied to memory: jobs, their tasks and
// where every blob lives. It is a plain value with no locking and no I/O so
// that it can be tested, snapshotted and replayed on its own; FSM adds the
// locking and the raft plumbing.
type State struct {
	Jobs  map[string]*Job  `json:"jobs"`
	Tasks map[string]*Task `json:"tasks"`
	// Blobs maps a blob hash to the set of nodes holding it.
	Blobs map[string]*BlobHolders `json:"blobs"`
	// Nodes maps raft server IDs to node names.
	Nodes map[string]string `json:"nodes,omitempty"`
	// Retired keeps the attempt counts of tasks removed by a rewind.
	Retired map[string]int `json:"retired,omitempty"`

	// finished collects jobs that reached a final state during the last
	// Apply, for the FSM to report; it is not part of the replicated state.
	finished []Job
	// expired likewise collects jobs whose media expired.
	expired []Job
}

// BlobHolders records one blob's size and the nodes that hold a copy.
type BlobHolders struct {
	Size  int64           `json:"size"`
	Nodes map[string]bool `json:"nodes"`
}

// NewState returns an empty state.
func NewState() *State {
	return &State{Jobs: map[string]*Job{}, Tasks: map[string]*Task{}, Blobs: map[string]*BlobHolders{}, Nodes: map[string]string{}}
}

// TaskID names the task of kind k for a job; chunk is used by encode tasks.
func TaskID(jobID string, k TaskKind, chunk int) string {
	if k == TaskEncode {
		return fmt.Sprintf("%s/%s/%05d", jobID, k, chunk)
	}
	return jobID + "/" + string(k)
}

// Apply changes the state by one command. The error says why a command was
// refused (stale completion, unknown job, ...); a refused command changes
// nothing.
func (s *State) Apply(c Command) error {
	switch c.Op {
	case OpJobSubmit:
		var b SubmitJob
		if err := decodeBody(c, &b); err != nil {
			return err
		}
		return s.submit(b.Job, c.At)
	case OpJobCancel:
		var b JobRef
		if err := decodeBody(c, &b); err != nil {
			return err
		}
		return s.cancel(b, c.At)
	case OpJobDelete:
		var b JobRef
		if err := decodeBody(c, &b); err != nil {
			return err
		}
		return s.delete(b)
	case OpTaskAssign:
		var b AssignTask
		if err := decodeBody(c, &b); err != nil {
			return err
		}
		return s.assign(b, c.At)
	case OpTaskDone:
		var b TaskResult
		if err := decodeBody(c, &b); err != nil {
			return err
		}
		return s.done(b, c.At)
	case OpTaskFail:
		var b TaskFailure
		if err := decodeBody(c, &b); err != nil {
			return err
		}
		return s.fail(b, c.At)
	case OpBlobAdd, OpBlobRemove:
		var b BlobLocation
		if err := decodeBody(c, &b); err != nil {
			return err
		}
		if c.Op == OpBlobAdd {
			s.addBlob(b.Blob, b.Node)
		} else {
			s.removeBlob(b.Blob.Hash, b.Node)
		}
		return nil
	case OpJobRewind:
		var b JobRewind
		if err := decodeBody(c, &b); err != nil {
			return err
		}
		return s.rewind(b, c.At)
	case OpJobExpire:
		var b JobRef
		if err := decodeBody(c, &b); err != nil {
			return err
		}
		return s.expire(b, c.At)
	case OpJobNotify:
		var b JobNotify
		if err := decodeBody(c, &b); err != nil {
			return err
		}
		return s.notify(b, c.At)
	case OpNodeJoin:
		var b NodeJoin
		if err := decodeBody(c, &b); err != nil {
			return err
		}
		if b.ID == "" || b.Name == "" {
			return fmt.Errorf("node join: %w: id and name are required", ErrInvalid)
		}
		for id, name := range s.Nodes {
			if name == b.Name && id != b.ID {
				delete(s.Nodes, id) // the old incarnation of this name
			}
		}
		s.Nodes[b.ID] = b.Name
		return nil
	default:
		// An op this build does not know came from a newer node. Skipping it
		// keeps replicas identical (they all skip it) and the reason is logged.
		return fmt.Errorf("apply: unknown op %q", c.Op)
	}
}

func decodeBody(c Command, v any) error {
	if err := json.Unmarshal(c.Body, v); err != nil {
		return fmt.Errorf("apply %s: %w: %v", c.Op, ErrInvalid, err)
	}
	return nil
}

func (s *State) submit(j Job, at time.Time) error {
	if j.ID == "" || j.SourceBlob.IsZero() || j.Origin == "" {
		return fmt.Errorf("submit: %w: job needs id, source blob and origin", ErrInvalid)
	}
	if !ValidJobID(j.ID) || !ValidHash(j.SourceBlob.Hash) {
		return fmt.Errorf("submit: %w: malformed job id or source hash", ErrInvalid)
	}
	if _, ok := s.Jobs[j.ID]; ok {
		return fmt.Errorf("submit %s: %w: job exists", j.ID, ErrConflict)
	}
	if len(j.Renditions) == 0 {
		return fmt.Errorf("submit %s: %w: no renditions", j.ID, ErrInvalid)
	}
	j.State = JobQueued
	j.Chunks = nil
	j.Outputs = nil
	// What the log decides later is not the proposer's to set.
	j.Webhook, j.ExpiredAt, j.FreedBytes, j.FinishedAt = nil, time.Time{}, 0, time.Time{}
	j.TTL = max(j.TTL, 0)
	if _, err := ParsePriority(string(j.Priority)); err != nil {
		j.Priority = PriorityNormal
	}
	j.CreatedAt, j.UpdatedAt = at, at
	s.Jobs[j.ID] = &j
	s.addBlob(j.SourceBlob, j.Origin)
	s.newTask(j.ID, TaskSplit, 0, j.Source.Duration)
	if j.Source.Audio != nil {
		s.newTask(j.ID, TaskAudio, 0, j.Source.Duration)
	}
	return nil
}

// newTask creates a pending task. A task made again (after a rewind) keeps
// counting attempts where the old one stopped, so that a late report from
// an old run can never pass for the new one.
func (s *State) newTask(jobID string, k TaskKind, chunk int, dur float64) {
	id := TaskID(jobID, k, chunk)
	t := &Task{ID: id, JobID: jobID, Kind: k, Chunk: chunk, State: TaskPending, Duration: dur}
	if old := s.Tasks[id]; old != nil {
		t.Attempt = old.Attempt
	} else if a := s.Retired[id]; a > 0 {
		t.Attempt = a
	}
	s.Tasks[id] = t
}

func (s *State) assign(a AssignTask, at time.Time) error {
	t, ok := s.Tasks[a.TaskID]
	if !ok {
		return fmt.Errorf("assign %s: %w", a.TaskID, ErrNotFound)
	}
	if t.State != TaskPending || a.Attempt != t.Attempt+1 {
		return fmt.Errorf("assign %s attempt %d: %w: task is %s at attempt %d", a.TaskID, a.Attempt, ErrStale, t.State, t.Attempt)
	}
	j := s.Jobs[t.JobID]
	if j == nil || j.State.Terminal() {
		return fmt.Errorf("assign %s: %w: job is finished", a.TaskID, ErrStale)
	}
	t.State, t.Node, t.Term, t.Attempt = TaskAssigned, a.Node, a.Term, a.Attempt
	if t.Kind == TaskSplit && j.State == JobQueued {
		j.State = JobSplitting
	}
	if t.Kind == TaskEncode && t.Chunk < len(j.Chunks) {
		j.Chunks[t.Chunk].Attempts = a.Attempt
		j.Chunks[t.Chunk].RunningOn = a.Node
	}
	j.UpdatedAt = at
	return nil
}

// current returns the task a result or failure refers to, if that report
// comes from the current assignment.
func (s *State) current(taskID, node string, attempt int) (*Task, *Job, error) {
	t, ok := s.Tasks[taskID]
	if !ok {
		return nil, nil, fmt.Errorf("task %s: %w", taskID, ErrNotFound)
	}
	if t.State != TaskAssigned || t.Node != node || t.Attempt != attempt {
		return nil, nil, fmt.Errorf("task %s from %s attempt %d: %w: task is %s on %q at attempt %d",
			taskID, node, attempt, ErrStale, t.State, t.Node, t.Attempt)
	}
	j := s.Jobs[t.JobID]
	if j == nil || j.State.Terminal() {
		return nil, nil, fmt.Errorf("task %s: %w: job is finished", taskID, ErrStale)
	}
	return t, j, nil
}

func (s *State) done(r TaskResult, at time.Time) error {
	t, j, err := s.current(r.TaskID, r.Node, r.Attempt)
	if err != nil {
		return err
	}
	switch t.Kind {
	case TaskSplit:
		if len(r.Chunks) == 0 {
			return fmt.Errorf("split %s: %w: no chunks", j.ID, ErrInvalid)
		}
		j.Chunks = slices.Clone(r.Chunks)
		for i := range j.Chunks {
			c := &j.Chunks[i]
			c.Index, c.Outputs, c.EncodedBy, c.Attempts = i, nil, "", 0
			s.addBlob(c.Source, r.Node)
			s.newTask(j.ID, TaskEncode, i, c.Duration)
		}
		j.State = JobTranscoding
	case TaskAudio:
		if r.Audio.IsZero() {
			return fmt.Errorf("audio %s: %w: no blob", j.ID, ErrInvalid)
		}
		j.Audio = r.Audio
		s.addBlob(r.Audio, r.Node)
	case TaskEncode:
		if t.Chunk >= len(j.Chunks) || len(r.Outputs) != len(j.Renditions) {
			return fmt.Errorf("encode %s: %w: want %d outputs, got %d", t.ID, ErrInvalid, len(j.Renditions), len(r.Outputs))
		}
		c := &j.Chunks[t.Chunk]
		c.Outputs = slices.Clone(r.Outputs)
		c.EncodedBy, c.RunningOn = r.Node, ""
		for _, o := range r.Outputs {
			s.addBlob(o, r.Node)
		}
	case TaskPackage:
		if r.HLS == "" || r.DASH == "" || len(r.Files) == 0 {
			return fmt.Errorf("package %s: %w: missing manifests", j.ID, ErrInvalid)
		}
		for rel, b := range r.Files {
			if err := CheckFilePath(rel); err != nil || !ValidHash(b.Hash) {
				return fmt.Errorf("package %s: %w: malformed file %q", j.ID, ErrInvalid, rel)
			}
		}
		j.Outputs = maps.Clone(r.Files)
		if len(r.Quality) != 0 && len(r.Quality) != len(j.Renditions) {
			return fmt.Errorf("package %s: %w: %d quality reports for %d renditions", j.ID, ErrInvalid, len(r.Quality), len(j.Renditions))
		}
		j.HLS, j.DASH, j.MP4 = r.HLS, r.DASH, maps.Clone(r.MP4)
		j.Quality = slices.Clone(r.Quality)
		for _, b := range r.Files {
			s.addBlob(b, r.Node)
		}
		j.State = JobDone
		j.FinishedAt = at
		s.startWebhook(j)
		s.finished = append(s.finished, *j)
	}
	t.State = TaskDone
	t.Error = ""
	j.UpdatedAt = at
	if j.State == JobTranscoding && s.readyToPackage(j) {
		j.State = JobPackaging
		s.newTask(j.ID, TaskPackage, 0, j.Source.Duration)
	}
	return nil
}

// readyToPackage reports whether every chunk is encoded and the audio (if
// the source has any) is ready.
func (s *State) readyToPackage(j *Job) bool {
	if len(j.Chunks) == 0 {
		return false
	}
	for _, c := range j.Chunks {
		if len(c.Outputs) == 0 {
			return false
		}
	}
	return j.Source.Audio == nil || !j.Audio.IsZero()
}

func (s *State) fail(f TaskFailure, at time.Time) error {
	t, j, err := s.current(f.TaskID, f.Node, f.Attempt)
	if err != nil {
		return err
	}
	j.UpdatedAt = at
	t.Error = f.Reason
	if t.Kind == TaskEncode && t.Chunk < len(j.Chunks) {
		j.Chunks[t.Chunk].RunningOn = ""
	}
	if f.Requeue && !f.Permanent {
		t.State, t.Node = TaskPending, ""
		return nil
	}
	t.Failures++
	t.FailedOn = f.Node
	if f.Permanent || t.Failures >= MaxTaskAttempts {
		reason := f.Reason
		if !f.Permanent {
			reason = fmt.Sprintf("%s task failed %d times; last error: %s", t.Kind, t.Failures, f.Reason)
		}
		s.finish(j, JobFailed, reason, at)
		return nil
	}
	t.State, t.Node = TaskPending, ""
	return nil
}

func (s *State) rewind(r JobRewind, at time.Time) error {
	j, ok := s.Jobs[r.JobID]
	if !ok {
		return fmt.Errorf("rewind %s: %w", r.JobID, ErrNotFound)
	}
	if j.State.Terminal() {
		return fmt.Errorf("rewind %s: %w: job is %s", r.JobID, ErrConflict, j.State)
	}
	// Packaging starts over in every case: its inputs changed.
	s.retire(TaskID(j.ID, TaskPackage, 0))
	if r.Resplit {
		for id, t := range s.Tasks {
			if t.JobID == j.ID && t.Kind == TaskEncode {
				s.retire(id)
			}
		}
		j.Chunks = nil
		s.newTask(j.ID, TaskSplit, 0, j.Source.Duration)
		j.State = JobQueued
	}
	for _, i := range r.Chunks {
		if r.Resplit || i < 0 || i >= len(j.Chunks) {
			continue
		}
		j.Chunks[i].Outputs, j.Chunks[i].EncodedBy, j.Chunks[i].RunningOn = nil, "", ""
		if t := s.Tasks[TaskID(j.ID, TaskEncode, i)]; t != nil {
			t.State, t.Node = TaskPending, ""
		}
	}
	if r.Audio && j.Source.Audio != nil {
		j.Audio = BlobRef{}
		if t := s.Tasks[TaskID(j.ID, TaskAudio, 0)]; t != nil {
			t.State, t.Node = TaskPending, ""
		}
	}
	if j.State == JobPackaging {
		j.State = JobTranscoding
	}
	j.UpdatedAt = at
	return nil
}

// retire removes a task but remembers its attempt count for when the same
// task is made again.
func (s *State) retire(id string) {
	if t := s.Tasks[id]; t != nil {
		if s.Retired == nil {
			s.Retired = map[string]int{}
		}
		s.Retired[id] = t.Attempt
		delete(s.Tasks, id)
	}
}

func (s *State) cancel(r JobRef, at time.Time) error {
	j, ok := s.Jobs[r.JobID]
	if !ok {
		return fmt.Errorf("cancel %s: %w", r.JobID, ErrNotFound)
	}
	if j.State.Terminal() {
		return fmt.Errorf("cancel %s: %w: job is %s", r.JobID, ErrConflict, j.State)
	}
	reason := r.Reason
	if reason == "" {
		reason = "canceled by user"
	}
	s.finish(j, JobCanceled, reason, at)
	return nil
}

// finish ends a job: its unfinished tasks fail so that no node keeps working
// on them.
func (s *State) finish(j *Job, st JobState, reason string, at time.Time) {
	j.State, j.Error, j.UpdatedAt, j.FinishedAt = st, reason, at, at
	if st == JobFailed {
		s.startWebhook(j)
	}
	s.finished = append(s.finished, *j)
	for _, t := range s.Tasks {
		if t.JobID == j.ID && t.State != TaskDone {
			t.State = TaskFailed
		}
	}
}

// startWebhook marks a job's callback as due: the leader's notifier
// delivers it until a job.notify records the outcome.
func (s *State) startWebhook(j *Job) {
	if j.CallbackURL != "" && j.Webhook == nil {
		j.Webhook = &WebhookStatus{State: WebhookPending}
	}
}

func (s *State) notify(n JobNotify, at time.Time) error {
	j, ok := s.Jobs[n.JobID]
	if !ok {
		return fmt.Errorf("notify %s: %w", n.JobID, ErrNotFound)
	}
	w := j.Webhook
	if w == nil || w.State != WebhookPending {
		return fmt.Errorf("notify %s: %w: no delivery pending", n.JobID, ErrConflict)
	}
	if n.Attempt != w.Attempts+1 {
		return fmt.Errorf("notify %s attempt %d: %w: %d attempts recorded", n.JobID, n.Attempt, ErrStale, w.Attempts)
	}
	w.Attempts, w.LastError, w.LastAttemptAt = n.Attempt, n.Error, at
	switch {
	case n.Delivered:
		w.State, w.DeliveredAt, w.LastError = WebhookDelivered, at, ""
	case n.GiveUp:
		w.State = WebhookFailed
	}
	return nil
}

func (s *State) delete(r JobRef) error {
	j, ok := s.Jobs[r.JobID]
	if !ok {
		return fmt.Errorf("delete %s: %w", r.JobID, ErrNotFound)
	}
	if !j.State.Terminal() {
		return fmt.Errorf("delete %s: %w: job is %s; cancel it first", r.JobID, ErrConflict, j.State)
	}
	delete(s.Jobs, r.JobID)
	for id, t := range s.Tasks {
		if t.JobID == r.JobID {
			delete(s.Tasks, id)
		}
	}
	for id := range s.Retired {
		if strings.HasPrefix(id, r.JobID+"/") {
			delete(s.Retired, id)
		}
	}
	s.dropUnreferenced()
	return nil
}

// dropUnreferenced forgets the locations of blobs no job needs any more;
// the nodes delete the bytes when their collector sees them unreferenced.
// It returns the bytes released, each blob counted once.
func (s *State) dropUnreferenced() int64 {
	var freed int64
	ref := s.Referenced()
	for h, b := range s.Blobs {
		if !ref[h] {
			freed += b.Size
			delete(s.Blobs, h)
		}
	}
	return freed
}

// expire releases a finished job's media once its TTL has run out (at is
// the proposer's clock; an early proposal is refused). The job stays
// listed, without outputs, with expired_at and the bytes freed.
func (s *State) expire(r JobRef, at time.Time) error {
	j, ok := s.Jobs[r.JobID]
	if !ok {
		return fmt.Errorf("expire %s: %w", r.JobID, ErrNotFound)
	}
	if !j.ExpiredAt.IsZero() {
		return fmt.Errorf("expire %s: %w: already expired", r.JobID, ErrConflict)
	}
	exp := j.ExpiresAt()
	if exp.IsZero() || at.Before(exp) {
		return fmt.Errorf("expire %s: %w: job is %s and not past its TTL", r.JobID, ErrConflict, j.State)
	}
	before := s.Referenced()
	j.ExpiredAt, j.UpdatedAt = at, at
	after := s.Referenced()
	var freed int64
	for h := range before {
		if !after[h] {
			if b := s.Blobs[h]; b != nil {
				freed += b.Size
			}
		}
	}
	s.dropUnreferenced()
	j.FreedBytes = freed
	j.Outputs, j.HLS, j.DASH, j.MP4 = nil, "", "", nil
	s.expired = append(s.expired, *j)
	return nil
}

func (s *State) addBlob(b BlobRef, node string) {
	if b.IsZero() || node == "" {
		return
	}
	h := s.Blobs[b.Hash]
	if h == nil {
		h = &BlobHolders{Size: b.Size, Nodes: map[string]bool{}}
		s.Blobs[b.Hash] = h
	}
	h.Nodes[node] = true
}

func (s *State) removeBlob(hash, node string) {
	h := s.Blobs[hash]
	if h == nil {
		return
	}
	delete(h.Nodes, node)
	if len(h.Nodes) == 0 {
		delete(s.Blobs, hash)
	}
}

// Referenced is the set of blob hashes some job still needs. A running job
// needs everything it has made so far; a finished one keeps its source (so
// it can be looked at or resubmitted) and its published outputs, and lets
// chunks and intermediate encodes go.
func (s *State) Referenced() map[string]bool {
	ref := map[string]bool{}
	add := func(b BlobRef) {
		if !b.IsZero() {
			ref[b.Hash] = true
		}
	}
	for _, j := range s.Jobs {
		if !j.ExpiredAt.IsZero() {
			continue // its TTL ran out: nothing of it is kept
		}
		if j.keepsSource() {
			add(j.SourceBlob)
		}
		for _, b := range j.Outputs {
			add(b)
		}
		if j.State.Terminal() {
			continue
		}
		add(j.Audio)
		for _, c := range j.Chunks {
			add(c.Source)
			for _, o := range c.Outputs {
				add(o)
			}
		}
	}
	return ref
}

// keepsSource reports whether a job still needs its source: always, but
// for a done job submitted with keep_source:false.
func (j *Job) keepsSource() bool { return !(j.DropSource && j.State == JobDone) }

// Durable is the set of blobs that must keep the replication factor: every
// job's source and its published outputs. Chunks and intermediate encodes
// can be made again from the source, so one copy of them is enough.
func (s *State) Durable() map[string]BlobRef {
	out := map[string]BlobRef{}
	for _, j := range s.Jobs {
		if !j.ExpiredAt.IsZero() {
			continue
		}
		if j.keepsSource() {
			out[j.SourceBlob.Hash] = j.SourceBlob
		}
		for _, b := range j.Outputs {
			out[b.Hash] = b
		}
	}
	return out
}

// Clone returns a deep copy, for snapshots.
func (s *State) Clone() *State {
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("clone state: %v", err)) // only plain data lives here
	}
	c := NewState()
	if err := json.Unmarshal(b, c); err != nil {
		panic(fmt.Sprintf("clone state: %v", err))
	}
	return c
}

// Job returns a copy of one job.
func (s *State) Job(id string) (Job, bool) {
	j, ok := s.Jobs[id]
	if !ok {
		return Job{}, false
	}
	return cloneJob(j), true
}

// JobsByAge returns copies of the jobs, newest first.
func (s *State) JobsByAge() []Job {
	out := make([]Job, 0, len(s.Jobs))
	for _, j := range s.Jobs {
		out = append(out, cloneJob(j))
	}
	sort.Slice(out, func(a, b int) bool {
		if !out[a].CreatedAt.Equal(out[b].CreatedAt) {
			return out[a].CreatedAt.After(out[b].CreatedAt)
		}
		return out[a].ID > out[b].ID
	})
	return out
}

func cloneJob(j *Job) Job {
	c := *j
	c.Renditions = slices.Clone(j.Renditions)
	c.Chunks = make([]Chunk, len(j.Chunks))
	for i, ch := range j.Chunks {
		ch.Outputs = slices.Clone(ch.Outputs)
		c.Chunks[i] = ch
	}
	c.Outputs = maps.Clone(j.Outputs)
	c.MP4 = maps.Clone(j.MP4)
	c.Quality = slices.Clone(j.Quality)
	c.Options.Renditions = slices.Clone(j.Options.Renditions)
	if j.Webhook != nil {
		w := *j.Webhook
		c.Webhook = &w
	}
	return c
}

// CloneJob returns a deep copy of j.
func CloneJob(j *Job) Job { return cloneJob(j) }
