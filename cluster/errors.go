package cluster

import "errors"

// Errors that callers (the HTTP API above all) map to responses.
var (
	ErrNotFound  = errors.New("not found")
	ErrNotLeader = errors.New("not the leader")
	ErrInvalid   = errors.New("invalid request")
	ErrConflict  = errors.New("conflict")
	ErrStale     = errors.New("stale assignment")
)

// Invalid wraps err so that it matches ErrInvalid while its message stays
// the caller's own words (no "invalid request:" prefix in what users read).
func Invalid(err error) error { return invalidError{err} }

type invalidError struct{ err error }

func (e invalidError) Error() string   { return e.err.Error() }
func (e invalidError) Unwrap() []error { return []error{e.err, ErrInvalid} }
