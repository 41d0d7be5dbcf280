package cluster

import (
	"encoding/json"
	"fmt"
	"time"
)

// JobState is where a job is in its life. The names are part of the public API.
type JobState string

const (
	JobQueued      JobState = "queued"
	JobSplitting   JobState = "splitting"
	JobTranscoding JobState = "transcoding"
	JobPackaging   JobState = "packaging"
	JobDone        JobState = "done"
	JobFailed      JobState = "failed"
	JobCanceled    JobState = "canceled"
)

// Terminal reports whether no more work will happen for a job in state s.
func (s JobState) Terminal() bool { return s == JobDone || s == JobFailed || s == JobCanceled }

// BlobRef names a content-addressed blob: the hex sha256 of its bytes.
type BlobRef struct {
	Hash string `json:"hash"`
	Size int64  `json:"size"`
}

// IsZero reports whether b names no blob.
func (b BlobRef) IsZero() bool { return b.Hash == "" }

// Job is one upload and everything the cluster made of it. The state keeps
// each job as an immutable record (a change replaces the record); readers
// get copies or shared read-only pointers.
//
// A running job's chunks live in the state beside it (State.Chunks) and are
// filled into copies handed to readers. A finished job is compact: its
// chunks, tasks and per-file records leave the state, and what remains is
// this record with its published files named by one manifest blob
// (Manifest) and a few totals (Sizes), the same size whatever the media's
// length.
type Job struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"` // the uploaded file name, for people
	State      JobState   `json:"state"`
	Error      string     `json:"error,omitempty"`
	Options    JobOptions `json:"options"`
	Source     Probe      `json:"source"`
	SourceBlob BlobRef    `json:"source_blob"`
	Origin     string     `json:"origin"` // node that received the upload
	// SourceURL is where the source was fetched from (URL ingest; log
	// version 3, ingest.go); "" for an upload.
	SourceURL string `json:"source_url,omitempty"`
	// IngestOptions are the options of an ingesting job as its submitter
	// sent them (JSON, at most MaxIngestOptions), so that whichever node
	// fetches the source (the one that took the request, or the leader
	// that takes the fetch over: ingest.go) submits it as asked. Only an
	// ingesting record has them: job.submit replaces the record, and a
	// job that ends drops them.
	IngestOptions json.RawMessage `json:"ingest_options,omitempty"`
	Renditions    []Rendition     `json:"renditions"`
	ChunkSeconds  float64         `json:"chunk_seconds"`
	// Chunks is filled in copies of running jobs (and was stored inline by
	// logs and snapshots of the first format); the state keeps them apart.
	Chunks []Chunk `json:"chunks"`
	// ChunkCount is how many chunks the split made (0 before it).
	ChunkCount int     `json:"chunk_count,omitempty"`
	Audio      BlobRef `json:"audio,omitempty"`
	// Outputs maps a published file's relative path ("master.m3u8",
	// "manifest.mpd", "mp4/720p.mp4", "seg-0-00001.m4s", ...) to its blob,
	// for jobs packaged under the first log format until the leader
	// compacts them (job.compact); Manifest replaces it.
	Outputs map[string]BlobRef `json:"outputs,omitempty"`
	// Manifest is the blob listing every published file (ManifestDoc): the
	// job's outputs, replicated as one set.
	Manifest BlobRef           `json:"manifest,omitzero"`
	HLS      string            `json:"hls,omitempty"`  // relative path of the HLS master playlist
	DASH     string            `json:"dash,omitempty"` // relative path of the DASH MPD
	MP4      map[string]string `json:"mp4,omitempty"`  // rendition name → relative path
	// Poster and Storyboard are the relative paths of the poster JPEG and
	// the storyboard's WebVTT track ("" when the job has none).
	Poster     string `json:"poster,omitempty"`
	Storyboard string `json:"storyboard,omitempty"`
	// Quality is one report per rendition (Renditions order), or none.
	Quality []Quality `json:"quality,omitempty"`
	// Scores are the quality windows' scores the encodes have reported
	// so far (TaskResult.Scores), one per window at most: a few numbers
	// per rendition whatever the job's length, dropped when it ends.
	Scores []WindowScore `json:"quality_scores,omitempty"`
	// Sizes sums what a finished job stored, kept when its chunks go.
	Sizes      *JobSizes `json:"sizes,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`

	// Policy set at submit from the job options (absent in logs written
	// before they existed, which reads as: no callback, kept forever,
	// normal priority, anonymous submitter).
	CallbackURL string `json:"callback_url,omitempty"`
	// Webhook is the delivery state of the callback, from the moment the
	// job is done or failed.
	Webhook *WebhookStatus `json:"webhook,omitempty"`
	// TTL is how long the job's media are kept after it finishes (0:
	// forever); stamped at submit from the job's ttl option or the
	// submitting node's --retention.
	TTL time.Duration `json:"ttl,omitempty"`
	// DropSource lets the source go as soon as the job is done
	// (keep_source:false).
	DropSource bool `json:"drop_source,omitempty"`
	// ExpiredAt is when the TTL ran out and the job's media were released
	// (the job stays listed); FreedBytes is what that released: the
	// blobs no other job shares, counted once however many copies.
	ExpiredAt  time.Time `json:"expired_at,omitzero"`
	FreedBytes int64     `json:"freed_bytes,omitempty"`
	// Priority orders the job's tasks before others' ("" is normal);
	// Submitter is who sent it (a hash of the API token, or "client:"
	// and the client_id option; "" anonymous), for fair sharing.
	Priority  Priority `json:"priority,omitempty"`
	Submitter string   `json:"submitter,omitempty"`

	// Subtitles are the job's subtitle tracks as WebVTT blobs, stored by
	// the origin before job.submit and kept like the source (subtitles.go).
	// Warnings say what of the source is not in the outputs (image-based
	// subtitles, tracks beyond the cap). Both set at submit; added to
	// version 1 as optional fields.
	Subtitles []SubtitleTrack `json:"subtitles,omitempty"`
	Warnings  []string        `json:"warnings,omitempty"`

	// Publish is where the job's files are uploaded once it is done and
	// how far that got (publish.go); nil when it publishes nowhere. Set at
	// submit (state waiting); an optional field of version 1.
	Publish *PublishStatus `json:"publish,omitempty"`
}

