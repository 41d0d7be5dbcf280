package node

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/internal/strictjson"
	"github.com/gosty/gosty/transcoder"
)

// jobOptions is the `options` field of an upload: the transcoder's options
// plus the job-level policy the cluster keeps (callback). Unknown fields
// are an error, as in transcoder.ParseOptions.
type jobOptions struct {
	transcoder.Options
	CallbackURL string `json:"callback_url,omitempty"`
	// TTL is how long the job's media are kept once it finishes, a Go
	// duration ("72h", "30m"); "0" keeps them forever; absent: --retention.
	TTL string `json:"ttl,omitempty"`
	// KeepSource false drops the source as soon as the job is done.
	KeepSource *bool `json:"keep_source,omitempty"`
	// Priority is high, normal (default) or low.
	Priority string `json:"priority,omitempty"`
	// ClientID names the submitter for fair sharing when the cluster has
	// no API tokens (with tokens, the token used names it).
	ClientID string `json:"client_id,omitempty"`
	// Publish is where the job's files are uploaded once it is done
	// (s3://bucket/prefix/; "none": not even to the node's --publish);
	// PublishExpire deletes them there when the job expires (publish.go).
	Publish       string `json:"publish,omitempty"`
	PublishExpire *bool  `json:"publish_expire,omitempty"`

	priority cluster.Priority

	ttl    time.Duration
	hasTTL bool
}

// MaxTTL bounds a job's ttl option.
const MaxTTL = 100 * 365 * 24 * time.Hour

// parseJobOptions decodes and checks the options of an upload.
func parseJobOptions(raw []byte) (jobOptions, error) {
	var o jobOptions
	if len(bytes.TrimSpace(raw)) == 0 {
		return o, nil
	}
	if err := strictjson.Decode(bytes.NewReader(raw), &o); err != nil {
		return jobOptions{}, fmt.Errorf("options: %w", err)
	}
	// The transcoder part gets the transcoder's own checks and
	// normalization, unchanged.
	var err error
	if o.Options, err = o.Options.Checked(); err != nil {
		return jobOptions{}, err
	}
	if o.priority, err = cluster.ParsePriority(o.Priority); err != nil {
		return jobOptions{}, err
	}
	if o.ClientID != "" && !validClientID(o.ClientID) {
		return jobOptions{}, errors.New("options: client_id: 1-64 letters, digits and . _ - @ :")
	}
	if o.TTL != "" {
		d, err := time.ParseDuration(o.TTL)
		if err != nil || d < 0 || d > MaxTTL {
			return jobOptions{}, fmt.Errorf("options: ttl %q: want a duration such as 72h or 30m (0 keeps forever)", o.TTL)
		}
		o.ttl, o.hasTTL = d, true
	}
	return o, nil
}

func validClientID(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-@:", r)
		if !ok {
			return false
		}
	}
	return s != ""
}
