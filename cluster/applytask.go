package cluster

// The task commands of State.Apply: a task made, assigned (task.assign),
// and its result or failure recorded (task.done, task.fail), with the
// checks that keep a stale or foreign report from counting.

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/gosty/gosty/transcoder"
)

// newTask creates a pending task. A task made again (after a rewind) keeps
// counting attempts where the old one stopped, so that a late report from
// an old run can never pass for the new one.
func (s *State) newTask(jobID string, k TaskKind, chunk int, dur float64) {
	id := TaskID(jobID, k, chunk)
	t := &Task{ID: id, JobID: jobID, Kind: k, Chunk: chunk, State: TaskPending, Duration: dur}
	if old, ok := s.Task(id); ok {
		t.Attempt = old.Attempt
	} else if a := s.retired[id]; a > 0 {
		t.Attempt = a
	}
	s.tasks.ReplaceOrInsert(t)
}

func (s *State) assign(a AssignTask, at time.Time) error {
	t, ok := s.Task(a.TaskID)
	if !ok {
		return fmt.Errorf("assign %s: %w", a.TaskID, ErrNotFound)
	}
	if t.State != TaskPending || a.Attempt != t.Attempt+1 {
		return fmt.Errorf("assign %s attempt %d: %w: task is %s at attempt %d", a.TaskID, a.Attempt, ErrStale, t.State, t.Attempt)
	}
	j := s.job(t.JobID)
	if j == nil || j.State.Terminal() {
		return fmt.Errorf("assign %s: %w: job is finished", a.TaskID, ErrStale)
	}
	nt := *t
	nt.State, nt.Node, nt.Term, nt.Attempt = TaskAssigned, a.Node, a.Term, a.Attempt
	s.tasks.ReplaceOrInsert(&nt)
	nj := *j
	if t.Kind == TaskSplit && j.State == JobQueued {
		nj.State = JobSplitting
	}
	if t.Kind == TaskEncode {
		if c, ok := s.Chunk(j.ID, t.Chunk); ok {
			nc := *c
			nc.Attempts, nc.RunningOn = a.Attempt, a.Node
			s.putChunk(c, &nc, true)
		}
	}
	nj.UpdatedAt = at
	s.putJob(j, &nj)
	return nil
}

// current returns the task a result or failure refers to, if that report
// comes from the current assignment.
func (s *State) current(taskID, node string, attempt int) (*Task, *Job, error) {
	t, ok := s.Task(taskID)
	if !ok {
		return nil, nil, fmt.Errorf("task %s: %w", taskID, ErrNotFound)
	}
	if t.State != TaskAssigned || t.Node != node || t.Attempt != attempt {
		return nil, nil, fmt.Errorf("task %s from %s attempt %d: %w: task is %s on %q at attempt %d",
			taskID, node, attempt, ErrStale, t.State, t.Node, t.Attempt)
	}
	j := s.job(t.JobID)
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
	if err := s.checkResult(t, j, r); err != nil {
		return err
	}
	nj := *j
	var held []BlobRef // new copies on r.Node, recorded once the references exist
	switch t.Kind {
	case TaskSplit:
		s.dropChunks(j.ID, true) // a split again after a rewind starts from nothing
		for i, c := range r.Chunks {
			c.JobID, c.Index, c.Outputs, c.EncodedBy, c.Attempts = j.ID, i, nil, "", 0
			c.Thumbs = BlobRef{}
			s.putChunk(nil, &c, true)
			held = append(held, c.Source)
			s.newTask(j.ID, TaskEncode, i, c.Duration)
		}
		nj.State, nj.ChunkCount = JobTranscoding, len(r.Chunks)
		nj.Scores = nil // new chunks, new windows
	case TaskAudio:
		nj.Audio = r.Audio
		held = append(held, r.Audio)
	case TaskEncode:
		c, _ := s.Chunk(j.ID, t.Chunk)
		nc := *c
		nc.Outputs = slices.Clone(r.Outputs)
		nc.EncodedBy, nc.RunningOn = r.Node, ""
		nc.Thumbs = r.Thumbs
		s.putChunk(c, &nc, true)
		nj.Scores = mergeScores(j.Scores, r.Scores)
		held = append(held, r.Outputs...)
		if !r.Thumbs.IsZero() {
			held = append(held, r.Thumbs)
		}
	case TaskPackage:
		if len(r.Files) > 0 {
			nj.Outputs = maps.Clone(r.Files)
			for _, b := range r.Files {
				held = append(held, b)
			}
		} else {
			nj.Manifest = r.Manifest
			held = append(held, r.Manifest)
		}
		nj.HLS, nj.DASH, nj.MP4 = r.HLS, r.DASH, maps.Clone(r.MP4)
		nj.Poster, nj.Storyboard = r.Poster, r.Storyboard
		nj.Quality = slices.Clone(r.Quality)
		nj.Scores = nil // folded into Quality
		nj.State = JobDone
		nj.FinishedAt = at
		if !publishDone(&nj) { // the callback waits for the upload (publish.go)
			startWebhook(&nj)
		}
	}
	nt := *t
	nt.State, nt.Error, nt.Lost = TaskDone, "", 0
	s.tasks.ReplaceOrInsert(&nt)
	nj.UpdatedAt = at
	if nj.State == JobTranscoding && s.readyToPackage(&nj) {
		nj.State = JobPackaging
		s.newTask(j.ID, TaskPackage, 0, j.Source.Duration)
	}
	s.putJob(j, &nj)
	for _, b := range held {
		s.addHolder(b, r.Node)
	}
	for _, b := range r.Pulled {
		s.addHolder(b, r.Node)
	}
	if nj.State == JobDone {
		s.ended(&nj, r.Published)
	}
	return nil
}

