package cluster

import (
	"testing"
	"time"
)

// fuzzState is a state in the middle of things: a job done under log
// version 1 and not compacted yet, then (at version 2) one job split into
// two chunks with chunk 0 assigned to n1 and the audio pending, a second
// job canceled, a third failed, a node mapping and a retired task, and (at
// version 3) a job still ingesting its URL source.
// Commands are applied to a fresh copy of it.
func fuzzState(f *testing.F) *State {
	f.Helper()
	s := NewState()
	old := testJob("j0", false)
	old.SourceBlob.Hash = hash('0')
	runJob(f, s, old)
	cmds := []struct {
		op   Op
		body any
	}{
		{OpClusterUpgrade, ClusterUpgrade{Version: LogV2}},
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
		{OpClusterUpgrade, ClusterUpgrade{Version: LogV3}},
		{OpJobIngest, IngestJob{Job: Job{ID: "j5", Origin: "n1", SourceURL: "http://media.example/a.mp4"}}},
	}
	for _, c := range cmds {
		mustApply(f, s, c.op, c.body)
	}
	s.retired[TaskID("j1", TaskPackage, 0)] = 2
	return s
}

// FuzzApply: any bytes in the raft log go through DecodeCommand and
// State.Apply on a state that already holds jobs without a panic; a
// refused command changes nothing; after any command the state still
// encodes to JSON (snapshots) and decodes to the same state.
func FuzzApply(f *testing.F) {
	base := fuzzState(f)
	baseDump := dump(f, base)
	enc := func(op Op, body any) []byte {
		b, err := EncodeCommandV(LogV2, op, t0.Add(time.Minute), body)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	j3 := testJob("j3", true)
	j5 := testJob("j5", false)
	j5.SourceURL = "http://media.example/a.mp4"
	for _, seed := range [][]byte{
		enc(OpJobSubmit, SubmitJob{Job: j5}),
		enc(OpJobIngestFail, JobRef{JobID: "j5", Reason: "404"}),
		enc(OpJobIngestTake, IngestTake{JobID: "j5", From: "n1", To: "n2"}),
		enc(OpJobIngestFail, IngestFail{JobID: "j5", Reason: "gone", Node: "n1"}),
		enc(OpJobIngest, IngestJob{Job: Job{ID: "j6", Origin: "n2", SourceURL: "https://x/"}}),
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
		enc(OpJobCompact, JobCompact{JobID: "j0", Manifest: BlobRef{Hash: hash('8'), Size: 9}, Holders: []string{"n1"}}),
		enc(OpJobCompact, JobCompact{JobID: "j0"}),
		enc(OpJobCompact, JobCompact{JobID: "j2"}),
		enc(OpJobForget, JobForget{JobIDs: []string{"j0", "j2", "j1"}}),
		enc(OpTaskDone, TaskResult{TaskID: TaskID("j1", TaskEncode, 0), Node: "n1", Attempt: 1,
			Outputs: []BlobRef{{Hash: hash('d'), Size: 5}, {Hash: hash('e'), Size: 5}}, Pulled: []BlobRef{{Hash: hash('b')}}}),
		enc(OpBatch, Batch{Cmds: []Command{
			{V: 2, Op: OpJobCancel, At: t0, Body: []byte(`{"job_id":"j1"}`)},
			{V: 2, Op: OpJobDelete, At: t0, Body: []byte(`{"job_id":"j1"}`)},
			{V: 1, Op: OpBatch, At: t0, Body: []byte(`{}`)},
		}}),
		enc(OpClusterUpgrade, ClusterUpgrade{Version: 3}),
		[]byte(`{"v":2,"op":"batch","body":{"cmds":[{"v":9,"op":"job.cancel","body":{"job_id":"j1"}}]}}`),
		[]byte(`not json`),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeCommand(data)
		if err != nil {
			return
		}
		s := roundTrip(t, base)
		var applyErr error
		if c.Op == OpBatch {
			_, applyErr = s.ApplyBatch(c)
		} else {
			applyErr = s.Apply(c)
		}
		if err := s.checkRefs(); err != nil {
			t.Fatalf("after %s: %v", c.Op, err)
		}
		after := dump(t, s)
		if applyErr != nil && after != baseDump {
			t.Fatalf("refused %s (%v) changed the state:\n%s\n%s", c.Op, applyErr, baseDump, after)
		}
		if again := dump(t, roundTrip(t, s)); again != after {
			t.Fatalf("state after %s changed on a snapshot round trip:\n%s\n%s", c.Op, after, again)
		}
		// What the FSM and the nodes read from a state must not panic.
		if _, err := s.List(ListQuery{Limit: MaxPageSize}); err != nil {
			t.Fatal(err)
		}
		s.ActiveJobs(func(j *Job) bool { _ = s.Chunks(j.ID); return true })
		s.jobs.Ascend(func(r *Job) bool {
			if j, ok := s.Job(r.ID); !ok || j.ID != r.ID {
				t.Fatalf("job %q reads back as %+v", r.ID, j)
			}
			return true
		})
	})
}
