package cluster

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// fuzzState is a state in the middle of things: one job split into two
// chunks with chunk 0 assigned to n1 and the audio pending, a second job
// failed, a node mapping and a retired task. Commands are applied to a
// fresh copy of it.
func fuzzState(f *testing.F) *State {
	f.Helper()
	s := NewState()
	cmds := []struct {
		op   Op
		body any
	}{
		{OpNodeJoin, NodeJoin{ID: "id-1", Name: "n1"}},
		{OpJobSubmit, SubmitJob{Job: testJob("j1", true)}},
		{OpTaskAssign, AssignTask{TaskID: TaskID("j1", TaskSplit, 0), Node: "n1", Term: 1, Attempt: 1}},
		{OpTaskDone, TaskResult{TaskID: TaskID("j1", TaskSplit, 0), Node: "n1", Attempt: 1, Chunks: []Chunk{
			{Start: 0, Duration: 6, Frames: 150, Source: BlobRef{Hash: hash('b'), Size: 10}},
			{Start: 6, Duration: 6, Frames: 150, Source: BlobRef{Hash: hash('c'), Size: 10}},
		}}},
		{OpTaskAssign, AssignTask{TaskID: TaskID("j1", TaskEncode, 0), Node: "n1", Term: 1, Attempt: 1}},
		{OpJobSubmit, SubmitJob{Job: func() Job {
			j := testJob("j2", false)
			j.TTL, j.CallbackURL, j.Priority, j.Submitter = time.Second, "http://127.0.0.1:9/", PriorityLow, "client:x"
			return j
		}()}},
		{OpJobCancel, JobRef{JobID: "j2"}},
		{OpJobSubmit, SubmitJob{Job: func() Job {
			j := testJob("j4", false)
			j.SourceBlob.Hash, j.CallbackURL = hash('4'), "http://127.0.0.1:9/"
			return j
		}()}},
		{OpTaskAssign, AssignTask{TaskID: TaskID("j4", TaskSplit, 0), Node: "n1", Term: 1, Attempt: 1}},
		{OpTaskFail, TaskFailure{TaskID: TaskID("j4", TaskSplit, 0), Node: "n1", Attempt: 1, Reason: "bad", Permanent: true}},
	}
	for _, c := range cmds {
		data, err := EncodeCommand(c.op, t0, c.body)
		if err != nil {
			f.Fatal(err)
		}
		cmd, err := DecodeCommand(data)
		if err != nil {
			f.Fatal(err)
		}
		if err := s.Apply(cmd); err != nil {
			f.Fatalf("%s: %v", c.op, err)
		}
	}
	s.Retired = map[string]int{TaskID("j1", TaskPackage, 0): 2}
	return s
}