// checkResult refuses a result whose shape does not fit its task.
func (s *State) checkResult(t *Task, j *Job, r TaskResult) error {
	switch t.Kind {
	case TaskSplit:
		if len(r.Chunks) == 0 {
			return fmt.Errorf("split %s: %w: no chunks", j.ID, ErrInvalid)
		}
	case TaskAudio:
		if r.Audio.IsZero() {
			return fmt.Errorf("audio %s: %w: no blob", j.ID, ErrInvalid)
		}
	case TaskEncode:
		if _, ok := s.Chunk(j.ID, t.Chunk); !ok || len(r.Outputs) != len(j.Renditions) {
			return fmt.Errorf("encode %s: %w: want %d outputs, got %d", t.ID, ErrInvalid, len(j.Renditions), len(r.Outputs))
		}
		if !r.Thumbs.IsZero() && !ValidHash(r.Thumbs.Hash) {
			return fmt.Errorf("encode %s: %w: malformed thumbs blob", t.ID, ErrInvalid)
		}
		if err := checkScores(r.Scores, len(j.Renditions)); err != nil {
			return fmt.Errorf("encode %s: %w: %v", t.ID, ErrInvalid, err)
		}
	case TaskPackage:
		manifest := len(r.Files) == 0 && !r.Manifest.IsZero() && s.version >= LogV2
		if r.HLS == "" || r.DASH == "" || (len(r.Files) == 0 && !manifest) {
			return fmt.Errorf("package %s: %w: missing manifests", j.ID, ErrInvalid)
		}
		for rel, b := range r.Files {
			if err := CheckFilePath(rel); err != nil || !ValidHash(b.Hash) {
				return fmt.Errorf("package %s: %w: malformed file %q", j.ID, ErrInvalid, rel)
			}
		}
		if manifest && (!ValidHash(r.Manifest.Hash) || r.Published < 0) {
			return fmt.Errorf("package %s: %w: malformed manifest", j.ID, ErrInvalid)
		}
		for _, rel := range []string{r.Poster, r.Storyboard} {
			if rel != "" && CheckFilePath(rel) != nil {
				return fmt.Errorf("package %s: %w: malformed file %q", j.ID, ErrInvalid, rel)
			}
		}
		if len(r.Quality) != 0 && len(r.Quality) != len(j.Renditions) {
			return fmt.Errorf("package %s: %w: %d quality reports for %d renditions", j.ID, ErrInvalid, len(r.Quality), len(j.Renditions))
		}
	}
	for _, b := range r.Pulled {
		if !ValidHash(b.Hash) {
			return fmt.Errorf("task %s: %w: malformed pulled blob", t.ID, ErrInvalid)
		}
	}
	return nil
}

