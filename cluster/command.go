package cluster

import (
	"encoding/json"
	"fmt"
	"time"
)

// Log format versions. Every command carries the version it was written
// for, and the state records the version the cluster has agreed to write
// (State.Version), which only moves up, through a committed
// cluster.upgrade, once every server of the raft configuration advertises
// in gossip that it reads the newer one (MemberMeta.LogVersion). Until then
// every node writes the older shapes, so a rolling update never commits an
// entry an old node cannot apply.
//
//   - 1: the first release. A finished job keeps its chunks, tasks and one
//     blob record per published file; every stored or pulled copy is its own
//     blob.add.
//   - 2: a finished job is compacted (its published files named by one
//     manifest blob, its chunks and tasks dropped); task results carry the
//     copies their node pulled; several commands share one entry (batch);
//     job.compact, job.forget and cluster.upgrade exist.
//   - 3: URL ingest: job.ingest records a job whose source is being
//     fetched (state ingesting), job.ingest_take hands its fetch to another
//     node, job.ingest_fail ends one, and job.submit may replace such a
//     record (ingest.go); job.publish (publish.go).
const (
	LogV1 = 1
	LogV2 = 2
	LogV3 = 3
	// CommandVersion is the newest version this build reads and writes.
	// The FSM reads every version up to it, so a newer node replays an
	// older log; a command from a newer version is refused loudly rather
	// than half-applied.
	CommandVersion = LogV3
)

// Op names a state change in the job log.
type Op string

const (
	OpJobSubmit  Op = "job.submit"
	OpJobCancel  Op = "job.cancel"
	OpJobDelete  Op = "job.delete"
	OpTaskAssign Op = "task.assign"
	OpTaskDone   Op = "task.done"
	OpTaskFail   Op = "task.fail"
	OpBlobAdd    Op = "blob.add"
	OpBlobRemove Op = "blob.remove"
	OpNodeJoin   Op = "node.join"
	OpJobRewind  Op = "job.rewind"
	OpJobNotify  Op = "job.notify"
	OpJobExpire  Op = "job.expire"

	// Version 2.
	OpBatch          Op = "batch"
	OpJobCompact     Op = "job.compact"
	OpJobForget      Op = "job.forget"
	OpClusterUpgrade Op = "cluster.upgrade"

	// Version 3.
	OpJobIngest     Op = "job.ingest"
	OpJobIngestFail Op = "job.ingest_fail"
	OpJobIngestTake Op = "job.ingest_take"
	// OpJobPublish (version 3) records one attempt to publish a job's files to object
	// storage, or to remove them at expiry (publish.go).
	OpJobPublish Op = "job.publish"
)

// minVersion is the log version an op first appeared in: it is never
// encoded for an older one.
func (o Op) minVersion() int {
	switch o {
	case OpBatch, OpJobCompact, OpJobForget, OpClusterUpgrade:
		return LogV2
	case OpJobIngest, OpJobIngestFail, OpJobIngestTake, OpJobPublish:
		return LogV3
	}
	return LogV1
}

// Command is one entry of the replicated log. At is stamped by the proposer so
// that applying a command never reads the clock: every replica and every
// replay computes the same state.
type Command struct {
	V    int             `json:"v"`
	Op   Op              `json:"op"`
	At   time.Time       `json:"at"`
	Body json.RawMessage `json:"body"`
}

// EncodeCommand builds a log entry for op with body in the first log
// format (or the first one op exists in). Proposers that know the
// cluster's version use EncodeCommandV.
func EncodeCommand(op Op, at time.Time, body any) ([]byte, error) {
	return EncodeCommandV(LogV1, op, at, body)
}

// EncodeCommandV builds a log entry for op with body for log version v
// (raised to the version op first appeared in).
func EncodeCommandV(v int, op Op, at time.Time, body any) ([]byte, error) {
	c, err := NewCommand(v, op, at, body)
	if err != nil {
		return nil, err
	}
	return json.Marshal(c)
}

// NewCommand builds a command for op with body for log version v.
func NewCommand(v int, op Op, at time.Time, body any) (Command, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return Command{}, fmt.Errorf("encode %s: %w", op, err)
	}
	return Command{V: min(max(v, op.minVersion()), CommandVersion), Op: op, At: at.UTC(), Body: b}, nil
}

