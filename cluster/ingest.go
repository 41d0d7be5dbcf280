package cluster

import (
	"fmt"
	"net/url"
	"time"
)

// URL ingest in the log (log version 3). A job whose source a node
// fetches from a URL is recorded before the fetch, so that it is
// acknowledged only once it survives the node (job.ingest: state
// ingesting, no source yet). The fetching node then commits a normal
// job.submit with the same ID, which replaces the ingesting record (the
// job moves on to queued), or job.ingest_fail with a reason. A job still
// ingesting when its node leaves is failed by the leader (node/ingest.go),
// so nothing waits for a fetch that no one runs.

// JobIngesting is a job whose source is still being fetched (URL ingest).
const JobIngesting JobState = "ingesting"

// IngestJob is the body of OpJobIngest: a job whose source Job.Origin is
// fetching from Job.SourceURL. Only the fields of the submitter's policy
// are kept (name, options, callback, TTL, priority, submitter).
type IngestJob struct {
	Job Job `json:"job"`
}

// MaxSourceURL bounds a job's source URL.
const MaxSourceURL = 2048

func (s *State) ingest(b IngestJob, at time.Time) error {
	j := b.Job
	if s.version < LogV3 {
		return fmt.Errorf("ingest %s: %w: the cluster writes log version %d", j.ID, ErrConflict, s.version)
	}
	if !ValidJobID(j.ID) || j.Origin == "" || j.SourceURL == "" || len(j.SourceURL) > MaxSourceURL {
		return fmt.Errorf("ingest: %w: job needs an id, an origin and a source URL", ErrInvalid)
	}
	if s.job(j.ID) != nil {
		return fmt.Errorf("ingest %s: %w: job exists", j.ID, ErrConflict)
	}
	nj := Job{
		ID: j.ID, Name: j.Name, State: JobIngesting, Options: j.Options, Origin: j.Origin,
		SourceURL: j.SourceURL, CallbackURL: j.CallbackURL, TTL: max(j.TTL, 0),
		DropSource: j.DropSource, Priority: j.Priority, Submitter: j.Submitter,
		CreatedAt: at, UpdatedAt: at,
	}
	if _, err := ParsePriority(string(nj.Priority)); err != nil {
		nj.Priority = PriorityNormal
	}
	s.putJob(nil, &nj)
	return nil
}

// ingestFail applies job.ingest_fail: a fetch that did not bring a source
// fails its job.
func (s *State) ingestFail(r JobRef, at time.Time) error {
	j := s.job(r.JobID)
	if j == nil {
		return fmt.Errorf("ingest fail %s: %w", r.JobID, ErrNotFound)
	}
	if j.State != JobIngesting {
		return fmt.Errorf("ingest fail %s: %w: job is %s", r.JobID, ErrConflict, j.State)
	}
	reason := r.Reason
	if reason == "" {
		reason = "fetching the source failed"
	}
	nj := *j
	s.finish(j, &nj, JobFailed, reason, at)
	return nil
}

// ingested returns the ingesting record job.submit replaces, if j is the
// outcome of its fetch (same origin and URL), or nil.
func (s *State) ingested(j Job) *Job {
	old := s.job(j.ID)
	if old == nil || old.State != JobIngesting || old.Origin != j.Origin || old.SourceURL != j.SourceURL {
		return nil
	}
	return old
}

// RedactURL is a URL without its query, fragment and user info (a
// presigned URL's query is a credential): what the job JSON and the logs
// show of a source URL ("" stays "").
func RedactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	u.RawQuery, u.Fragment, u.RawFragment, u.User, u.ForceQuery = "", "", "", nil, false
	return u.String()
}

// JobsInState calls fn with the record of every job in state st, oldest
// first, until fn returns false.
func (s *State) JobsInState(st JobState, fn func(*Job) bool) {
	t := s.ix.byState[st]
	if t == nil {
		return
	}
	t.Ascend(func(k jobKey) bool { return fn(s.job(k.id)) })
}
