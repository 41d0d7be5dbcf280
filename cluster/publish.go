package cluster

import (
	"fmt"
	"time"
)

// Publishing a done job's files to object storage (an S3 bucket). The job
// is done when it is packaged, as before: its files are served by the
// cluster from then on, and publishing is a delivery like the webhook's,
// carried out by the leader's publisher (node/publish.go) and recorded in
// the log after every attempt (job.publish), so a new leader carries on
// where the old one stopped and the attempts are bounded. The job's
// callback waits for the outcome, so a receiver sees the remote URLs (or
// why there are none).
//
// Log format: Job.Publish is an optional field of version 1 (a node that
// predates it ignores it) and job.publish an op of version 2. A node of
// the previous release skips job.publish as unknown and starts the webhook
// at done: during a rolling update from it, a job that publishes may have
// its webhook sent before its files are up, and such a node lists the
// publish state as it was at done.

// Publish states.
const (
	PublishWaiting   = "waiting"   // the job is not done yet
	PublishPending   = "pending"   // done: the publisher uploads the files
	PublishPublished = "published" // every file is in the bucket
	PublishFailed    = "failed"    // given up (last_error says why)
	PublishSkipped   = "skipped"   // the job failed or was canceled: nothing to publish
	PublishExpiring  = "expiring"  // the job expired: the publisher deletes the remote copies
	PublishRemoved   = "removed"   // the remote copies were deleted at expiry
)

// PublishStatus is where publishing a job's files stands. Target names
// the bucket and prefix only: credentials never enter the log.
type PublishStatus struct {
	Target string `json:"target"` // s3://bucket/prefix/ (the job's files go under prefix + job ID + "/")
	// Expire deletes the remote copies when the job's TTL runs out.
	Expire        bool      `json:"expire,omitempty"`
	State         string    `json:"state"`
	Attempts      int       `json:"attempts"`
	LastError     string    `json:"last_error,omitempty"`
	LastAttemptAt time.Time `json:"last_attempt_at,omitzero"`
	PublishedAt   time.Time `json:"published_at,omitzero"`
	// BaseURL is the job's folder on the store; Files and Bytes what was
	// uploaded.
	BaseURL string `json:"base_url,omitempty"`
	Files   int    `json:"files,omitempty"`
	Bytes   int64  `json:"bytes,omitempty"`
}

// Due reports whether the publisher has work for the job: an upload or a
// removal.
func (p *PublishStatus) Due() bool {
	return p != nil && (p.State == PublishPending || p.State == PublishExpiring)
}

// JobPublish is the body of OpJobPublish: the outcome of one attempt to
// upload a job's files (or, for an expiring job, to delete them). Attempt
// must be one more than the attempts recorded, which makes a duplicate
// proposal a no-op. Published records that every file is up; Removed that
// the remote copies are gone; GiveUp ends the attempts without either.
type JobPublish struct {
	JobID     string `json:"job_id"`
	Attempt   int    `json:"attempt"`
	Published bool   `json:"published,omitempty"`
	Removed   bool   `json:"removed,omitempty"`
	GiveUp    bool   `json:"give_up,omitempty"`
	Error     string `json:"error,omitempty"`
	BaseURL   string `json:"base_url,omitempty"`
	Files     int    `json:"files,omitempty"`
	Bytes     int64  `json:"bytes,omitempty"`
}

// MaxPublishError bounds the error a job.publish records, and
// MaxPublishTarget a job's target (objstore.MaxTargetLen), so that a
// finished job's record stays small.
const (
	MaxPublishError  = 1000
	MaxPublishTarget = 1024
)

func (s *State) publish(p JobPublish, at time.Time) error {
	j := s.job(p.JobID)
	if j == nil {
		return fmt.Errorf("publish %s: %w", p.JobID, ErrNotFound)
	}
	ps := j.Publish
	if !ps.Due() {
		return fmt.Errorf("publish %s: %w: nothing to publish or remove", p.JobID, ErrConflict)
	}
	if p.Attempt != ps.Attempts+1 {
		return fmt.Errorf("publish %s attempt %d: %w: %d attempts recorded", p.JobID, p.Attempt, ErrStale, ps.Attempts)
	}
	if len(p.Error) > MaxPublishError || p.Files < 0 || p.Bytes < 0 || len(p.BaseURL) > 2048 ||
		(p.Published && (p.Removed || p.GiveUp)) || (p.Published && ps.State != PublishPending) ||
		(p.Removed && ps.State != PublishExpiring) {
		return fmt.Errorf("publish %s: %w: malformed outcome", p.JobID, ErrInvalid)
	}
	np := *ps
	np.Attempts, np.LastError, np.LastAttemptAt = p.Attempt, p.Error, at
	nj := *j
	switch {
	case p.Published:
		np.State, np.PublishedAt, np.LastError = PublishPublished, at, ""
		np.BaseURL, np.Files, np.Bytes = p.BaseURL, p.Files, p.Bytes
		startWebhook(&nj)
	case p.Removed:
		np.State = PublishRemoved
	case p.GiveUp && ps.State == PublishExpiring:
		np.State = PublishFailed
	case p.GiveUp:
		np.State = PublishFailed
		startWebhook(&nj)
	}
	nj.Publish = &np
	nj.UpdatedAt = at
	s.putJob(j, &nj)
	return nil
}

// publishDone moves a job that was just packaged to publishing; the
// callback waits for the outcome. It reports whether the job publishes.
func publishDone(j *Job) bool {
	if j.Publish == nil {
		return false
	}
	np := *j.Publish
	np.State, np.Attempts = PublishPending, 0
	j.Publish = &np
	return true
}

// publishEnded marks a job that failed or was canceled before it was done.
func publishEnded(j *Job) {
	if j.Publish != nil && j.Publish.State == PublishWaiting {
		np := *j.Publish
		np.State = PublishSkipped
		j.Publish = &np
	}
}

// publishExpired turns an expiring job's publish state: its remote copies
// go too when it asked for that, and an upload still due can no longer
// happen (the files are released).
func publishExpired(j *Job) {
	p := j.Publish
	if p == nil {
		return
	}
	np := *p
	switch {
	case p.Expire && (p.State == PublishPublished || p.State == PublishPending || p.State == PublishFailed):
		// A failed or unfinished upload may have left some files.
		if p.State == PublishPending {
			np.LastError = "the job expired before its files were published"
		}
		np.State, np.Attempts = PublishExpiring, 0
	case p.State == PublishPending:
		np.State, np.LastError = PublishFailed, "the job expired before its files were published"
		startWebhook(j)
	default:
		return
	}
	j.Publish = &np
}

// PendingPublishes calls fn with every job whose publish work is due (an
// upload or a removal), in no particular order.
func (s *State) PendingPublishes(fn func(*Job) bool) {
	for id := range s.ix.publishes {
		if !fn(s.job(id)) {
			return
		}
	}
}
