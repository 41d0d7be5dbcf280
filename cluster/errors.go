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
