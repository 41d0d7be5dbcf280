package cluster

import "sync/atomic"

// TestHooks let tests stop the blob store at the points where storing a
// blob again and deleting it meet, to drive those interleavings one way
// or the other. Production code never sets them; tests do (unit tests,
// and cmd/gosty's TestMain in the node processes its tests start, which
// run the test binary).
type TestHooks struct {
	// StoredAgain is called when a store (Put, PutFile, PutBytes,
	// Receive, a pull) finds the blob already stored, before it refreshes
	// it.
	StoredAgain func(hash string)
	// LockWait is called when a store or a delete has to wait for the
	// blob's lock (someone else is storing or deleting it).
	LockWait func(hash string)
}

var testHooks atomic.Pointer[TestHooks]

// SetTestHooks installs h (nil removes them). For tests only.
func SetTestHooks(h *TestHooks) { testHooks.Store(h) }

func hookStoredAgain(hash string) {
	if h := testHooks.Load(); h != nil && h.StoredAgain != nil {
		h.StoredAgain(hash)
	}
}

func hookLockWait(hash string) {
	if h := testHooks.Load(); h != nil && h.LockWait != nil {
		h.LockWait(hash)
	}
}
