package cluster

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gosty/gosty/transcoder"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func testJob(id string, audio bool) Job {
	j := Job{
		ID: id, Name: "clip.mp4", Origin: "n1",
		SourceBlob: BlobRef{Hash: strings.Repeat("a", 64), Size: 100},
		Source:     transcoder.Probe{Duration: 12, Video: &transcoder.VideoStream{Width: 640, Height: 360, FrameRate: 25, Duration: 12}},
		Renditions: []transcoder.Rendition{{Name: "360p", Width: 640, Height: 360}, {Name: "240p", Width: 426, Height: 240}},
	}
	if audio {
		j.Source.Audio = &transcoder.AudioStream{Codec: "aac", Channels: 2}
	}
	return j
}

func hash(c byte) string { return strings.Repeat(string(c), 64) }

// apply is a test helper: encode and apply one command.
func apply(t *testing.T, s *State, op Op, body any) error {
	t.Helper()
	data, err := EncodeCommand(op, t0, body)
	if err != nil {
		t.Fatal(err)
	}
	c, err := DecodeCommand(data)
	if err != nil {
		t.Fatal(err)
	}
	return s.Apply(c)
}

func mustApply(t *testing.T, s *State, op Op, body any) {
	t.Helper()
	if err := apply(t, s, op, body); err != nil {
		t.Fatalf("%s: %v", op, err)
	}
}

// runJob drives one job through its whole pipeline on node n1.
func runJob(t *testing.T, s *State, j Job) {
	t.Helper()
	mustApply(t, s, OpJobSubmit, SubmitJob{Job: j})
	split := TaskID(j.ID, TaskSplit, 0)
	mustApply(t, s, OpTaskAssign, AssignTask{TaskID: split, Node: "n1", Term: 1, Attempt: 1})
	if got := s.Jobs[j.ID].State; got != JobSplitting {
		t.Fatalf("after split assign: state %s", got)
	}
	mustApply(t, s, OpTaskDone, TaskResult{TaskID: split, Node: "n1", Attempt: 1, Chunks: []Chunk{
		{Start: 0, Duration: 6, Frames: 150, Source: BlobRef{Hash: hash('b'), Size: 10}},
		{Start: 6, Duration: 6, Frames: 150, Source: BlobRef{Hash: hash('c'), Size: 10}},
	}})
	if got := s.Jobs[j.ID].State; got != JobTranscoding {
		t.Fatalf("after split: state %s", got)
	}
	for i, hs := range [][2]byte{{'d', 'e'}, {'f', '0'}} {
		id := TaskID(j.ID, TaskEncode, i)
		mustApply(t, s, OpTaskAssign, AssignTask{TaskID: id, Node: "n1", Term: 1, Attempt: 1})
		mustApply(t, s, OpTaskDone, TaskResult{TaskID: id, Node: "n1", Attempt: 1,
			Outputs: []BlobRef{{Hash: hash(hs[0]), Size: 5}, {Hash: hash(hs[1]), Size: 5}}})
	}
	if j.Source.Audio != nil {
		if got := s.Jobs[j.ID].State; got != JobTranscoding {
			t.Fatalf("package must wait for audio; state %s", got)
		}
		id := TaskID(j.ID, TaskAudio, 0)
		mustApply(t, s, OpTaskAssign, AssignTask{TaskID: id, Node: "n1", Term: 1, Attempt: 1})
		mustApply(t, s, OpTaskDone, TaskResult{TaskID: id, Node: "n1", Attempt: 1, Audio: BlobRef{Hash: hash('1'), Size: 3}})
	}
	if got := s.Jobs[j.ID].State; got != JobPackaging {
		t.Fatalf("after encodes: state %s", got)
	}
	pk := TaskID(j.ID, TaskPackage, 0)
	mustApply(t, s, OpTaskAssign, AssignTask{TaskID: pk, Node: "n1", Term: 1, Attempt: 1})
	mustApply(t, s, OpTaskDone, TaskResult{TaskID: pk, Node: "n1", Attempt: 1,
		Files: map[string]BlobRef{"master.m3u8": {Hash: hash('2'), Size: 1}, "manifest.mpd": {Hash: hash('3'), Size: 1}},
		HLS:   "master.m3u8", DASH: "manifest.mpd"})
}

