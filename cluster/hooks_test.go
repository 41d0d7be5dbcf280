package cluster

import (
	"errors"
	"testing"
	"time"
)

// A finished job with a callback has a pending delivery; job.notify
// records attempts in order, once each, and ends it.
func TestWebhookDeliveryState(t *testing.T) {
	s := NewState()
	j := testJob("j1", true)
	j.CallbackURL = "http://127.0.0.1:9/hook"
	runJob(t, s, j)
	w := jobOf(t, s, "j1").Webhook
	if w == nil || w.State != WebhookPending || w.Attempts != 0 {
		t.Fatalf("after done: webhook %+v", w)
	}
	mustApply(t, s, OpJobNotify, JobNotify{JobID: "j1", Attempt: 1, Error: "503"})
	if err := apply(t, s, OpJobNotify, JobNotify{JobID: "j1", Attempt: 1, Error: "503"}); !errors.Is(err, ErrStale) {
		t.Fatalf("duplicate attempt: %v", err)
	}
	mustApply(t, s, OpJobNotify, JobNotify{JobID: "j1", Attempt: 2, Delivered: true})
	w = jobOf(t, s, "j1").Webhook
	if w.State != WebhookDelivered || w.Attempts != 2 || w.LastError != "" || w.DeliveredAt.IsZero() {
		t.Fatalf("after delivery: %+v", w)
	}
	if err := apply(t, s, OpJobNotify, JobNotify{JobID: "j1", Attempt: 3, Delivered: true}); !errors.Is(err, ErrConflict) {
		t.Fatalf("delivery after delivered: %v", err)
	}
	if c := roundTrip(t, s); jobOf(t, c, "j1").Webhook.State != WebhookDelivered {
		t.Fatal("webhook state lost in a snapshot")
	}

	// Failed jobs notify too, canceled ones and jobs without a callback do not.
	f := testJob("j2", false)
	f.CallbackURL = "http://127.0.0.1:9/hook"
	mustApply(t, s, OpJobSubmit, SubmitJob{Job: f})
	mustApply(t, s, OpTaskAssign, AssignTask{TaskID: TaskID("j2", TaskSplit, 0), Node: "n1", Attempt: 1})
	mustApply(t, s, OpTaskFail, TaskFailure{TaskID: TaskID("j2", TaskSplit, 0), Node: "n1", Attempt: 1, Reason: "bad", Permanent: true})
	if w := jobOf(t, s, "j2").Webhook; w == nil || w.State != WebhookPending {
		t.Fatalf("failed job: webhook %+v", w)
	}
	mustApply(t, s, OpJobNotify, JobNotify{JobID: "j2", Attempt: 1, GiveUp: true, Error: "refused"})
	if w := jobOf(t, s, "j2").Webhook; w.State != WebhookFailed || w.LastError != "refused" {
		t.Fatalf("given up: %+v", w)
	}
	c := testJob("j3", false)
	c.CallbackURL = "http://127.0.0.1:9/hook"
	mustApply(t, s, OpJobSubmit, SubmitJob{Job: c})
	mustApply(t, s, OpJobCancel, JobRef{JobID: "j3"})
	if w := jobOf(t, s, "j3").Webhook; w != nil {
		t.Fatalf("canceled job: webhook %+v", w)
	}
}

// job.expire releases a finished job's media once its TTL has passed, and
// only then; shared blobs stay; keep_source:false drops the source at done.
func TestExpireAndDropSource(t *testing.T) {
	s := NewState()
	j := testJob("j1", true)
	j.TTL = time.Minute
	runJob(t, s, j)
	fin := jobOf(t, s, "j1").FinishedAt
	if got := jobOf(t, s, "j1").ExpiresAt(); !got.Equal(fin.Add(time.Minute)) {
		t.Fatalf("expires at %v", got)
	}
	other := testJob("j2", false) // shares j1's source
	mustApply(t, s, OpJobSubmit, SubmitJob{Job: other})
	early := func() error {
		data, _ := EncodeCommand(OpJobExpire, fin.Add(30*time.Second), JobRef{JobID: "j1"})
		c, _ := DecodeCommand(data)
		return s.Apply(c)
	}
	if err := early(); !errors.Is(err, ErrConflict) {
		t.Fatalf("early expiry: %v", err)
	}
	var outBytes int64
	for _, b := range jobOf(t, s, "j1").Outputs {
		outBytes += b.Size
	}
	data, _ := EncodeCommand(OpJobExpire, fin.Add(time.Minute), JobRef{JobID: "j1"})
	c, _ := DecodeCommand(data)
	if err := s.Apply(c); err != nil {
		t.Fatal(err)
	}
	e := jobOf(t, s, "j1")
	if e.ExpiredAt.IsZero() || e.Outputs != nil || e.HLS != "" || e.FreedBytes != outBytes {
		t.Fatalf("expired job: %+v (want %d bytes freed: the source is shared)", e, outBytes)
	}
	if blobs := blobSet(s); len(blobs) != 1 || blobs["a"] != 1 {
		t.Fatalf("a source another job uses must stay, and only it: %v", blobs)
	}
	if err := s.Apply(c); !errors.Is(err, ErrConflict) {
		t.Fatalf("second expiry: %v", err)
	}
	if !jobOf(t, s, "j2").ExpiresAt().IsZero() {
		t.Fatal("a job without TTL expires")
	}

	d := testJob("j3", false)
	d.SourceBlob.Hash = hash('9')
	d.DropSource = true
	s1 := NewState()
	mustApply(t, s1, OpJobSubmit, SubmitJob{Job: d})
	if _, ok := s1.Blob(hash('9')); !ok {
		t.Fatal("source released before the job is done")
	}
	s2 := NewState()
	runJob(t, s2, d)
	if _, ok := s2.Blob(hash('9')); ok {
		t.Fatal("keep_source:false kept the source after done")
	}
}

// TestExpireCompactJob: expiring a compact job releases its source and its
// manifest, and counts the files the manifest lists by their total.
func TestExpireCompactJob(t *testing.T) {
	s := upgraded(t)
	j := testJob("j1", false)
	j.TTL = time.Minute
	runJob(t, s, j)
	fin := jobOf(t, s, "j1").FinishedAt
	if err := applyAt(t, s, OpJobExpire, fin.Add(time.Minute), JobRef{JobID: "j1"}); err != nil {
		t.Fatal(err)
	}
	e := jobOf(t, s, "j1")
	if want := int64(100 + 50 + 2); e.FreedBytes != want || !e.Manifest.IsZero() || s.BlobCount() != 0 {
		t.Fatalf("expired: freed %d (want %d), manifest %v, %d blobs left", e.FreedBytes, want, e.Manifest, s.BlobCount())
	}
	var due []string
	s.Expiring(fin.Add(time.Hour), func(j *Job) bool { due = append(due, j.ID); return true })
	if len(due) != 0 {
		t.Fatalf("still expiring: %v", due)
	}
}