// DecodeCommand parses a log entry; it never panics on hostile bytes.
func DecodeCommand(data []byte) (Command, error) {
	var c Command
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("decode command: %w", err)
	}
	if c.V < 1 || c.V > CommandVersion {
		return c, fmt.Errorf("decode command: unsupported version %d (this build reads 1..%d)", c.V, CommandVersion)
	}
	if c.Op == "" {
		return c, fmt.Errorf("decode command: missing op")
	}
	if c.V < c.Op.minVersion() {
		return c, fmt.Errorf("decode command: %s needs log version %d, entry says %d", c.Op, c.Op.minVersion(), c.V)
	}
	return c, nil
}

// Batch is the body of OpBatch: commands applied one after the other in
// one log entry, each with its own verdict (FSM.Apply answers a
// BatchResult). The leader's committer puts what was proposed while the
// previous entry was being committed into one entry.
type Batch struct {
	Cmds []Command `json:"cmds"`
}

// MaxBatch bounds the commands in one batch entry.
const MaxBatch = 512

// BatchResult is FSM.Apply's answer for a batch: one verdict per command.
type BatchResult struct {
	Errs []error
}

// SubmitJob is the body of OpJobSubmit: a probed, planned job whose source
// blob is already stored on Job.Origin.
type SubmitJob struct {
	Job Job `json:"job"`
	// Holders are the other nodes that hold the source, fsynced and
	// verified, when the job is proposed (the copies an upload waits for
	// before it is acknowledged: --ack-replicas), recorded with the job
	// in one entry. Added to version 1 as an optional field: an entry
	// without it records the origin alone, and a node that predates it
	// ignores it (replication then makes the copies it does not see).
	Holders []string `json:"holders,omitempty"`
	// SubtitleHolders are the other nodes that hold every subtitle blob
	// of the job (Job.Subtitles) when it is proposed: the origin sends
	// them to the source's holders before the entry. Added to version 1
	// as an optional field, like Holders.
	SubtitleHolders []string `json:"subtitle_holders,omitempty"`
}

// MaxSubmitHolders bounds SubmitJob.Holders.
const MaxSubmitHolders = 16

// JobRef is the body of OpJobCancel, OpJobDelete, OpJobExpire and
// OpJobIngestFail.
type JobRef struct {
	JobID  string `json:"job_id"`
	Reason string `json:"reason,omitempty"`
}

// AssignTask is the body of OpTaskAssign. Attempt must be one more than the
// task's current attempt, which makes a duplicate proposal a no-op.
type AssignTask struct {
	TaskID  string `json:"task_id"`
	Node    string `json:"node"`
	Term    uint64 `json:"term"`
	Attempt int    `json:"attempt"`
}

// TaskResult is the body of OpTaskDone. Node and Attempt must match the
// current assignment, or the completion is stale and rejected.
type TaskResult struct {
	TaskID  string `json:"task_id"`
	Node    string `json:"node"`
	Attempt int    `json:"attempt"`

	Chunks  []Chunk            `json:"chunks,omitempty"`  // split
	Audio   BlobRef            `json:"audio,omitzero"`    // audio
	Outputs []BlobRef          `json:"outputs,omitempty"` // encode: one per rendition
	Files   map[string]BlobRef `json:"files,omitempty"`   // package
	HLS     string             `json:"hls,omitempty"`
	DASH    string             `json:"dash,omitempty"`
	MP4     map[string]string  `json:"mp4,omitempty"`
	// Quality is the package task's per-rendition quality report (in
	// Job.Renditions order). Added to version 1 as an optional field:
	// entries without it (older logs, or a packager that could not
	// measure) decode as no report, and a node that predates it ignores it.
	Quality []Quality `json:"quality,omitempty"`
	// Scores are an encode's scores of the quality windows that fall in
	// its chunk (transcoder.QualitySample over the job's chunks), which
	// the package task adds up instead of measuring them itself. Added to
	// versions 1 and 2 as an optional field: a node that predates it
	// ignores it, and a packager measures any window without a score.
	Scores []WindowScore `json:"quality_scores,omitempty"`

	// Version 2. Manifest replaces Files: the package task stores the list
	// of published files as one blob and reports it with the bytes they
	// add up to. Pulled lists the blobs the node copied from peers to run
	// the task, so their new copy is recorded in this entry rather than
	// in a blob.add of its own.
	Manifest  BlobRef   `json:"manifest,omitzero"`
	Published int64     `json:"published_bytes,omitempty"`
	Pulled    []BlobRef `json:"pulled,omitempty"`

	// Thumbnails, optional fields of both versions (a node that predates
	// them ignores them): the encode's bundle of storyboard frames, and
	// the package's poster and storyboard track (relative paths).
	Thumbs     BlobRef `json:"thumbs,omitzero"`
	Poster     string  `json:"poster,omitempty"`
	Storyboard string  `json:"storyboard,omitempty"`
}