// FuzzApply: any bytes in the raft log go through DecodeCommand and
// State.Apply on a state that already holds jobs without a panic; a
// refused command changes nothing; after any command the state still
// encodes to JSON (snapshots) and decodes to the same state.
func FuzzApply(f *testing.F) {
	base := fuzzState(f)
	baseJSON, err := json.Marshal(base)
	if err != nil {
		f.Fatal(err)
	}
	enc := func(op Op, body any) []byte {
		b, err := EncodeCommand(op, t0.Add(time.Minute), body)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	j3 := testJob("j3", true)
	for _, seed := range [][]byte{
		enc(OpJobSubmit, SubmitJob{Job: j3}),
		enc(OpJobSubmit, SubmitJob{Job: testJob("j1", false)}),
		enc(OpJobCancel, JobRef{JobID: "j1", Reason: "user"}),
		enc(OpJobDelete, JobRef{JobID: "j2"}),
		enc(OpJobDelete, JobRef{JobID: "j1"}),
		enc(OpTaskAssign, AssignTask{TaskID: TaskID("j1", TaskAudio, 0), Node: "n2", Term: 2, Attempt: 1}),
		enc(OpTaskAssign, AssignTask{TaskID: TaskID("j1", TaskEncode, 1), Node: "n1", Term: 2, Attempt: 1}),
		enc(OpTaskDone, TaskResult{TaskID: TaskID("j1", TaskEncode, 0), Node: "n1", Attempt: 1,
			Outputs: []BlobRef{{Hash: hash('d'), Size: 5}, {Hash: hash('e'), Size: 5}}}),
		enc(OpTaskDone, TaskResult{TaskID: TaskID("j1", TaskEncode, 0), Node: "n1", Attempt: 1, Outputs: []BlobRef{{Hash: hash('d')}}}),
		enc(OpTaskDone, TaskResult{TaskID: TaskID("j1", TaskPackage, 0), Node: "n1", Attempt: 1, HLS: "master.m3u8", DASH: "manifest.mpd",
			Files: map[string]BlobRef{"master.m3u8": {Hash: hash('9'), Size: 1}}}),
		enc(OpTaskFail, TaskFailure{TaskID: TaskID("j1", TaskEncode, 0), Node: "n1", Attempt: 1, Reason: "boom"}),
		enc(OpTaskFail, TaskFailure{TaskID: TaskID("j1", TaskEncode, 0), Node: "n1", Attempt: 1, Reason: "bad media", Permanent: true}),
		enc(OpTaskFail, TaskFailure{TaskID: TaskID("j1", TaskEncode, 0), Node: "n1", Attempt: 1, Requeue: true}),
		enc(OpBlobAdd, BlobLocation{Blob: BlobRef{Hash: hash('b'), Size: 10}, Node: "n2"}),
		enc(OpBlobRemove, BlobLocation{Blob: BlobRef{Hash: hash('b')}, Node: "n1"}),
		enc(OpNodeJoin, NodeJoin{ID: "id-2", Name: "n1"}),
		enc(OpJobRewind, JobRewind{JobID: "j1", Chunks: []int{0, 1, -1, 99}, Audio: true, Reason: "lost"}),
		enc(OpJobRewind, JobRewind{JobID: "j1", Resplit: true, Reason: "lost"}),
		enc(OpJobExpire, JobRef{JobID: "j2"}),
		enc(OpJobExpire, JobRef{JobID: "j1"}),
		enc(OpJobNotify, JobNotify{JobID: "j4", Attempt: 1, Error: "503"}),
		enc(OpJobNotify, JobNotify{JobID: "j4", Attempt: 1, Delivered: true}),
		enc(OpJobNotify, JobNotify{JobID: "j4", Attempt: 2, GiveUp: true}),
		enc(OpJobNotify, JobNotify{JobID: "j1", Attempt: 1, Delivered: true}),
		[]byte(`{"v":1,"op":"job.submit","at":"2026-01-01T00:00:00Z","body":{"job":{"id":"j9","source_blob":{"hash":"` + hash('7') + `"},"origin":"n","renditions":[{}],"ttl":-5,"priority":"urgent","expired_at":"2026-01-01T00:00:00Z","webhook":{"state":"pending"},"freed_bytes":7}}}`),
		[]byte(`{"v":1,"op":"job.submit","at":"9999-12-31T23:59:59-23:59","body":{"job":{"id":"x","source_blob":{"hash":"h"},"origin":"n","renditions":[{}]}}}`),
		[]byte(`{"v":1,"op":"task.done","at":"2026-01-01T00:00:00Z","body":{"task_id":"j1/split","chunks":[{}]}}`),
		[]byte(`{"v":2,"op":"job.submit","body":{}}`),
		[]byte(`{"v":1,"op":"job.frobnicate","body":{}}`),
		[]byte(`{"v":1,"op":"job.submit","body":null}`),
		[]byte(`{"v":1,"op":"job.rewind","body":{"job_id":"j1","chunks":[9223372036854775807]}}`),
		[]byte(`not json`),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeCommand(data)
		if err != nil {
			return
		}
		s := base.Clone()
		applyErr := s.Apply(c)
		after, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("state after %s does not encode: %v", c.Op, err)
		}
		if applyErr != nil && !bytes.Equal(after, baseJSON) {
			t.Fatalf("refused %s (%v) changed the state:\n%s\n%s", c.Op, applyErr, baseJSON, after)
		}
		back := NewState()
		if err := json.Unmarshal(after, back); err != nil {
			t.Fatalf("state after %s does not decode: %v", c.Op, err)
		}
		again, err := json.Marshal(back)
		if err != nil || !bytes.Equal(again, after) {
			t.Fatalf("state after %s changed on a round trip (%v):\n%s\n%s", c.Op, err, after, again)
		}
		// What the FSM and the nodes read from a state must not panic.
		_ = s.Referenced()
		_ = s.Durable()
		_ = s.JobsByAge()
		_ = s.Clone()
		for id := range s.Jobs {
			if j, ok := s.Job(id); !ok || j.ID != id {
				t.Fatalf("job %q reads back as %+v", id, j)
			}
		}
	})
}