// JobSizes are a finished job's byte totals.
type JobSizes struct {
	ChunkSize int64 `json:"chunk_bytes"`     // the chunks' sources
	Encoded   int64 `json:"encoded_bytes"`   // encoded chunks, every rendition
	Published int64 `json:"published_bytes"` // published files (HLS, DASH, MP4)
}

// Compact reports whether a finished job's chunks have left the state.
func (j *Job) Compact() bool { return j.Sizes != nil }

// Priority is a job's scheduling class.
type Priority string

const (
	PriorityHigh   Priority = "high"
	PriorityNormal Priority = "normal"
	PriorityLow    Priority = "low"
)

// ParsePriority reads a priority option; "" is normal.
func ParsePriority(s string) (Priority, error) {
	switch p := Priority(s); p {
	case "", PriorityNormal:
		return PriorityNormal, nil
	case PriorityHigh, PriorityLow:
		return p, nil
	}
	return "", fmt.Errorf("options: priority %q: want high, normal or low", s)
}

// rank orders priorities: high first.
func (p Priority) rank() int {
	switch p {
	case PriorityHigh:
		return 0
	case PriorityLow:
		return 2
	}
	return 1
}

// ExpiresAt is when a finished job's media may go; zero for never (no
// TTL, not finished, or already expired).
func (j *Job) ExpiresAt() time.Time {
	if j.TTL <= 0 || !j.State.Terminal() || j.FinishedAt.IsZero() || !j.ExpiredAt.IsZero() {
		return time.Time{}
	}
	return j.FinishedAt.Add(j.TTL)
}

// Webhook delivery states.
const (
	WebhookPending   = "pending"
	WebhookDelivered = "delivered"
	WebhookFailed    = "failed" // given up
)

// WebhookStatus is where the delivery of a job's callback stands.
type WebhookStatus struct {
	State         string    `json:"state"`
	Attempts      int       `json:"attempts"`
	LastError     string    `json:"last_error,omitempty"`
	LastAttemptAt time.Time `json:"last_attempt_at,omitzero"`
	DeliveredAt   time.Time `json:"delivered_at,omitzero"`
}

// Chunk is one keyframe-aligned piece of the source and what became of it.
// JobID is set in the state's own records and empty in command bodies.
type Chunk struct {
	JobID     string    `json:"job,omitempty"`
	Index     int       `json:"index"`
	Start     float64   `json:"start"`
	Duration  float64   `json:"duration"`
	Frames    int       `json:"frames"`
	Source    BlobRef   `json:"source"`
	Outputs   []BlobRef `json:"outputs,omitempty"` // one per rendition, in Job.Renditions order
	EncodedBy string    `json:"encoded_by,omitempty"`
	Attempts  int       `json:"attempts"`
	RunningOn string    `json:"running_on,omitempty"` // node of the current assignment
	// Thumbs is the encode's storyboard frames (transcoder.ThumbsFile),
	// kept like Outputs until packaging; zero for chunks encoded before
	// thumbnails existed.
	Thumbs BlobRef `json:"thumbs,omitzero"`
}

// TaskKind is the kind of work a task does.
type TaskKind string

const (
	TaskSplit   TaskKind = "split"   // probe-checked source → chunks (runs where the source is)
	TaskAudio   TaskKind = "audio"   // source audio → one AAC blob per job (every kept track)
	TaskEncode  TaskKind = "encode"  // one chunk → every rendition
	TaskPackage TaskKind = "package" // encoded chunks + audio → HLS, DASH, MP4
)

// TaskState is a task's scheduling state.
type TaskState string

const (
	TaskPending  TaskState = "pending"
	TaskAssigned TaskState = "assigned"
	TaskDone     TaskState = "done"
	TaskFailed   TaskState = "failed"
)

// Task is a unit of work the leader assigns to one node.
type Task struct {
	ID       string    `json:"id"` // jobID + "/" + kind [+ "/" + chunk]
	JobID    string    `json:"job_id"`
	Kind     TaskKind  `json:"kind"`
	Chunk    int       `json:"chunk"` // for TaskEncode
	State    TaskState `json:"state"`
	Node     string    `json:"node,omitempty"` // assignee (node name)
	Term     uint64    `json:"term,omitempty"` // leader term of the assignment
	Attempt  int       `json:"attempt"`        // increments on every assignment
	Failures int       `json:"failures"`
	Error    string    `json:"error,omitempty"`     // last failure
	FailedOn string    `json:"failed_on,omitempty"` // node of the last counted failure
	// Duration is the media duration the task covers, for leases and progress.
	Duration float64 `json:"duration"`
	// Lost counts the runs in a row that found the input gone (log version
	// 2; see TaskFailure.Lost).
	Lost int `json:"lost,omitempty"`
}
