package cluster

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestJobLifecycle(t *testing.T) {
	for _, v := range []int{LogV1, LogV2} {
		for _, audio := range []bool{true, false} {
			t.Run(fmt.Sprintf("v%d audio %v", v, audio), func(t *testing.T) {
				s := NewState()
				if v == LogV2 {
					s = upgraded(t)
				}
				runJob(t, s, testJob("job1", audio))
				got := jobOf(t, s, "job1")
				if got.State != JobDone || got.FinishedAt.IsZero() || got.HLS != "master.m3u8" {
					t.Fatalf("job not done: %+v", got)
				}
				blobs := blobSet(s)
				if v == LogV1 {
					// The first format keeps the chunks and one record per file.
					if cs := s.Chunks("job1"); len(cs) != 2 || cs[1].EncodedBy != "n1" || len(cs[1].Outputs) != 2 {
						t.Fatalf("chunk records: %+v", cs)
					}
					if len(blobs) != 3 || blobs["a"] != 1 || blobs["2"] != 1 || blobs["3"] != 1 {
						t.Fatalf("a done job keeps source and outputs only, got %v", blobs)
					}
					return
				}
				// The second: a compact record and a manifest.
				if s.ChunkCount("job1") != 0 || s.tasks.Len() != 0 || !got.Compact() || got.Manifest.Hash != hash('8') {
					t.Fatalf("not compact: %d chunks, %d tasks, %+v", s.ChunkCount("job1"), s.tasks.Len(), got)
				}
				if sz := got.Sizes; got.ChunkCount != 2 || sz.ChunkSize != 20 || sz.Encoded != 20 || sz.Published != 2 {
					t.Fatalf("sizes %+v", sz)
				}
				if len(blobs) != 2 || blobs["a"] != 1 || blobs["8"] != 1 {
					t.Fatalf("a done job keeps its source and its manifest only, got %v", blobs)
				}
				if m, _ := s.Blob(hash('8')); !m.Set() || !m.Durable() {
					t.Fatalf("manifest record %+v", m)
				}
			})
		}
	}
}

// TestFinishedJobWeighsTheSameWhateverItsLength: once finished (log version
// 2), a job of a thousand chunks takes as many bytes in the snapshot as a
// job of one, give or take the digits of its byte totals.
func TestFinishedJobWeighsTheSameWhateverItsLength(t *testing.T) {
	size := func(chunks int) int {
		s := upgraded(t)
		j := testJob("j", false)
		mustApply(t, s, OpJobSubmit, SubmitJob{Job: j})
		split := TaskID("j", TaskSplit, 0)
		mustApply(t, s, OpTaskAssign, AssignTask{TaskID: split, Node: "n1", Attempt: 1})
		var cs []Chunk
		for i := range chunks {
			cs = append(cs, Chunk{Duration: 6, Frames: 150, Source: BlobRef{Hash: fmt.Sprintf("%064x", i+1), Size: 1000}})
		}
		mustApply(t, s, OpTaskDone, TaskResult{TaskID: split, Node: "n1", Attempt: 1, Chunks: cs})
		for i := range chunks {
			id := TaskID("j", TaskEncode, i)
			mustApply(t, s, OpTaskAssign, AssignTask{TaskID: id, Node: "n1", Attempt: 1})
			r := TaskResult{TaskID: id, Node: "n1", Attempt: 1,
				Outputs: []BlobRef{{Hash: fmt.Sprintf("%064x", 1<<20+2*i), Size: 900}, {Hash: fmt.Sprintf("%064x", 1<<20+2*i+1), Size: 400}}}
			if w := i * 3 / chunks; i == (w*chunks+2)/3 { // the chunks holding the quality windows
				r.Scores = []WindowScore{score(w, 29.4, 30)}
			}
			mustApply(t, s, OpTaskDone, r)
		}
		pk := TaskID("j", TaskPackage, 0)
		mustApply(t, s, OpTaskAssign, AssignTask{TaskID: pk, Node: "n1", Attempt: 1})
		r := packageResult(s, pk)
		r.Published = 123456789 // the same number of digits either way
		mustApply(t, s, OpTaskDone, r)
		return len(dump(t, s))
	}
	// The same record, but for the digits of its totals.
	if a, b := size(1), size(1000); b > a+12 {
		t.Fatalf("a finished one-chunk job takes %d bytes, a 1000-chunk one %d", a, b)
	}
}

