package cluster

import (
	"cmp"
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
// ingesting when its node leaves is taken over by the leader
// (job.ingest_take names the new fetching node, node/ingest.go), so
// nothing waits for a fetch that no one runs. Both job.submit and
// job.ingest_fail count only from the node the record names: a fetch that
// was taken from its node cannot end the job any more.

// JobIngesting is a job whose source is still being fetched (URL ingest).
const JobIngesting JobState = "ingesting"

// IngestJob is the body of OpJobIngest: a job whose source Job.Origin is
// fetching from Job.SourceURL. Only the fields of the submitter's policy
// are kept (name, options, callback, TTL, priority, submitter).
//
// Refused, when set, records the job failed at once with that reason: a
// watched object whose options are refused is one failed job, seen once,
// in one entry (node/watch.go).
type IngestJob struct {
	Job     Job    `json:"job"`
	Refused string `json:"refused,omitempty"`
}

// MaxSourceURL bounds a job's source URL; MaxIngestOptions the options an
// ingesting record keeps (Job.IngestOptions);
// MaxIngestReason the reason of a refused one (longer is cut).
const (
	MaxSourceURL     = 2048
	MaxIngestOptions = 64 << 10
	MaxIngestReason  = 500
)

// IngestTake is the body of OpJobIngestTake: the fetch of an ingesting job
// moves from node From (gone) to node To. It applies only while From
// still fetches it, so of two nodes taking the same fetch the first wins.
type IngestTake struct {
	JobID string `json:"job_id"`
	From  string `json:"from"`
	To    string `json:"to"`
}

// IngestFail is the body of OpJobIngestFail. Node, when set, is the node
// that failed the fetch (or the one the leader found gone): the failure
// counts only while that node still fetches the job. Entries without it
// (the first shape) fail the job whoever fetches it.
type IngestFail struct {
	JobID  string `json:"job_id"`
	Reason string `json:"reason,omitempty"`
	Node   string `json:"node,omitempty"`
}

func (s *State) ingest(b IngestJob, at time.Time) error {
	j := b.Job
	if s.version < LogV3 {
		return fmt.Errorf("ingest %s: %w: the cluster writes log version %d", j.ID, ErrConflict, s.version)
	}
	if !ValidJobID(j.ID) || j.Origin == "" || j.SourceURL == "" || len(j.SourceURL) > MaxSourceURL {
		return fmt.Errorf("ingest: %w: job needs an id, an origin and a source URL", ErrInvalid)
	}
	if len(j.IngestOptions) > MaxIngestOptions {
		return fmt.Errorf("ingest %s: %w: options of %d bytes, at most %d", j.ID, ErrInvalid, len(j.IngestOptions), MaxIngestOptions)
	}
	if s.job(j.ID) != nil {
		return fmt.Errorf("ingest %s: %w: job exists", j.ID, ErrConflict)
	}
	nj := Job{
		ID: j.ID, Name: j.Name, State: JobIngesting, Options: j.Options, Origin: j.Origin,
		SourceURL: j.SourceURL, IngestOptions: j.IngestOptions, CallbackURL: j.CallbackURL, TTL: max(j.TTL, 0),
		DropSource: j.DropSource, Priority: j.Priority, Submitter: j.Submitter,
		CreatedAt: at, UpdatedAt: at,
	}
	if _, err := ParsePriority(string(nj.Priority)); err != nil {
		nj.Priority = PriorityNormal
	}
	if len(b.Refused) > MaxIngestReason {
		b.Refused = b.Refused[:MaxIngestReason]
	}
	s.putJob(nil, &nj)
	if b.Refused != "" {
		fj := nj
		s.finish(s.job(nj.ID), &fj, JobFailed, b.Refused, at)
	}
	return nil
}

// ingestFail applies job.ingest_fail: a fetch that did not bring a source
// fails its job.
func (s *State) ingestFail(r IngestFail, at time.Time) error {
	j := s.job(r.JobID)
	if j == nil {
		return fmt.Errorf("ingest fail %s: %w", r.JobID, ErrNotFound)
	}
	if j.State != JobIngesting {
		return fmt.Errorf("ingest fail %s: %w: job is %s", r.JobID, ErrConflict, j.State)
	}
	if r.Node != "" && r.Node != j.Origin {
		return fmt.Errorf("ingest fail %s: %w: %s fetches it, not %s", r.JobID, ErrConflict, j.Origin, r.Node)
	}
	nj := *j
	s.finish(j, &nj, JobFailed, cmp.Or(r.Reason, "fetching the source failed"), at)
	return nil
}

// ingestTake applies job.ingest_take: another node fetches the source.
func (s *State) ingestTake(b IngestTake, at time.Time) error {
	j := s.job(b.JobID)
	if j == nil {
		return fmt.Errorf("ingest take %s: %w", b.JobID, ErrNotFound)
	}
	if b.To == "" {
		return fmt.Errorf("ingest take %s: %w: no node to take it", b.JobID, ErrInvalid)
	}
	if j.State != JobIngesting || j.Origin != b.From {
		return fmt.Errorf("ingest take %s: %w: job is %s, fetched by %s", b.JobID, ErrConflict, j.State, j.Origin)
	}
	nj := *j
	nj.Origin, nj.UpdatedAt = b.To, at
	s.putJob(j, &nj)
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
