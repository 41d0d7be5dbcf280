package cluster

import "errors"

// Errors that callers (the HTTP API above all) map to responses.
var (
	ErrNotFound  = errors.New("not found")
	ErrNotLeader = errors.New("not the leader")
	ErrInvalid   = errors.New("invalid request")
	ErrConflict  = errors.New("conflict")
	ErrStale     = errors.New("stale assignment")
	// ErrTooFewCopies: an upload could not be stored on as many nodes as
	// must hold it before it is acknowledged (--ack-replicas); nothing was
	// committed, and a retry may succeed.
	ErrTooFewCopies = errors.New("too few copies")
)

// Invalid wraps err so that it matches ErrInvalid while its message stays
// the caller's own words (no "invalid request:" prefix in what users read).
func Invalid(err error) error { return invalidError{err} }

type invalidError struct{ err error }

func (e invalidError) Error() string   { return e.err.Error() }
func (e invalidError) Unwrap() []error { return []error{e.err, ErrInvalid} }