// TaskFailure is the body of OpTaskFail. Permanent failures (bad media) fail
// the job at once; others are retried up to MaxTaskAttempts.
type TaskFailure struct {
	TaskID    string `json:"task_id"`
	Node      string `json:"node"`
	Attempt   int    `json:"attempt"`
	Reason    string `json:"reason"`
	Permanent bool   `json:"permanent,omitempty"`
	// Requeue puts the task back without counting a failure: the node
	// died or is leaving, which says nothing about the task.
	Requeue bool `json:"requeue,omitempty"`
	// Lost (version 2) says the task's input could not be found on any
	// node the log named: it is requeued (the leader may rewind the job to
	// make the input again), but only MaxLostInput times in a row before
	// the job fails with the reason.
	Lost bool `json:"lost,omitempty"`
}

// MaxLostInput is how many times a task may find its input lost before its
// job fails.
const MaxLostInput = 5

// BlobLocation is the body of OpBlobAdd and OpBlobRemove.
type BlobLocation struct {
	Blob BlobRef `json:"blob"`
	Node string  `json:"node"`
}

// NodeJoin is the body of OpNodeJoin: it records which node name a raft
// server ID belongs to, so that a node that comes back with a wiped data
// dir (a new ID under an old name) can have its old ID replaced.
type NodeJoin struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// JobRewind is the body of OpJobRewind: intermediate media of a running job
// were lost with the nodes that held them (encoded chunks and the audio are
// kept in one copy), so the work that made them is done again. Resplit
// starts the job over from its source, for when chunk sources are gone.
type JobRewind struct {
	JobID   string `json:"job_id"`
	Chunks  []int  `json:"chunks,omitempty"` // chunks whose encoded outputs are lost
	Audio   bool   `json:"audio,omitempty"`
	Resplit bool   `json:"resplit,omitempty"`
	Reason  string `json:"reason"`
}

// JobNotify is the body of OpJobNotify: the outcome of one webhook delivery
// attempt. Attempt must be one more than the attempts recorded, which makes
// a duplicate proposal a no-op. Delivered records a 2xx answer; GiveUp ends
// the delivery without one.
type JobNotify struct {
	JobID     string `json:"job_id"`
	Attempt   int    `json:"attempt"`
	Delivered bool   `json:"delivered,omitempty"`
	GiveUp    bool   `json:"give_up,omitempty"`
	Error     string `json:"error,omitempty"`
}

// JobCompact is the body of OpJobCompact: a job that finished under log
// version 1 becomes compact. For a done job the proposer has stored the
// manifest of its Outputs and names the nodes that hold it and every file
// it lists (Holders); a failed, canceled or expired job has no manifest.
type JobCompact struct {
	JobID    string   `json:"job_id"`
	Manifest BlobRef  `json:"manifest,omitzero"`
	Holders  []string `json:"holders,omitempty"`
}

// JobForget is the body of OpJobForget: finished jobs that fell out of the
// history window (--history) leave the state, as if deleted.
type JobForget struct {
	JobIDs []string `json:"job_ids"`
	Reason string   `json:"reason,omitempty"`
}

// MaxForget bounds the jobs one job.forget removes.
const MaxForget = 1000

// ClusterUpgrade is the body of OpClusterUpgrade: from this entry on, the
// cluster writes log version Version.
type ClusterUpgrade struct {
	Version int `json:"version"`
}
