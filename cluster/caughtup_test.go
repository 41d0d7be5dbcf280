package cluster

import (
	"context"
	"testing"
)

// TestCaughtUp: on a leader Ready takes one barrier for its term and
// remembers it; after the store is shut down (not leading) it says no.
func TestCaughtUp(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	c := CaughtUp{Store: s}
	ctx := context.Background()
	if !c.Ready(ctx) || c.term != s.Term() {
		t.Fatalf("a leader is not ready: term %d, store term %d", c.term, s.Term())
	}
	if !c.Ready(ctx) {
		t.Fatal("not ready the second time in the same term")
	}
	s.Close()
	if c.Ready(ctx) || c.term != 0 {
		t.Fatalf("ready after the store closed (term %d)", c.term)
	}
}
