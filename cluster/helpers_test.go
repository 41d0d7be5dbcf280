package cluster

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// Helpers shared by this package's tests.

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func testJob(id string, audio bool) Job {
	j := Job{
		ID: id, Name: "clip.mp4", Origin: "n1",
		SourceBlob: BlobRef{Hash: strings.Repeat("a", 64), Size: 100},
		Source:     Probe{Duration: 12, Video: &VideoStream{Width: 640, Height: 360, FrameRate: 25, Duration: 12}},
		Renditions: []Rendition{{Name: "360p", Width: 640, Height: 360}, {Name: "240p", Width: 426, Height: 240}},
	}
	if audio {
		j.Source.Audio = &AudioStream{Codec: "aac", Channels: 2}
	}
	return j
}

func hash(c byte) string { return strings.Repeat(string(c), 64) }

// apply is a test helper: encode and apply one command at log version 1
// (the version of the state, if newer), then check that the blob
// references still add up.
func apply(t testing.TB, s *State, op Op, body any) error {
	t.Helper()
	return applyAt(t, s, op, t0, body)
}

func applyAt(t testing.TB, s *State, op Op, at time.Time, body any) error {
	t.Helper()
	data, err := EncodeCommandV(s.Version(), op, at, body)
	if err != nil {
		t.Fatal(err)
	}
	c, err := DecodeCommand(data)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Apply(c)
	if rerr := s.checkRefs(); rerr != nil {
		t.Fatalf("after %s: %v", op, rerr)
	}
	return err
}

func mustApply(t testing.TB, s *State, op Op, body any) {
	t.Helper()
	if err := apply(t, s, op, body); err != nil {
		t.Fatalf("%s: %v", op, err)
	}
}

// jobOf returns a job's record or fails.
func jobOf(t testing.TB, s *State, id string) *Job {
	t.Helper()
	j, ok := s.JobRecord(id)
	if !ok {
		t.Fatalf("no job %s", id)
	}
	return j
}

// taskOf returns a task's record or nil.
func taskOf(s *State, id string) *Task {
	tk, _ := s.Task(id)
	return tk
}

// dump is the state's persisted facts as JSON lines (the snapshot format
// without its compression): two states with the same dump are the same.
func dump(t testing.TB, s *State) string {
	t.Helper()
	var b bytes.Buffer
	if err := s.freeze().writeLines(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// roundTrip writes a snapshot of s and reads it back.
func roundTrip(t testing.TB, s *State) *State {
	t.Helper()
	var b bytes.Buffer
	if _, err := s.freeze().WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	back, err := ReadState(&b)
	if err != nil {
		t.Fatal(err)
	}
	if err := back.checkRefs(); err != nil {
		t.Fatal(err)
	}
	return back
}

// upgraded returns a new state that writes log version 2.
func upgraded(t testing.TB) *State {
	t.Helper()
	s := NewState()
	mustApply(t, s, OpClusterUpgrade, ClusterUpgrade{Version: LogV2})
	return s
}

// runJob drives one job through its whole pipeline on node n1; the
// package result takes the shape of the state's log version.
func runJob(t testing.TB, s *State, j Job) {
	t.Helper()
	runJobUntilPackaging(t, s, j)
	pk := TaskID(j.ID, TaskPackage, 0)
	mustApply(t, s, OpTaskAssign, AssignTask{TaskID: pk, Node: "n1", Term: 1, Attempt: 1})
	mustApply(t, s, OpTaskDone, packageResult(s, pk))
}

// packageResult is a package task's result as its node would send it at
// the state's log version.
func packageResult(s *State, taskID string) TaskResult {
	r := TaskResult{TaskID: taskID, Node: "n1", Attempt: 1, HLS: "master.m3u8", DASH: "manifest.mpd"}
	if s.Version() >= LogV2 {
		r.Manifest, r.Published = BlobRef{Hash: hash('8'), Size: 50}, 2
	} else {
		r.Files = map[string]BlobRef{"master.m3u8": {Hash: hash('2'), Size: 1}, "manifest.mpd": {Hash: hash('3'), Size: 1}}
	}
	return r
}

// runJobUntilPackaging drives a job up to its package task: two chunks
// (sources b and c, outputs d and e) and the audio (1).
func runJobUntilPackaging(t testing.TB, s *State, j Job) {
	t.Helper()
	mustApply(t, s, OpJobSubmit, SubmitJob{Job: j})
	split := TaskID(j.ID, TaskSplit, 0)
	mustApply(t, s, OpTaskAssign, AssignTask{TaskID: split, Node: "n1", Term: 1, Attempt: 1})
	if got := jobOf(t, s, j.ID).State; got != JobSplitting {
		t.Fatalf("after split assign: state %s", got)
	}
	mustApply(t, s, OpTaskDone, TaskResult{TaskID: split, Node: "n1", Attempt: 1, Chunks: []Chunk{
		{Start: 0, Duration: 6, Frames: 150, Source: BlobRef{Hash: hash('b'), Size: 10}},
		{Start: 6, Duration: 6, Frames: 150, Source: BlobRef{Hash: hash('c'), Size: 10}},
	}})
	if got := jobOf(t, s, j.ID).State; got != JobTranscoding {
		t.Fatalf("after split: state %s", got)
	}
	for i := range 2 {
		id := TaskID(j.ID, TaskEncode, i)
		mustApply(t, s, OpTaskAssign, AssignTask{TaskID: id, Node: "n1", Term: 1, Attempt: 1})
		mustApply(t, s, OpTaskDone, TaskResult{TaskID: id, Node: "n1", Attempt: 1,
			Outputs: []BlobRef{{Hash: hash('d'), Size: 5}, {Hash: hash('e'), Size: 5}}})
	}
	if j.Source.Audio != nil {
		if got := jobOf(t, s, j.ID).State; got != JobTranscoding {
			t.Fatalf("package must wait for audio; state %s", got)
		}
		id := TaskID(j.ID, TaskAudio, 0)
		mustApply(t, s, OpTaskAssign, AssignTask{TaskID: id, Node: "n1", Term: 1, Attempt: 1})
		mustApply(t, s, OpTaskDone, TaskResult{TaskID: id, Node: "n1", Attempt: 1, Audio: BlobRef{Hash: hash('1'), Size: 3}})
	}
	if got := jobOf(t, s, j.ID).State; got != JobPackaging {
		t.Fatalf("after encodes: state %s", got)
	}
}

// blobSet lists the blob records as hash prefix → holders.
func blobSet(s *State) map[string]int {
	out := map[string]int{}
	s.Blobs("", func(b *BlobHolders) bool {
		out[b.Hash[:1]] = len(b.Nodes)
		return true
	})
	return out
}
