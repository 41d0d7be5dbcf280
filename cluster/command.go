package cluster

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/gosty/gosty/transcoder"
)

// CommandVersion is the newest command encoding this build writes. The FSM
// reads every version up to this one, so a newer node can replay an older log;
// a command from a newer version than it knows is refused loudly rather than
// half-applied.
const CommandVersion = 1

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
)

// Command is one entry of the replicated log. At is stamped by the proposer so
// that applying a command never reads the clock: every replica and every
// replay computes the same state.
type Command struct {
	V    int             `json:"v"`
	Op   Op              `json:"op"`
	At   time.Time       `json:"at"`
	Body json.RawMessage `json:"body"`
}

// EncodeCommand builds a log entry for op with body.
func EncodeCommand(op Op, at time.Time, body any) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", op, err)
	}
	return json.Marshal(Command{V: CommandVersion, Op: op, At: at.UTC(), Body: b})
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
	return c, nil
}

// SubmitJob is the body of OpJobSubmit: a probed, planned job whose source
// blob is already stored on Job.Origin.
type SubmitJob struct {
	Job Job `json:"job"`
}

// JobRef is the body of OpJobCancel, OpJobDelete and OpJobExpire.
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
	// Job.Renditions order). Added after command version 1 as an optional
	// field: entries without it (older logs, or a packager that could not
	// measure) decode as no report, and a node that predates it ignores it,
	// so CommandVersion stays 1.
	Quality []transcoder.Quality `json:"quality,omitempty"`
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
}

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
