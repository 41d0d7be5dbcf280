package cluster

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func publishJob(id string) Job {
	j := testJob(id, false)
	j.CallbackURL = "http://hooks.example/x"
	j.Publish = &PublishStatus{Target: "s3://media/vod/", Expire: true,
		State: PublishPublished, Attempts: 7, BaseURL: "http://forged"} // what the log decides is reset at submit
	return j
}

// TestPublishState drives job.publish without raft: the job is done at
// packaging with publishing pending and the callback held back; a stale or
// repeated attempt is refused; a failed attempt is recorded; success
// records the URLs and starts the callback; a snapshot keeps it all.
func TestPublishState(t *testing.T) {
	s := upgraded(t)
	j := publishJob("j1")
	runJobUntilPackaging(t, s, j)
	p := jobOf(t, s, "j1").Publish
	if p == nil || p.State != PublishWaiting || p.Attempts != 0 || p.BaseURL != "" || p.Target != "s3://media/vod/" || !p.Expire {
		t.Fatalf("before done: %+v", p)
	}
	if err := apply(t, s, OpJobPublish, JobPublish{JobID: "j1", Attempt: 1, Published: true}); !errors.Is(err, ErrConflict) {
		t.Fatalf("publish before done: %v", err)
	}
	pk := TaskID("j1", TaskPackage, 0)
	mustApply(t, s, OpTaskAssign, AssignTask{TaskID: pk, Node: "n1", Term: 1, Attempt: 1})
	mustApply(t, s, OpTaskDone, packageResult(s, pk))
	got := jobOf(t, s, "j1")
	if got.State != JobDone || got.Publish.State != PublishPending || got.Webhook != nil {
		t.Fatalf("packaged: state %s publish %+v webhook %+v", got.State, got.Publish, got.Webhook)
	}
	due := 0
	s.PendingPublishes(func(*Job) bool { due++; return true })
	if due != 1 {
		t.Fatalf("%d publishes due, want 1", due)
	}
	if err := apply(t, s, OpJobPublish, JobPublish{JobID: "j1", Attempt: 2, Published: true}); !errors.Is(err, ErrStale) {
		t.Fatalf("attempt 2 first: %v", err)
	}
	if err := apply(t, s, OpJobPublish, JobPublish{JobID: "j1", Attempt: 1, Removed: true}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("removed while pending: %v", err)
	}
	mustApply(t, s, OpJobPublish, JobPublish{JobID: "j1", Attempt: 1, Error: "s3 put s3://media/vod/j1/master.m3u8: AccessDenied"})
	got = jobOf(t, s, "j1")
	if got.Publish.State != PublishPending || got.Publish.Attempts != 1 || got.Publish.LastError == "" || got.Webhook != nil {
		t.Fatalf("after a failed attempt: %+v", got.Publish)
	}
	if err := apply(t, s, OpJobPublish, JobPublish{JobID: "j1", Attempt: 1, Published: true}); !errors.Is(err, ErrStale) {
		t.Fatalf("a repeated attempt: %v", err)
	}
	due = 0
	roundTrip(t, s).PendingPublishes(func(*Job) bool { due++; return true })
	if due != 1 {
		t.Fatalf("%d publishes due after a snapshot, want 1", due)
	}
	mustApply(t, s, OpJobPublish, JobPublish{JobID: "j1", Attempt: 2, Published: true, BaseURL: "http://s3/media/vod/j1/", Files: 9, Bytes: 1234})
	got = jobOf(t, s, "j1")
	if got.Publish.State != PublishPublished || got.Publish.BaseURL != "http://s3/media/vod/j1/" || got.Publish.Files != 9 ||
		got.Publish.LastError != "" || got.Publish.PublishedAt.IsZero() || got.Webhook == nil || got.Webhook.State != WebhookPending {
		t.Fatalf("published: %+v webhook %+v", got.Publish, got.Webhook)
	}
	due = 0
	s.PendingPublishes(func(*Job) bool { due++; return true })
	if due != 0 {
		t.Fatalf("%d publishes due after success", due)
	}
	back := roundTrip(t, s)
	if bj := jobOf(t, back, "j1"); bj.Publish == nil || *bj.Publish != *got.Publish {
		t.Fatalf("snapshot: %+v, want %+v", bj.Publish, got.Publish)
	}
	if err := apply(t, s, OpJobPublish, JobPublish{JobID: "nope", Attempt: 1}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown job: %v", err)
	}
	long := publishJob("j9")
	long.SourceBlob.Hash = hash('5')
	long.Publish.Target = "s3://media/" + strings.Repeat("x", MaxPublishTarget)
	mustApply(t, s, OpJobSubmit, SubmitJob{Job: long})
	if p := jobOf(t, s, "j9").Publish; p != nil {
		t.Fatalf("an oversized target was kept: %d bytes", len(p.Target))
	}
}

// TestPublishGiveUpAndExpire: giving up fails the publish (not the job)
// and starts the callback; at expiry a job that asked for it has its
// remote copies removed (expiring, then removed); a failed job skips
// publishing.
func TestPublishGiveUpAndExpire(t *testing.T) {
	s := upgraded(t)
	j := publishJob("j1")
	j.TTL = time.Minute
	runJob(t, s, j)
	mustApply(t, s, OpJobPublish, JobPublish{JobID: "j1", Attempt: 1, GiveUp: true, Error: "InvalidAccessKeyId"})
	got := jobOf(t, s, "j1")
	if got.State != JobDone || got.Publish.State != PublishFailed || got.Publish.LastError != "InvalidAccessKeyId" ||
		got.Webhook == nil {
		t.Fatalf("given up: job %s publish %+v webhook %+v", got.State, got.Publish, got.Webhook)
	}
	fin := got.FinishedAt
	if err := applyAt(t, s, OpJobExpire, fin.Add(time.Minute), JobRef{JobID: "j1"}); err != nil {
		t.Fatal(err)
	}
	if p := jobOf(t, s, "j1").Publish; p.State != PublishExpiring || p.Attempts != 0 {
		t.Fatalf("expired with expire:true: %+v", p)
	}
	if err := apply(t, s, OpJobPublish, JobPublish{JobID: "j1", Attempt: 1, Published: true}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("published while expiring: %v", err)
	}
	mustApply(t, s, OpJobPublish, JobPublish{JobID: "j1", Attempt: 1, Removed: true})
	if p := jobOf(t, s, "j1").Publish; p.State != PublishRemoved {
		t.Fatalf("after removal: %+v", p)
	}

	// Pending at expiry without expire:true: failed, callback started.
	k := publishJob("j2")
	k.SourceBlob.Hash, k.TTL, k.Publish.Expire = hash('7'), time.Minute, false
	runJob(t, s, k)
	kj := jobOf(t, s, "j2")
	if err := applyAt(t, s, OpJobExpire, kj.FinishedAt.Add(time.Minute), JobRef{JobID: "j2"}); err != nil {
		t.Fatal(err)
	}
	if kj = jobOf(t, s, "j2"); kj.Publish.State != PublishFailed || kj.Publish.LastError == "" || kj.Webhook == nil {
		t.Fatalf("pending at expiry: %+v webhook %+v", kj.Publish, kj.Webhook)
	}

	// A canceled job publishes nothing.
	c := publishJob("j3")
	c.SourceBlob.Hash = hash('6')
	mustApply(t, s, OpJobSubmit, SubmitJob{Job: c})
	mustApply(t, s, OpJobCancel, JobRef{JobID: "j3"})
	if p := jobOf(t, s, "j3").Publish; p.State != PublishSkipped || p.Due() {
		t.Fatalf("canceled: %+v", p)
	}
}
