package cluster

import (
	"errors"
	"strings"
	"syscall"
)

// Errors that callers (the HTTP API above all) map to responses.
var (
	ErrNotFound  = errors.New("not found")
	ErrNotLeader = errors.New("not the leader")
	ErrInvalid   = errors.New("invalid request")
	ErrConflict  = errors.New("conflict")
	ErrStale     = errors.New("stale assignment")
	// ErrNoSpace says a node's data volume has no room for more media
	// above its reserves (HTTP 507 insufficient_storage).
	ErrNoSpace = errors.New("insufficient storage")
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

// IsNoSpace reports whether err says a volume had no room: an admission
// refused (ErrNoSpace), ENOSPC or EDQUOT from a write, or an ffmpeg that
// said so in its words.
func IsNoSpace(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrNoSpace) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return true
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "no space left on device") || strings.Contains(msg, "disk quota exceeded")
}