func TestJobLifecycle(t *testing.T) {
	for _, audio := range []bool{true, false} {
		s := NewState()
		j := testJob("job1", audio)
		runJob(t, s, j)
		got := s.Jobs["job1"]
		if got.State != JobDone || got.FinishedAt.IsZero() || got.HLS != "master.m3u8" {
			t.Fatalf("audio=%v: job not done: %+v", audio, got)
		}
		if got.Chunks[1].EncodedBy != "n1" || len(got.Chunks[1].Outputs) != 2 {
			t.Fatalf("chunk record: %+v", got.Chunks[1])
		}
		ref := s.Referenced()
		if !ref[hash('a')] || !ref[hash('2')] || ref[hash('b')] || ref[hash('d')] {
			t.Fatalf("a done job keeps source and outputs only, got %v", ref)
		}
	}
}

func TestStaleAndDuplicateReportsAreRefused(t *testing.T) {
	s := NewState()
	mustApply(t, s, OpJobSubmit, SubmitJob{Job: testJob("j", false)})
	split := TaskID("j", TaskSplit, 0)
	mustApply(t, s, OpTaskAssign, AssignTask{TaskID: split, Node: "n1", Term: 1, Attempt: 1})

	tests := []struct {
		name string
		op   Op
		body any
		want error
	}{
		{"duplicate assignment", OpTaskAssign, AssignTask{TaskID: split, Node: "n2", Attempt: 1}, ErrStale},
		{"skipping an attempt", OpTaskAssign, AssignTask{TaskID: split, Node: "n2", Attempt: 3}, ErrStale},
		{"done from another node", OpTaskDone, TaskResult{TaskID: split, Node: "n2", Attempt: 1, Chunks: []Chunk{{Duration: 1}}}, ErrStale},
		{"done for an old attempt", OpTaskDone, TaskResult{TaskID: split, Node: "n1", Attempt: 0, Chunks: []Chunk{{Duration: 1}}}, ErrStale},
		{"fail from another node", OpTaskFail, TaskFailure{TaskID: split, Node: "n2", Attempt: 1, Reason: "x"}, ErrStale},
		{"unknown task", OpTaskDone, TaskResult{TaskID: "nope/split", Node: "n1", Attempt: 1}, ErrNotFound},
		{"split with no chunks", OpTaskDone, TaskResult{TaskID: split, Node: "n1", Attempt: 1}, ErrInvalid},
		{"submit twice", OpJobSubmit, SubmitJob{Job: testJob("j", false)}, ErrConflict},
		{"submit without source", OpJobSubmit, SubmitJob{Job: Job{ID: "x", Origin: "n1"}}, ErrInvalid},
		{"delete a running job", OpJobDelete, JobRef{JobID: "j"}, ErrConflict},
		{"cancel unknown job", OpJobCancel, JobRef{JobID: "zz"}, ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := s.Clone()
			err := apply(t, s, tc.op, tc.body)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if a, b := mustJSON(t, before), mustJSON(t, s); a != b {
				t.Fatalf("a refused command changed the state")
			}
		})
	}
}

func TestFailuresRetryThenFailTheJob(t *testing.T) {
	s := NewState()
	mustApply(t, s, OpJobSubmit, SubmitJob{Job: testJob("j", false)})
	split := TaskID("j", TaskSplit, 0)
	for attempt := 1; attempt <= MaxTaskAttempts; attempt++ {
		mustApply(t, s, OpTaskAssign, AssignTask{TaskID: split, Node: "n1", Attempt: attempt})
		mustApply(t, s, OpTaskFail, TaskFailure{TaskID: split, Node: "n1", Attempt: attempt, Reason: "disk full"})
		if attempt < MaxTaskAttempts && s.Tasks[split].State != TaskPending {
			t.Fatalf("attempt %d: task should be pending again, is %s", attempt, s.Tasks[split].State)
		}
	}
	j := s.Jobs["j"]
	if j.State != JobFailed || !strings.Contains(j.Error, "disk full") || !strings.Contains(j.Error, "3 times") {
		t.Fatalf("job: %s %q", j.State, j.Error)
	}
}

