package cluster

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestIngestThenSubmit(t *testing.T) {
	s := NewState()
	rec := IngestJob{Job: Job{ID: "u1", Name: "clip.mp4", Origin: "n1", SourceURL: "http://media.example/clip.mp4", Priority: PriorityHigh}}
	// Not before every server reads version 3.
	if err := apply(t, s, OpJobIngest, rec); !errors.Is(err, ErrConflict) {
		t.Fatalf("job.ingest at version 1: %v", err)
	}
	mustApply(t, s, OpClusterUpgrade, ClusterUpgrade{Version: LogV3})
	mustApply(t, s, OpJobIngest, rec)
	if err := apply(t, s, OpJobIngest, rec); !errors.Is(err, ErrConflict) {
		t.Fatalf("second job.ingest: %v", err)
	}
	if j := jobOf(t, s, "u1"); j.State != JobIngesting || j.SourceURL == "" || !j.SourceBlob.IsZero() || j.Priority != PriorityHigh {
		t.Fatalf("ingesting record: %+v", j)
	}
	if n := taskCount(s, "u1"); n != 0 {
		t.Fatalf("an ingesting job has %d tasks", n)
	}
	s = roundTrip(t, s)
	// Only the fetch's own outcome replaces it: same origin and URL.
	j := testJob("u1", true)
	j.SourceURL = "http://other.example/clip.mp4"
	if err := applyAt(t, s, OpJobSubmit, t0.Add(time.Minute), SubmitJob{Job: j}); !errors.Is(err, ErrConflict) {
		t.Fatalf("submit over an ingest of another URL: %v", err)
	}
	j.SourceURL = rec.Job.SourceURL
	if err := applyAt(t, s, OpJobSubmit, t0.Add(time.Minute), SubmitJob{Job: j}); err != nil {
		t.Fatal(err)
	}
	got := jobOf(t, s, "u1")
	if got.State != JobQueued || !got.CreatedAt.Equal(t0) || got.SourceBlob.IsZero() || taskCount(s, "u1") != 2 {
		t.Fatalf("after the fetch: %+v, %d tasks", got, taskCount(s, "u1"))
	}
	if err := apply(t, s, OpJobIngestFail, JobRef{JobID: "u1", Reason: "x"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("ingest_fail of a queued job: %v", err)
	}
	if err := apply(t, s, OpJobSubmit, SubmitJob{Job: j}); !errors.Is(err, ErrConflict) {
		t.Fatalf("second submit: %v", err)
	}
}

func TestIngestFail(t *testing.T) {
	s := NewState()
	mustApply(t, s, OpClusterUpgrade, ClusterUpgrade{Version: LogV3})
	mustApply(t, s, OpJobIngest, IngestJob{Job: Job{ID: "u2", Origin: "n1", SourceURL: "http://x/", CallbackURL: "http://hook/"}})
	mustApply(t, s, OpJobIngestFail, JobRef{JobID: "u2", Reason: "the source answered 404 Not Found"})
	j := jobOf(t, s, "u2")
	if j.State != JobFailed || j.Error != "the source answered 404 Not Found" || j.Webhook == nil || !j.Compact() {
		t.Fatalf("failed ingest: %+v", j)
	}
	j2 := testJob("u2", false)
	j2.SourceURL = "http://x/"
	if err := apply(t, s, OpJobSubmit, SubmitJob{Job: j2}); !errors.Is(err, ErrConflict) {
		t.Fatalf("submit after the ingest failed: %v", err)
	}
	// Canceling an ingesting job works like any other.
	mustApply(t, s, OpJobIngest, IngestJob{Job: Job{ID: "u3", Origin: "n1", SourceURL: "http://x/"}})
	mustApply(t, s, OpJobCancel, JobRef{JobID: "u3"})
	if j := jobOf(t, s, "u3"); j.State != JobCanceled {
		t.Fatalf("canceled ingest: %s", j.State)
	}
	// A version-2 entry cannot carry the new op.
	c, _ := NewCommand(LogV2, OpJobIngest, t0, IngestJob{})
	c.V = LogV2
	if _, err := DecodeCommand(mustJSON(t, c)); err == nil {
		t.Fatal("job.ingest at version 2 decoded")
	}
}

// TestIngestTake: the leader takes the fetch of a gone node's ingest; from
// then on only the new node's outcome counts (the old one's submit and
// failure are conflicts), and the first of two takes wins.
func TestIngestTake(t *testing.T) {
	s := NewState()
	mustApply(t, s, OpClusterUpgrade, ClusterUpgrade{Version: LogV3})
	opts := json.RawMessage(`{"chunk_seconds":3}`)
	mustApply(t, s, OpJobIngest, IngestJob{Job: Job{ID: "u4", Origin: "n1", SourceURL: "s3://in/a.mp4", IngestOptions: opts}})
	if err := apply(t, s, OpJobIngestTake, IngestTake{JobID: "u4", From: "n3", To: "n2"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("take from a node that does not fetch it: %v", err)
	}
	if err := apply(t, s, OpJobIngestTake, IngestTake{JobID: "u4", From: "n1"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("take to no node: %v", err)
	}
	if err := apply(t, s, OpJobIngestTake, IngestTake{JobID: "nope", From: "n1", To: "n2"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("take of no job: %v", err)
	}
	mustApply(t, s, OpJobIngestTake, IngestTake{JobID: "u4", From: "n1", To: "n2"})
	if err := apply(t, s, OpJobIngestTake, IngestTake{JobID: "u4", From: "n1", To: "n3"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("second take: %v", err)
	}
	s = roundTrip(t, s)
	if j := jobOf(t, s, "u4"); j.Origin != "n2" || j.State != JobIngesting || string(j.IngestOptions) != string(opts) {
		t.Fatalf("taken record: %+v", j)
	}
	// The old node's outcomes no longer count.
	if err := apply(t, s, OpJobIngestFail, IngestFail{JobID: "u4", Reason: "x", Node: "n1"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("failure from the node it was taken from: %v", err)
	}
	j := testJob("u4", false)
	j.Origin, j.SourceURL = "n1", "s3://in/a.mp4"
	if err := apply(t, s, OpJobSubmit, SubmitJob{Job: j}); !errors.Is(err, ErrConflict) {
		t.Fatalf("submit from the node it was taken from: %v", err)
	}
	j.Origin = "n2"
	mustApply(t, s, OpJobSubmit, SubmitJob{Job: j})
	if got := jobOf(t, s, "u4"); got.State != JobQueued || got.IngestOptions != nil {
		t.Fatalf("after the new node's fetch: %s, options %s", got.State, got.IngestOptions)
	}
	// A failure from the fetching node ends the job and drops its options.
	mustApply(t, s, OpJobIngest, IngestJob{Job: Job{ID: "u5", Origin: "n1", SourceURL: "http://x/", IngestOptions: opts}})
	mustApply(t, s, OpJobIngestFail, IngestFail{JobID: "u5", Reason: "404", Node: "n1"})
	if got := jobOf(t, s, "u5"); got.State != JobFailed || got.IngestOptions != nil {
		t.Fatalf("failed ingest: %s, options %s", got.State, got.IngestOptions)
	}
	// A refused watched object is one entry: recorded, and failed.
	mustApply(t, s, OpJobIngest, IngestJob{Job: Job{ID: "u7", Origin: "n1", SourceURL: "s3://in/bad.mp4"}, Refused: "options: chunk_seconds 1 outside [2, 60]"})
	if got := jobOf(t, s, "u7"); got.State != JobFailed || got.Error != "options: chunk_seconds 1 outside [2, 60]" || !got.Compact() {
		t.Fatalf("refused ingest: %+v", got)
	}
	big := json.RawMessage(`"` + strings.Repeat("x", MaxIngestOptions) + `"`)
	if err := apply(t, s, OpJobIngest, IngestJob{Job: Job{ID: "u6", Origin: "n1", SourceURL: "http://x/", IngestOptions: big}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("options over the bound: %v", err)
	}
}

func taskCount(s *State, jobID string) int {
	n := 0
	s.JobTasks(jobID, func(*Task) bool { n++; return true })
	return n
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
