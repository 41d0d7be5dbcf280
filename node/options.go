package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/gosty/gosty/transcoder"
)

// jobOptions is the `options` field of an upload: the transcoder's options
// plus the job-level policy the cluster keeps (callback). Unknown fields
// are an error, as in transcoder.ParseOptions.
type jobOptions struct {
	transcoder.Options
	CallbackURL string `json:"callback_url,omitempty"`
}

// parseJobOptions decodes and checks the options of an upload.
func parseJobOptions(raw []byte) (jobOptions, error) {
	var o jobOptions
	if len(bytes.TrimSpace(raw)) == 0 {
		return o, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		return jobOptions{}, fmt.Errorf("options: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return jobOptions{}, errors.New("options: trailing data after the JSON object")
	}
	// The transcoder part goes through the transcoder's own parser, so its
	// checks and normalization apply unchanged.
	tb, err := json.Marshal(o.Options)
	if err != nil {
		return jobOptions{}, err
	}
	if o.Options, err = transcoder.ParseOptions(tb); err != nil {
		return jobOptions{}, err
	}
	return o, nil
}