// score is a window's score for testJob's two renditions.
func score(window int, ssim float64, frames int) WindowScore {
	return WindowScore{Window: window, Renditions: []ScoreSum{{SSIM: ssim, MSE: 3.5, Frames: frames}, {SSIM: ssim - 1, MSE: 7, Frames: frames}}}
}

// An encode's quality window scores stay with the job, one per window (a
// chunk encoded again replaces its window's), are dropped by a new split,
// and leave with the job once the package has folded them into its
// report; scores that do not fit the job are refused.
func TestQualityScoresFollowTheEncodes(t *testing.T) {
	s := upgraded(t)
	j := testJob("j", false)
	runJobUntilSplit := func() {
		split := TaskID("j", TaskSplit, 0)
		mustApply(t, s, OpTaskAssign, AssignTask{TaskID: split, Node: "n1", Attempt: taskOf(s, split).Attempt + 1})
		mustApply(t, s, OpTaskDone, TaskResult{TaskID: split, Node: "n1", Attempt: taskOf(s, split).Attempt, Chunks: []Chunk{
			{Start: 0, Duration: 6, Frames: 150, Source: BlobRef{Hash: hash('b'), Size: 10}},
			{Start: 6, Duration: 6, Frames: 150, Source: BlobRef{Hash: hash('c'), Size: 10}},
		}})
	}
	mustApply(t, s, OpJobSubmit, SubmitJob{Job: j})
	runJobUntilSplit()
	enc := func(chunk int, scores ...WindowScore) TaskResult {
		id := TaskID("j", TaskEncode, chunk)
		mustApply(t, s, OpTaskAssign, AssignTask{TaskID: id, Node: "n1", Attempt: taskOf(s, id).Attempt + 1})
		return TaskResult{TaskID: id, Node: "n1", Attempt: taskOf(s, id).Attempt, Scores: scores,
			Outputs: []BlobRef{{Hash: hash(byte('d' + chunk)), Size: 10}, {Hash: hash(byte('f' + chunk)), Size: 5}}}
	}
	for _, bad := range [][]WindowScore{
		{score(3, 29, 30)},  // no such window
		{score(-1, 29, 30)}, // nor this
		{{Window: 0, Renditions: []ScoreSum{{SSIM: 1, Frames: 1}}}}, // one rendition of two
		{score(0, 29, -1)},
		{score(0, 1, 1), score(1, 1, 1), score(2, 1, 1), score(2, 1, 1)},
	} {
		r := enc(0, bad...)
		if err := apply(t, s, OpTaskDone, r); !errors.Is(err, ErrInvalid) {
			t.Fatalf("scores %+v: %v, want refused", bad, err)
		}
		mustApply(t, s, OpTaskFail, TaskFailure{TaskID: r.TaskID, Node: "n1", Attempt: r.Attempt, Reason: "x", Requeue: true})
	}
	mustApply(t, s, OpTaskDone, enc(0, score(0, 29, 30)))
	mustApply(t, s, OpTaskDone, enc(1, score(2, 28, 30), score(1, 27, 30)))
	if got := jobOf(t, s, "j").Scores; len(got) != 3 || got[0].Window != 0 || got[1].Window != 1 || got[1].Renditions[0].SSIM != 27 {
		t.Fatalf("scores %+v", got)
	}
	// Lost outputs: chunk 1 is encoded again, and scores anew.
	mustApply(t, s, OpJobRewind, JobRewind{JobID: "j", Chunks: []int{1}, Reason: "lost"})
	mustApply(t, s, OpTaskDone, enc(1, score(1, 26, 30)))
	if got := jobOf(t, s, "j").Scores; len(got) != 3 || got[1].Renditions[0].SSIM != 26 || got[2].Renditions[0].SSIM != 28 {
		t.Fatalf("scores after a second encode %+v", got)
	}
	// Lost chunk sources: a new split, new windows.
	mustApply(t, s, OpJobRewind, JobRewind{JobID: "j", Resplit: true, Reason: "lost"})
	runJobUntilSplit()
	if got := jobOf(t, s, "j").Scores; got != nil {
		t.Fatalf("scores after a new split %+v", got)
	}
	mustApply(t, s, OpTaskDone, enc(0, score(0, 29, 30)))
	mustApply(t, s, OpTaskDone, enc(1))
	pk := TaskID("j", TaskPackage, 0)
	mustApply(t, s, OpTaskAssign, AssignTask{TaskID: pk, Node: "n1", Attempt: 1})
	mustApply(t, s, OpTaskDone, packageResult(s, pk))
	if got := jobOf(t, s, "j"); got.State != JobDone || got.Scores != nil {
		t.Fatalf("done job %s keeps scores %+v", got.State, got.Scores)
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
		{"compact a running job", OpJobCompact, JobCompact{JobID: "j"}, ErrConflict},
		{"upgrade to a version this build cannot write", OpClusterUpgrade, ClusterUpgrade{Version: 99}, ErrConflict},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := dump(t, s)
			err := apply(t, s, tc.op, tc.body)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if after := dump(t, s); before != after {
				t.Fatalf("a refused command changed the state")
			}
		})
	}
}

