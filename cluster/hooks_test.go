package cluster

import (
	"errors"
	"testing"
)

// A finished job with a callback has a pending delivery; job.notify
// records attempts in order, once each, and ends it.
func TestWebhookDeliveryState(t *testing.T) {
	s := NewState()
	j := testJob("j1", true)
	j.CallbackURL = "http://127.0.0.1:9/hook"
	runJob(t, s, j)
	w := s.Jobs["j1"].Webhook
	if w == nil || w.State != WebhookPending || w.Attempts != 0 {
		t.Fatalf("after done: webhook %+v", w)
	}
	mustApply(t, s, OpJobNotify, JobNotify{JobID: "j1", Attempt: 1, Error: "503"})
	if err := apply(t, s, OpJobNotify, JobNotify{JobID: "j1", Attempt: 1, Error: "503"}); !errors.Is(err, ErrStale) {
		t.Fatalf("duplicate attempt: %v", err)
	}
	mustApply(t, s, OpJobNotify, JobNotify{JobID: "j1", Attempt: 2, Delivered: true})
	w = s.Jobs["j1"].Webhook
	if w.State != WebhookDelivered || w.Attempts != 2 || w.LastError != "" || w.DeliveredAt.IsZero() {
		t.Fatalf("after delivery: %+v", w)
	}
	if err := apply(t, s, OpJobNotify, JobNotify{JobID: "j1", Attempt: 3, Delivered: true}); !errors.Is(err, ErrConflict) {
		t.Fatalf("delivery after delivered: %v", err)
	}
	if c := s.Clone(); c.Jobs["j1"].Webhook.State != WebhookDelivered {
		t.Fatal("webhook state lost in a snapshot")
	}

	// Failed jobs notify too, canceled ones and jobs without a callback do not.
	f := testJob("j2", false)
	f.CallbackURL = "http://127.0.0.1:9/hook"
	mustApply(t, s, OpJobSubmit, SubmitJob{Job: f})
	mustApply(t, s, OpTaskAssign, AssignTask{TaskID: TaskID("j2", TaskSplit, 0), Node: "n1", Attempt: 1})
	mustApply(t, s, OpTaskFail, TaskFailure{TaskID: TaskID("j2", TaskSplit, 0), Node: "n1", Attempt: 1, Reason: "bad", Permanent: true})
	if w := s.Jobs["j2"].Webhook; w == nil || w.State != WebhookPending {
		t.Fatalf("failed job: webhook %+v", w)
	}
	mustApply(t, s, OpJobNotify, JobNotify{JobID: "j2", Attempt: 1, GiveUp: true, Error: "refused"})
	if w := s.Jobs["j2"].Webhook; w.State != WebhookFailed || w.LastError != "refused" {
		t.Fatalf("given up: %+v", w)
	}
	c := testJob("j3", false)
	c.CallbackURL = "http://127.0.0.1:9/hook"
	mustApply(t, s, OpJobSubmit, SubmitJob{Job: c})
	mustApply(t, s, OpJobCancel, JobRef{JobID: "j3"})
	if w := s.Jobs["j3"].Webhook; w != nil {
		t.Fatalf("canceled job: webhook %+v", w)
	}
}
