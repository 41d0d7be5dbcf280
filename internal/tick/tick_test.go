package tick

import (
	"context"
	"testing"
	"time"
)

// Every runs rounds until its context ends, then returns.
func TestEvery(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	rounds := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		Every(ctx, time.Millisecond, func() {
			if rounds++; rounds == 3 {
				cancel()
			}
		})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Every did not return after its context ended")
	}
	if rounds != 3 {
		t.Fatalf("%d rounds, want 3 (none after the cancel)", rounds)
	}
}