func TestPermanentFailureFailsAtOnce(t *testing.T) {
	s := NewState()
	mustApply(t, s, OpJobSubmit, SubmitJob{Job: testJob("j", true)})
	split := TaskID("j", TaskSplit, 0)
	mustApply(t, s, OpTaskAssign, AssignTask{TaskID: split, Node: "n1", Attempt: 1})
	mustApply(t, s, OpTaskFail, TaskFailure{TaskID: split, Node: "n1", Attempt: 1, Reason: "no video stream", Permanent: true})
	j := s.Jobs["j"]
	if j.State != JobFailed || j.Error != "no video stream" {
		t.Fatalf("job: %s %q", j.State, j.Error)
	}
	if s.Tasks[TaskID("j", TaskAudio, 0)].State != TaskFailed {
		t.Fatal("the job's other tasks must stop")
	}
	if got := Assignments(s, []Worker{{Name: "n1", Slots: 4}}); len(got) != 0 {
		t.Fatalf("nothing of a failed job may be scheduled, got %v", got)
	}
}

func TestCancelThenDelete(t *testing.T) {
	s := NewState()
	mustApply(t, s, OpJobSubmit, SubmitJob{Job: testJob("j", false)})
	mustApply(t, s, OpJobCancel, JobRef{JobID: "j"})
	if s.Jobs["j"].State != JobCanceled {
		t.Fatal("not canceled")
	}
	if err := apply(t, s, OpJobCancel, JobRef{JobID: "j"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("second cancel: %v", err)
	}
	mustApply(t, s, OpJobDelete, JobRef{JobID: "j"})
	if len(s.Jobs) != 0 || len(s.Tasks) != 0 || len(s.Blobs) != 0 {
		t.Fatalf("delete left %d jobs, %d tasks, %d blobs", len(s.Jobs), len(s.Tasks), len(s.Blobs))
	}
}

func TestDecodeCommandRefusesGarbage(t *testing.T) {
	for _, in := range []string{"", "{", "null", `{"v":0,"op":"job.submit"}`, `{"v":99,"op":"job.submit"}`, `{"v":1}`, "\x00\xff"} {
		if _, err := DecodeCommand([]byte(in)); err == nil {
			t.Errorf("DecodeCommand(%q) accepted", in)
		}
	}
	s := NewState()
	for _, c := range []Command{
		{V: 1, Op: OpJobSubmit, Body: []byte(`[1,2]`)},
		{V: 1, Op: OpTaskDone, Body: []byte(`"x"`)},
		{V: 1, Op: "job.teleport", Body: []byte(`{}`)},
	} {
		if err := s.Apply(c); err == nil {
			t.Errorf("Apply(%s %s) accepted", c.Op, c.Body)
		}
	}
}

func TestAssignmentsPlacement(t *testing.T) {
	s := NewState()
	mustApply(t, s, OpJobSubmit, SubmitJob{Job: testJob("j", true)})
	// The source is only on n1: split and audio must go there, one slot each.
	got := Assignments(s, []Worker{{Name: "n2", Slots: 8}, {Name: "n1", Slots: 2}})
	if len(got) != 2 || got[0].Node != "n1" || got[1].Node != "n1" || got[0].TaskID != TaskID("j", TaskSplit, 0) {
		t.Fatalf("got %+v", got)
	}
	// With one slot only the split runs now.
	if got := Assignments(s, []Worker{{Name: "n1", Slots: 1}}); len(got) != 1 || got[0].TaskID != TaskID("j", TaskSplit, 0) {
		t.Fatalf("one slot: %+v", got)
	}
	// Assigned tasks use up slots.
	mustApply(t, s, OpTaskAssign, AssignTask{TaskID: TaskID("j", TaskSplit, 0), Node: "n1", Attempt: 1})
	if got := Assignments(s, []Worker{{Name: "n1", Slots: 1}}); len(got) != 0 {
		t.Fatalf("no free slot: %+v", got)
	}
	// Encodes prefer the chunk's holder.
	mustApply(t, s, OpTaskDone, TaskResult{TaskID: TaskID("j", TaskSplit, 0), Node: "n1", Attempt: 1, Chunks: []Chunk{
		{Duration: 6, Source: BlobRef{Hash: hash('b')}}, {Duration: 6, Source: BlobRef{Hash: hash('c')}}}})
	mustApply(t, s, OpBlobAdd, BlobLocation{Blob: BlobRef{Hash: hash('c')}, Node: "n3"})
	got = Assignments(s, []Worker{{Name: "n1", Slots: 1}, {Name: "n3", Slots: 1}})
	want := map[string]string{TaskID("j", TaskAudio, 0): "n1", TaskID("j", TaskEncode, 1): "n3"}
	if len(got) != 2 {
		t.Fatalf("got %+v", got)
	}
	for _, a := range got {
		if want[a.TaskID] != a.Node {
			t.Fatalf("got %+v, want %v", got, want)
		}
	}
}

func mustJSON(t *testing.T, s *State) string {
	t.Helper()
	c := s.Clone()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRequeueDoesNotCountAsFailure(t *testing.T) {
	s := NewState()
	mustApply(t, s, OpJobSubmit, SubmitJob{Job: testJob("j", false)})
	split := TaskID("j", TaskSplit, 0)
	for attempt := 1; attempt <= MaxTaskAttempts+2; attempt++ {
		mustApply(t, s, OpTaskAssign, AssignTask{TaskID: split, Node: "n1", Attempt: attempt})
		mustApply(t, s, OpTaskFail, TaskFailure{TaskID: split, Node: "n1", Attempt: attempt, Reason: "node n1 died", Requeue: true})
	}
	if tk := s.Tasks[split]; tk.State != TaskPending || tk.Failures != 0 || s.Jobs["j"].State.Terminal() {
		t.Fatalf("task %+v, job %s", tk, s.Jobs["j"].State)
	}
}

func TestRewindRedoesLostWorkWithoutReusingAttempts(t *testing.T) {
	s := NewState()
	j := testJob("j", true)
	runJobUntilPackaging(t, s, j)
	pk := TaskID("j", TaskPackage, 0)
	mustApply(t, s, OpTaskAssign, AssignTask{TaskID: pk, Node: "n1", Attempt: 1})

	// Chunk 1's encodes and the audio were only on a node that died.
	mustApply(t, s, OpJobRewind, JobRewind{JobID: "j", Chunks: []int{1}, Audio: true, Reason: "lost"})
	got := s.Jobs["j"]
	if got.State != JobTranscoding || len(got.Chunks[1].Outputs) != 0 || len(got.Chunks[0].Outputs) == 0 || !got.Audio.IsZero() {
		t.Fatalf("after rewind: %s %+v audio %v", got.State, got.Chunks, got.Audio)
	}
	if _, ok := s.Tasks[pk]; ok {
		t.Fatal("the package task survived its inputs changing")
	}
	// The old package run's report is stale.
	err := apply(t, s, OpTaskDone, TaskResult{TaskID: pk, Node: "n1", Attempt: 1, Files: map[string]BlobRef{"m": {Hash: hash('9')}}, HLS: "m", DASH: "m"})
	if err == nil {
		t.Fatal("a report from before the rewind was accepted")
	}
	enc := TaskID("j", TaskEncode, 1)
	if s.Tasks[enc].State != TaskPending || s.Tasks[enc].Attempt != 1 {
		t.Fatalf("encode task %+v", s.Tasks[enc])
	}
	mustApply(t, s, OpTaskAssign, AssignTask{TaskID: enc, Node: "n2", Attempt: 2})
	mustApply(t, s, OpTaskDone, TaskResult{TaskID: enc, Node: "n2", Attempt: 2, Outputs: []BlobRef{{Hash: hash('7')}, {Hash: hash('8')}}})
	au := TaskID("j", TaskAudio, 0)
	mustApply(t, s, OpTaskAssign, AssignTask{TaskID: au, Node: "n2", Attempt: 2})
	mustApply(t, s, OpTaskDone, TaskResult{TaskID: au, Node: "n2", Attempt: 2, Audio: BlobRef{Hash: hash('6')}})
	if s.Jobs["j"].State != JobPackaging || s.Tasks[pk].Attempt != 1 {
		t.Fatalf("package again: %s %+v", s.Jobs["j"].State, s.Tasks[pk])
	}

	// Resplit: back to the source, with attempt numbers still rising.
	mustApply(t, s, OpJobRewind, JobRewind{JobID: "j", Resplit: true, Reason: "chunks lost"})
	if got := s.Jobs["j"]; got.State != JobQueued || len(got.Chunks) != 0 || s.Tasks[TaskID("j", TaskSplit, 0)].Attempt != 1 {
		t.Fatalf("after resplit: %s %d chunks, split %+v", got.State, len(got.Chunks), s.Tasks[TaskID("j", TaskSplit, 0)])
	}
	// The state round-trips through a snapshot with its retired attempts.
	if a, b := mustJSON(t, s), mustJSON(t, s.Clone()); a != b {
		t.Fatal("clone differs")
	}
}

// runJobUntilPackaging drives a job up to its package task.
func runJobUntilPackaging(t *testing.T, s *State, j Job) {
	t.Helper()
	mustApply(t, s, OpJobSubmit, SubmitJob{Job: j})
	split := TaskID(j.ID, TaskSplit, 0)
	mustApply(t, s, OpTaskAssign, AssignTask{TaskID: split, Node: "n1", Attempt: 1})
	mustApply(t, s, OpTaskDone, TaskResult{TaskID: split, Node: "n1", Attempt: 1, Chunks: []Chunk{
		{Duration: 6, Source: BlobRef{Hash: hash('b')}}, {Duration: 6, Source: BlobRef{Hash: hash('c')}}}})
	for i := range 2 {
		id := TaskID(j.ID, TaskEncode, i)
		mustApply(t, s, OpTaskAssign, AssignTask{TaskID: id, Node: "n1", Attempt: 1})
		mustApply(t, s, OpTaskDone, TaskResult{TaskID: id, Node: "n1", Attempt: 1, Outputs: []BlobRef{{Hash: hash('d')}, {Hash: hash('e')}}})
	}
	if j.Source.Audio != nil {
		id := TaskID(j.ID, TaskAudio, 0)
		mustApply(t, s, OpTaskAssign, AssignTask{TaskID: id, Node: "n1", Attempt: 1})
		mustApply(t, s, OpTaskDone, TaskResult{TaskID: id, Node: "n1", Attempt: 1, Audio: BlobRef{Hash: hash('1')}})
	}
	if s.Jobs[j.ID].State != JobPackaging {
		t.Fatalf("state %s", s.Jobs[j.ID].State)
	}
}

// TestPackageQualityReport: the package result's optional quality report
// lands in the job, one per rendition; a report of the wrong length is
// refused; and a package entry written before the field existed (raw
// JSON, version 1, no "quality") still applies, with no report.
func TestPackageQualityReport(t *testing.T) {
	pk := TaskID("j", TaskPackage, 0)
	files := map[string]BlobRef{"master.m3u8": {Hash: hash('9')}}

	s := NewState()
	runJobUntilPackaging(t, s, testJob("j", false))
	mustApply(t, s, OpTaskAssign, AssignTask{TaskID: pk, Node: "n1", Attempt: 1})
	if err := apply(t, s, OpTaskDone, TaskResult{TaskID: pk, Node: "n1", Attempt: 1, Files: files, HLS: "master.m3u8", DASH: "master.m3u8",
		Quality: []transcoder.Quality{{SSIM: 0.99}}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("one report for two renditions: %v", err)
	}
	q := []transcoder.Quality{{SSIM: 0.99, PSNR: 45, Frames: 300, SampledFrames: 75, SampledSeconds: 3}, {SSIM: 0.95, PSNR: 38, Frames: 300, SampledFrames: 75, SampledSeconds: 3}}
	mustApply(t, s, OpTaskDone, TaskResult{TaskID: pk, Node: "n1", Attempt: 1, Files: files, HLS: "master.m3u8", DASH: "master.m3u8", Quality: q})
	j, _ := s.Job("j")
	if j.State != JobDone || len(j.Quality) != 2 || j.Quality[1] != q[1] {
		t.Fatalf("job %s quality %+v", j.State, j.Quality)
	}

	old := NewState()
	runJobUntilPackaging(t, old, testJob("j", false))
	mustApply(t, old, OpTaskAssign, AssignTask{TaskID: pk, Node: "n1", Attempt: 1})
	raw := `{"v":1,"op":"task.done","at":"2026-01-02T03:04:05Z","body":{"task_id":"j/package","node":"n1","attempt":1,` +
		`"files":{"master.m3u8":{"hash":"` + hash('9') + `","size":1}},"hls":"master.m3u8","dash":"master.m3u8"}}`
	c, err := DecodeCommand([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Apply(c); err != nil {
		t.Fatalf("old package entry: %v", err)
	}
	if j, _ := old.Job("j"); j.State != JobDone || j.Quality != nil {
		t.Fatalf("old entry: %s, quality %+v", j.State, j.Quality)
	}
}