// readyToPackage reports whether every chunk is encoded and the audio (if
// the source has any) is ready.
func (s *State) readyToPackage(j *Job) bool {
	n, ready := 0, true
	s.chunks.AscendGreaterOrEqual(&Chunk{JobID: j.ID}, func(c *Chunk) bool {
		if c.JobID != j.ID {
			return false
		}
		n++
		ready = len(c.Outputs) > 0
		return ready
	})
	return n > 0 && ready && (j.Source.Audio == nil || !j.Audio.IsZero())
}

func (s *State) fail(f TaskFailure, at time.Time) error {
	t, j, err := s.current(f.TaskID, f.Node, f.Attempt)
	if err != nil {
		return err
	}
	nj := *j
	nj.UpdatedAt = at
	nt := *t
	nt.Error = f.Reason
	if t.Kind == TaskEncode {
		if c, ok := s.Chunk(j.ID, t.Chunk); ok && c.RunningOn != "" {
			nc := *c
			nc.RunningOn = ""
			s.putChunk(c, &nc, true)
		}
	}
	if f.Requeue && !f.Permanent {
		nt.State, nt.Node = TaskPending, ""
		if f.Lost && s.version >= LogV2 {
			if nt.Lost++; nt.Lost >= MaxLostInput {
				s.tasks.ReplaceOrInsert(&nt)
				s.finish(j, &nj, JobFailed, fmt.Sprintf("the input of the %s task is lost: no node has a copy (%d tries); last error: %s",
					t.Kind, nt.Lost, f.Reason), at)
				return nil
			}
		}
		s.tasks.ReplaceOrInsert(&nt)
		s.putJob(j, &nj)
		return nil
	}
	nt.Failures++
	nt.FailedOn = f.Node
	if f.Permanent || nt.Failures >= MaxTaskAttempts {
		s.tasks.ReplaceOrInsert(&nt)
		reason := f.Reason
		if !f.Permanent {
			reason = fmt.Sprintf("%s task failed %d times; last error: %s", t.Kind, nt.Failures, f.Reason)
		}
		s.finish(j, &nj, JobFailed, reason, at)
		return nil
	}
	nt.State, nt.Node = TaskPending, ""
	s.tasks.ReplaceOrInsert(&nt)
	s.putJob(j, &nj)
	return nil
}

// mergeScores is a job's window scores with those of an encode result:
// a window scored again (its chunk encoded again) takes the new score.
func mergeScores(have, add []WindowScore) []WindowScore {
	if len(add) == 0 {
		return have
	}
	out := slices.Clone(have)
	for _, w := range add {
		w.Renditions = slices.Clone(w.Renditions)
		if i := slices.IndexFunc(out, func(x WindowScore) bool { return x.Window == w.Window }); i >= 0 {
			out[i] = w
		} else {
			out = append(out, w)
		}
	}
	slices.SortFunc(out, func(a, b WindowScore) int { return a.Window - b.Window })
	return out
}

// checkScores refuses window scores that do not fit a job of n renditions.
func checkScores(ws []WindowScore, n int) error {
	if len(ws) > transcoder.QualityWindows {
		return fmt.Errorf("%d window scores", len(ws))
	}
	for _, w := range ws {
		if w.Window < 0 || w.Window >= transcoder.QualityWindows || len(w.Renditions) != n {
			return fmt.Errorf("window %d scored for %d renditions of %d", w.Window, len(w.Renditions), n)
		}
		for _, r := range w.Renditions {
			if r.Frames < 0 || !(r.SSIM >= 0) || !(r.MSE >= 0) || math.IsInf(r.SSIM, 0) || math.IsInf(r.MSE, 0) {
				return fmt.Errorf("window %d: bad sums %+v", w.Window, r)
			}
		}
	}
	return nil
}