func TestFailuresRetryThenFailTheJob(t *testing.T) {
	for _, v := range []int{LogV1, LogV2} {
		s := NewState()
		if v == LogV2 {
			s = upgraded(t)
		}
		mustApply(t, s, OpJobSubmit, SubmitJob{Job: testJob("j", false)})
		split := TaskID("j", TaskSplit, 0)
		for attempt := 1; attempt <= MaxTaskAttempts; attempt++ {
			mustApply(t, s, OpTaskAssign, AssignTask{TaskID: split, Node: "n1", Attempt: attempt})
			mustApply(t, s, OpTaskFail, TaskFailure{TaskID: split, Node: "n1", Attempt: attempt, Reason: "disk full"})
			if attempt < MaxTaskAttempts && taskOf(s, split).State != TaskPending {
				t.Fatalf("attempt %d: task should be pending again, is %s", attempt, taskOf(s, split).State)
			}
		}
		j := jobOf(t, s, "j")
		if j.State != JobFailed || !strings.Contains(j.Error, "disk full") || !strings.Contains(j.Error, "3 times") {
			t.Fatalf("v%d job: %s %q", v, j.State, j.Error)
		}
		if v == LogV2 && (s.tasks.Len() != 0 || !j.Compact()) {
			t.Fatalf("a failed job keeps %d tasks (compact %v)", s.tasks.Len(), j.Compact())
		}
	}
}

func TestPermanentFailureFailsAtOnce(t *testing.T) {
	s := NewState()
	mustApply(t, s, OpJobSubmit, SubmitJob{Job: testJob("j", true)})
	split := TaskID("j", TaskSplit, 0)
	mustApply(t, s, OpTaskAssign, AssignTask{TaskID: split, Node: "n1", Attempt: 1})
	mustApply(t, s, OpTaskFail, TaskFailure{TaskID: split, Node: "n1", Attempt: 1, Reason: "no video stream", Permanent: true})
	j := jobOf(t, s, "j")
	if j.State != JobFailed || j.Error != "no video stream" {
		t.Fatalf("job: %s %q", j.State, j.Error)
	}
	if taskOf(s, TaskID("j", TaskAudio, 0)).State != TaskFailed {
		t.Fatal("the job's other tasks must stop")
	}
	if got := Assignments(s, []Worker{{Name: "n1", Slots: 4}}); len(got) != 0 {
		t.Fatalf("nothing of a failed job may be scheduled, got %v", got)
	}
}

func TestCancelThenDelete(t *testing.T) {
	for _, v := range []int{LogV1, LogV2} {
		s := NewState()
		if v == LogV2 {
			s = upgraded(t)
		}
		mustApply(t, s, OpJobSubmit, SubmitJob{Job: testJob("j", false)})
		mustApply(t, s, OpJobCancel, JobRef{JobID: "j"})
		if jobOf(t, s, "j").State != JobCanceled {
			t.Fatal("not canceled")
		}
		if err := apply(t, s, OpJobCancel, JobRef{JobID: "j"}); !errors.Is(err, ErrConflict) {
			t.Fatalf("second cancel: %v", err)
		}
		mustApply(t, s, OpJobDelete, JobRef{JobID: "j"})
		if s.JobCount() != 0 || s.tasks.Len() != 0 || s.BlobCount() != 0 || len(s.Counts()) != 0 {
			t.Fatalf("delete left %d jobs, %d tasks, %d blobs", s.JobCount(), s.tasks.Len(), s.BlobCount())
		}
	}
}

