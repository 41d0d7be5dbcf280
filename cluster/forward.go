package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Forwarder commits commands from any node: on the leader directly, on a
// follower by forwarding to the leader's internal API and then waiting
// until the entry is applied here, so the caller reads its own write.
type Forwarder struct {
	Store   *Store
	Members *Membership
	Peers   *Peers
}

// Propose commits op with body and returns the FSM's verdict. While there
// is no reachable leader (an election, say) it retries until ctx ends or
// 15 s pass. A retried command can come back stale or conflicting if an
// earlier try did commit; callers treat those verdicts accordingly.
func (f *Forwarder) Propose(ctx context.Context, op Op, body any) error {
	data, err := EncodeCommandV(f.Store.FSM().LogVersion(), op, time.Now(), body)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(15 * time.Second)
	backoff := 50 * time.Millisecond
	for {
		err := f.once(ctx, data)
		if err == nil || !retryable(err) || time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("propose %s: %w", op, err)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("propose %s: %w (last error: %v)", op, ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

func (f *Forwarder) once(ctx context.Context, data []byte) error {
	if f.Store.IsLeader() {
		_, err := f.Store.ApplyEncoded(ctx, data)
		return err
	}
	leaderID, _ := f.Store.Leader()
	if leaderID == "" {
		return fmt.Errorf("%w: no leader known", ErrNotLeader)
	}
	m, ok := f.Members.ByID(leaderID)
	if !ok || m.Meta.Internal == "" {
		return fmt.Errorf("%w: leader %s not in gossip", ErrNotLeader, leaderID)
	}
	idx, err := f.Peers.Propose(ctx, m.Meta.Internal, data)
	if err != nil {
		return err
	}
	return f.Store.WaitApplied(ctx, idx)
}

// retryable: no leader, or the leader could not be reached. FSM verdicts
// (stale, invalid, ...) are final.
func retryable(err error) bool {
	switch {
	case errors.Is(err, ErrNotLeader):
		return true
	case errors.Is(err, ErrStale), errors.Is(err, ErrInvalid), errors.Is(err, ErrConflict),
		errors.Is(err, ErrNotFound), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	}
	return true // transport errors
}
