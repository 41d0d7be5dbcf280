package cluster

import (
	"encoding/json"
	"errors"
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