func TestDecodeCommandRefusesGarbage(t *testing.T) {
	for _, in := range []string{"", "{", "null", `{"v":0,"op":"job.submit"}`, `{"v":99,"op":"job.submit"}`, `{"v":1}`, "\x00\xff",
		`{"v":1,"op":"batch","body":{"cmds":[]}}`, `{"v":1,"op":"job.forget","body":{}}`} {
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
	// Assigned tasks use up slots, unless their result is about to be committed.
	mustApply(t, s, OpTaskAssign, AssignTask{TaskID: TaskID("j", TaskSplit, 0), Node: "n1", Attempt: 1})
	if got := Assignments(s, []Worker{{Name: "n1", Slots: 1}}); len(got) != 0 {
		t.Fatalf("no free slot: %+v", got)
	}
	if got := assignments(s, []Worker{{Name: "n1", Slots: 1}}, map[string]bool{TaskID("j", TaskSplit, 0): true}); len(got) != 1 {
		t.Fatalf("the split's slot is freed by its queued result: %+v", got)
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

func TestRequeueDoesNotCountAsFailure(t *testing.T) {
	s := NewState()
	mustApply(t, s, OpJobSubmit, SubmitJob{Job: testJob("j", false)})
	split := TaskID("j", TaskSplit, 0)
	for attempt := 1; attempt <= MaxTaskAttempts+2; attempt++ {
		mustApply(t, s, OpTaskAssign, AssignTask{TaskID: split, Node: "n1", Attempt: attempt})
		mustApply(t, s, OpTaskFail, TaskFailure{TaskID: split, Node: "n1", Attempt: attempt, Reason: "node n1 died", Requeue: true})
	}
	if tk := taskOf(s, split); tk.State != TaskPending || tk.Failures != 0 || jobOf(t, s, "j").State.Terminal() {
		t.Fatalf("task %+v, job %s", tk, jobOf(t, s, "j").State)
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
	got, _ := s.Job("j")
	if got.State != JobTranscoding || len(got.Chunks[1].Outputs) != 0 || len(got.Chunks[0].Outputs) == 0 || !got.Audio.IsZero() {
		t.Fatalf("after rewind: %s %+v audio %v", got.State, got.Chunks, got.Audio)
	}
	if taskOf(s, pk) != nil {
		t.Fatal("the package task survived its inputs changing")
	}
	// The old package run's report is stale.
	err := apply(t, s, OpTaskDone, TaskResult{TaskID: pk, Node: "n1", Attempt: 1, Files: map[string]BlobRef{"m": {Hash: hash('9')}}, HLS: "m", DASH: "m"})
	if err == nil {
		t.Fatal("a report from before the rewind was accepted")
	}
	enc := TaskID("j", TaskEncode, 1)
	if tk := taskOf(s, enc); tk.State != TaskPending || tk.Attempt != 1 {
		t.Fatalf("encode task %+v", tk)
	}
	mustApply(t, s, OpTaskAssign, AssignTask{TaskID: enc, Node: "n2", Attempt: 2})
	mustApply(t, s, OpTaskDone, TaskResult{TaskID: enc, Node: "n2", Attempt: 2, Outputs: []BlobRef{{Hash: hash('7')}, {Hash: hash('6')}}})
	au := TaskID("j", TaskAudio, 0)
	mustApply(t, s, OpTaskAssign, AssignTask{TaskID: au, Node: "n2", Attempt: 2})
	mustApply(t, s, OpTaskDone, TaskResult{TaskID: au, Node: "n2", Attempt: 2, Audio: BlobRef{Hash: hash('5')}})
	if jobOf(t, s, "j").State != JobPackaging || taskOf(s, pk).Attempt != 1 {
		t.Fatalf("package again: %s %+v", jobOf(t, s, "j").State, taskOf(s, pk))
	}

	// Resplit: back to the source, with attempt numbers still rising.
	mustApply(t, s, OpJobRewind, JobRewind{JobID: "j", Resplit: true, Reason: "chunks lost"})
	if got := jobOf(t, s, "j"); got.State != JobQueued || s.ChunkCount("j") != 0 || taskOf(s, TaskID("j", TaskSplit, 0)).Attempt != 1 {
		t.Fatalf("after resplit: %s %d chunks, split %+v", got.State, s.ChunkCount("j"), taskOf(s, TaskID("j", TaskSplit, 0)))
	}
	if blobs := blobSet(s); len(blobs) != 2 || blobs["a"] != 1 || blobs["5"] != 1 {
		t.Fatalf("after a resplit the source and the audio are referenced, got %v", blobs)
	}
	// The state round-trips through a snapshot with its retired attempts.
	if a, b := dump(t, s), dump(t, roundTrip(t, s)); a != b {
		t.Fatalf("snapshot round trip differs:\n%s\n%s", a, b)
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
		Quality: []Quality{{SSIM: 0.99}}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("one report for two renditions: %v", err)
	}
	q := []Quality{{SSIM: 0.99, PSNR: 45, Frames: 300, SampledFrames: 75, SampledSeconds: 3}, {SSIM: 0.95, PSNR: 38, Frames: 300, SampledFrames: 75, SampledSeconds: 3}}
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

// TestManifestResultNeedsVersion2: before the cluster moved to log version
// 2, a package result with a manifest and no files is refused (an old node
// would refuse it the same way), afterwards it finishes the job.
func TestManifestResultNeedsVersion2(t *testing.T) {
	s := NewState()
	runJobUntilPackaging(t, s, testJob("j", false))
	pk := TaskID("j", TaskPackage, 0)
	mustApply(t, s, OpTaskAssign, AssignTask{TaskID: pk, Node: "n1", Attempt: 1})
	r := TaskResult{TaskID: pk, Node: "n1", Attempt: 1, HLS: "master.m3u8", DASH: "manifest.mpd", Manifest: BlobRef{Hash: hash('8'), Size: 5}}
	if err := apply(t, s, OpTaskDone, r); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a manifest result at version 1: %v", err)
	}
	mustApply(t, s, OpClusterUpgrade, ClusterUpgrade{Version: LogV2})
	if err := apply(t, s, OpClusterUpgrade, ClusterUpgrade{Version: LogV2}); !errors.Is(err, ErrConflict) {
		t.Fatalf("upgrading twice: %v", err)
	}
	mustApply(t, s, OpTaskDone, r)
	if j := jobOf(t, s, "j"); j.State != JobDone || !j.Compact() {
		t.Fatalf("job %+v", j)
	}
}

// TestCompactLegacyJobs: jobs finished under version 1 keep their chunks,
// tasks and file records until job.compact turns them into the compact
// shape; a done one needs its manifest and holders, the others none.
func TestCompactLegacyJobs(t *testing.T) {
	s := NewState()
	runJob(t, s, testJob("done", true))
	mustApply(t, s, OpJobSubmit, SubmitJob{Job: testJob("gone", false)})
	mustApply(t, s, OpJobCancel, JobRef{JobID: "gone"})
	mustApply(t, s, OpClusterUpgrade, ClusterUpgrade{Version: LogV2})
	var legacy []string
	s.LegacyJobs(func(j *Job) bool { legacy = append(legacy, j.ID); return true })
	slices.Sort(legacy)
	if fmt.Sprint(legacy) != "[done gone]" {
		t.Fatalf("legacy jobs %v", legacy)
	}
	if err := apply(t, s, OpJobCompact, JobCompact{JobID: "done"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("compact without a manifest: %v", err)
	}
	if err := apply(t, s, OpJobCompact, JobCompact{JobID: "gone", Manifest: BlobRef{Hash: hash('8')}, Holders: []string{"n1"}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a manifest for a job without outputs: %v", err)
	}
	mustApply(t, s, OpJobCompact, JobCompact{JobID: "done", Manifest: BlobRef{Hash: hash('8'), Size: 70}, Holders: []string{"n1", "n2"}})
	mustApply(t, s, OpJobCompact, JobCompact{JobID: "gone"})
	if err := apply(t, s, OpJobCompact, JobCompact{JobID: "gone"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("compacting twice: %v", err)
	}
	j := jobOf(t, s, "done")
	if !j.Compact() || j.Outputs != nil || j.Manifest.Hash != hash('8') || j.Sizes.Published != 2 || j.ChunkCount != 2 {
		t.Fatalf("compacted job %+v sizes %+v", j, j.Sizes)
	}
	if s.chunks.Len() != 0 || s.tasks.Len() != 0 || len(s.retired) != 0 {
		t.Fatalf("left %d chunks %d tasks", s.chunks.Len(), s.tasks.Len())
	}
	if blobs := blobSet(s); len(blobs) != 2 || blobs["8"] != 2 || blobs["a"] != 1 {
		t.Fatalf("blobs %v", blobs)
	}
	legacy = nil
	s.LegacyJobs(func(j *Job) bool { legacy = append(legacy, j.ID); return true })
	if len(legacy) != 0 {
		t.Fatalf("still legacy: %v", legacy)
	}
}

// TestBatch: the commands of a batch apply in order with a verdict each;
// one refused command does not stop the others.
func TestBatch(t *testing.T) {
	s := upgraded(t)
	var cmds []Command
	add := func(v int, op Op, body any) {
		c, err := NewCommand(v, op, t0, body)
		if err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	add(LogV2, OpJobSubmit, SubmitJob{Job: testJob("a", false)})
	add(LogV1, OpJobSubmit, SubmitJob{Job: testJob("a", false)}) // conflict
	add(LogV2, OpTaskAssign, AssignTask{TaskID: TaskID("a", TaskSplit, 0), Node: "n1", Attempt: 1})
	add(LogV2, OpBatch, Batch{})
	batch, err := NewCommand(LogV2, OpBatch, t0, Batch{Cmds: cmds})
	if err != nil {
		t.Fatal(err)
	}
	errs, err := s.ApplyBatch(batch)
	if err != nil || len(errs) != 4 {
		t.Fatalf("batch: %v %v", errs, err)
	}
	if errs[0] != nil || !errors.Is(errs[1], ErrConflict) || errs[2] != nil || !errors.Is(errs[3], ErrInvalid) {
		t.Fatalf("verdicts %v", errs)
	}
	if jobOf(t, s, "a").State != JobSplitting {
		t.Fatal("the assignment after a refused command did not apply")
	}
	if err := s.checkRefs(); err != nil {
		t.Fatal(err)
	}
}

// TestForget: job.forget removes finished jobs and what only they
// referenced, and passes over running ones.
func TestForget(t *testing.T) {
	s := upgraded(t)
	runJob(t, s, testJob("old", false))
	run := testJob("run", false)
	run.SourceBlob.Hash = hash('f')
	mustApply(t, s, OpJobSubmit, SubmitJob{Job: run})
	mustApply(t, s, OpJobForget, JobForget{JobIDs: []string{"old", "run", "nope"}})
	if s.JobCount() != 1 || jobOf(t, s, "run").State != JobQueued {
		t.Fatalf("%d jobs left", s.JobCount())
	}
	if blobs := blobSet(s); len(blobs) != 1 || blobs["f"] != 1 {
		t.Fatalf("blobs %v", blobs)
	}
	if err := apply(t, s, OpJobForget, JobForget{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty forget: %v", err)
	}
}

// TestRenditionCap: from log version 2 the state refuses a ladder longer
// than MaxRenditions (the API says so first).
func TestRenditionCap(t *testing.T) {
	j := testJob("j", false)
	for range MaxRenditions {
		j.Renditions = append(j.Renditions, Rendition{Name: "x", Width: 2, Height: 2})
	}
	if err := apply(t, NewState(), OpJobSubmit, SubmitJob{Job: j}); err != nil {
		t.Fatalf("version 1 knows no cap: %v", err)
	}
	if err := apply(t, upgraded(t), OpJobSubmit, SubmitJob{Job: j}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("version 2: %v", err)
	}
}

// TestListPages: pages run newest first, cursors walk every job once even
// while jobs are added, and a state filter pages the same way.
func TestListPages(t *testing.T) {
	s := upgraded(t)
	for i := range 23 {
		j := testJob(fmt.Sprintf("j%02d", i), false)
		if err := applyAt(t, s, OpJobSubmit, t0.Add(time.Duration(i/2)*time.Second), SubmitJob{Job: j}); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			mustApply(t, s, OpJobCancel, JobRef{JobID: j.ID})
		}
	}
	walk := func(q ListQuery, during func(page int)) []string {
		var ids []string
		for page := 0; ; page++ {
			p, err := s.List(q)
			if err != nil {
				t.Fatal(err)
			}
			for _, j := range p.Jobs {
				ids = append(ids, j.ID)
			}
			if p.Next == "" {
				return ids
			}
			if during != nil {
				during(page)
			}
			q.Cursor = p.Next
		}
	}
	all := walk(ListQuery{Limit: 5}, func(page int) {
		j := testJob(fmt.Sprintf("new%d", page), false)
		if err := applyAt(t, s, OpJobSubmit, t0.Add(time.Hour), SubmitJob{Job: j}); err != nil {
			t.Fatal(err)
		}
	})
	if len(all) != 23 || all[0] != "j22" || all[22] != "j00" {
		t.Fatalf("walked %d jobs: %v", len(all), all)
	}
	seen := map[string]bool{}
	for _, id := range all {
		if seen[id] {
			t.Fatalf("%s listed twice", id)
		}
		seen[id] = true
	}
	canceled := walk(ListQuery{Limit: 3, State: JobCanceled}, nil)
	if len(canceled) != 8 || canceled[0] != "j21" {
		t.Fatalf("canceled: %v", canceled)
	}
	if _, err := s.List(ListQuery{Limit: MaxPageSize + 1}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("limit too large: %v", err)
	}
	if _, err := s.List(ListQuery{Cursor: "../x"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad cursor: %v", err)
	}
	if _, err := s.List(ListQuery{State: "lost"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad state: %v", err)
	}
}

// TestRebirthDropsClaims: when a name joins again under a new raft ID (an
// empty data dir), every copy recorded under the name is forgotten (log
// version 2); until then, and for any other incarnation, LiveHolder says
// the name's copies do not count.
func TestRebirthDropsClaims(t *testing.T) {
	s := upgraded(t)
	mustApply(t, s, OpNodeJoin, NodeJoin{ID: "id-1", Name: "n1"})
	mustApply(t, s, OpNodeJoin, NodeJoin{ID: "id-2", Name: "n2"})
	runJob(t, s, testJob("j", false))
	mustApply(t, s, OpBlobAdd, BlobLocation{Blob: BlobRef{Hash: hash('8')}, Node: "n2"})
	if !s.LiveHolder("n1", "id-1") || s.LiveHolder("n1", "id-9") || s.LiveHolder("n1", "") || !s.LiveHolder("n7", "id-7") {
		t.Fatal("LiveHolder")
	}
	mustApply(t, s, OpNodeJoin, NodeJoin{ID: "id-1", Name: "n1"}) // the same incarnation again: nothing changes
	if b, _ := s.Blob(hash('a')); !b.Nodes.Has("n1") {
		t.Fatal("a rejoin of the same incarnation dropped its claims")
	}
	mustApply(t, s, OpNodeJoin, NodeJoin{ID: "id-9", Name: "n1"})
	if s.Incarnation("n1") != "id-9" || !s.LiveHolder("n1", "id-9") {
		t.Fatalf("incarnation %q", s.Incarnation("n1"))
	}
	s.Blobs("", func(b *BlobHolders) bool {
		if b.Nodes.Has("n1") {
			t.Errorf("%s still claimed by the reborn n1", b.Hash[:8])
		}
		return true
	})
	if m, _ := s.Blob(hash('8')); !m.Nodes.Has("n2") || len(m.Nodes) != 1 {
		t.Fatalf("other nodes' claims: %v", m.Nodes)
	}
}

// TestLostInputFailsAfterBoundedRequeues: a task that keeps finding its
// input gone is requeued MaxLostInput-1 times, then its job fails with the
// reason; requeues for a dead node do not count.
func TestLostInputFailsAfterBoundedRequeues(t *testing.T) {
	s := upgraded(t)
	mustApply(t, s, OpJobSubmit, SubmitJob{Job: testJob("j", false)})
	split := TaskID("j", TaskSplit, 0)
	attempt := 0
	assignFail := func(f TaskFailure) {
		attempt++
		mustApply(t, s, OpTaskAssign, AssignTask{TaskID: split, Node: "n1", Attempt: attempt})
		f.TaskID, f.Node, f.Attempt = split, "n1", attempt
		mustApply(t, s, OpTaskFail, f)
	}
	for range 3 {
		assignFail(TaskFailure{Reason: "node n1 is gone", Requeue: true})
	}
	for i := 1; i < MaxLostInput; i++ {
		assignFail(TaskFailure{Reason: "blob: not found", Requeue: true, Lost: true})
		if jobOf(t, s, "j").State.Terminal() {
			t.Fatalf("failed after %d lost inputs", i)
		}
	}
	assignFail(TaskFailure{Reason: "blob: not found", Requeue: true, Lost: true})
	if j := jobOf(t, s, "j"); j.State != JobFailed || !strings.Contains(j.Error, "lost") {
		t.Fatalf("job %s %q", j.State, j.Error)
	}
}

// TestSubmitRecordsHolders: job.submit names the nodes its upload was
// copied to (an entry without them records the origin alone), and a
// malformed list is refused whole.
func TestSubmitRecordsHolders(t *testing.T) {
	s := upgraded(t)
	j := testJob("j", false)
	for _, bad := range [][]string{{"n2", ""}, slices.Repeat([]string{"n2"}, MaxSubmitHolders+1)} {
		if err := apply(t, s, OpJobSubmit, SubmitJob{Job: j, Holders: bad}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("holders %q: %v", bad, err)
		}
		if _, ok := s.JobRecord("j"); ok {
			t.Fatal("a refused submit left the job")
		}
	}
	mustApply(t, s, OpJobSubmit, SubmitJob{Job: j, Holders: []string{"n3", "n2", "n1", "n2"}})
	b, ok := s.Blob(j.SourceBlob.Hash)
	if !ok || len(b.Nodes) != 3 || !b.Nodes.Has("n1") || !b.Nodes.Has("n2") || !b.Nodes.Has("n3") {
		t.Fatalf("holders of the source: %+v", b)
	}
	if back := roundTrip(t, s); dump(t, back) != dump(t, s) {
		t.Fatal("the holders do not survive a snapshot")
	}
	// The first log format takes the field too.
	s1 := NewState()
	j2 := testJob("k", false)
	j2.SourceBlob.Hash = hash('b')
	mustApply(t, s1, OpJobSubmit, SubmitJob{Job: j2, Holders: []string{"n2"}})
	mustApply(t, s1, OpJobSubmit, SubmitJob{Job: testJob("j", false)})
	if b, _ := s1.Blob(hash('b')); len(b.Nodes) != 2 {
		t.Fatalf("v1 holders: %v", b.Nodes)
	}
	if b, _ := s1.Blob(hash('a')); len(b.Nodes) != 1 || !b.Nodes.Has("n1") {
		t.Fatalf("a submit without holders: %v", b.Nodes)
	}
}

// TestResultRecordsPulledCopies: from log version 2 a task's result names
// the inputs its node pulled, and the same entry records that node as
// their holder: no blob.add of their own (issue 19). A malformed one
// refuses the whole result, which then changes nothing.
func TestResultRecordsPulledCopies(t *testing.T) {
	s := upgraded(t)
	j := testJob("j", false)
	mustApply(t, s, OpJobSubmit, SubmitJob{Job: j})
	split := TaskID("j", TaskSplit, 0)
	mustApply(t, s, OpTaskAssign, AssignTask{TaskID: split, Node: "n1", Term: 1, Attempt: 1})
	src := BlobRef{Hash: hash('b'), Size: 10}
	mustApply(t, s, OpTaskDone, TaskResult{TaskID: split, Node: "n1", Attempt: 1, Chunks: []Chunk{
		{Start: 0, Duration: 6, Frames: 150, Source: src},
		{Start: 6, Duration: 6, Frames: 150, Source: BlobRef{Hash: hash('c'), Size: 10}},
	}})
	enc := TaskID("j", TaskEncode, 0)
	mustApply(t, s, OpTaskAssign, AssignTask{TaskID: enc, Node: "n2", Term: 1, Attempt: 1})
	holders := func(h string) []string {
		b, ok := s.Blob(h)
		if !ok {
			return nil
		}
		return slices.Clone(b.Nodes)
	}
	if got := holders(src.Hash); !slices.Equal(got, []string{"n1"}) {
		t.Fatalf("chunk source held by %v before the encode, want [n1]", got)
	}
	res := TaskResult{TaskID: enc, Node: "n2", Attempt: 1,
		Outputs: []BlobRef{{Hash: hash('d'), Size: 5}, {Hash: hash('e'), Size: 5}}, Pulled: []BlobRef{src}}

	bad := res
	bad.Pulled = []BlobRef{{Hash: "not-a-hash"}}
	before := dump(t, s)
	if err := apply(t, s, OpTaskDone, bad); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a malformed pulled blob: %v, want ErrInvalid", err)
	}
	if dump(t, s) != before {
		t.Fatal("a refused result changed the state")
	}

	mustApply(t, s, OpTaskDone, res)
	if got := holders(src.Hash); !slices.Equal(got, []string{"n1", "n2"}) {
		t.Fatalf("chunk source held by %v after the encode's result, want [n1 n2]", got)
	}
	for _, o := range res.Outputs {
		if got := holders(o.Hash); !slices.Equal(got, []string{"n2"}) {
			t.Fatalf("output %s held by %v, want [n2]", o.Hash[:1], got)
		}
	}
	// The copy survives a snapshot like any other record.
	if b, ok := roundTrip(t, s).Blob(src.Hash); !ok || !b.Nodes.Has("n2") {
		t.Fatal("the pulled copy did not survive a snapshot")
	}
}
