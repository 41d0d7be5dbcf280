package cluster

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// reach records, while this node leads, the servers raft's heartbeats fail
// to reach (raft's FailedHeartbeat and ResumedHeartbeat observations).
//
// Gossip takes seconds to call a crashed node dead (longer still without
// --fast); the leader's heartbeats, every tenth of the heartbeat timeout,
// fail at once against a node whose process is gone. A decision that
// counts healthy voters (quorum.go) must not count a voter that crashed a
// moment ago, so on the leader a voter is healthy only if raft reaches it
// too.
type reach struct {
	mu      sync.Mutex
	failing map[raft.ServerID]time.Time // last failed heartbeat
	leading time.Time                   // when this node last became leader
}

// reachStale is how long a failed heartbeat counts without another: raft
// retries within half a heartbeat timeout plus the transport's 10 s
// timeout, so a server that stays unreachable is seen failing again
// sooner, and an entry a lost observation left behind does not last.
const reachStale = 20 * time.Second

func (r *reach) note(o any, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch o := o.(type) {
	case raft.FailedHeartbeatObservation:
		if r.failing == nil {
			r.failing = map[raft.ServerID]time.Time{}
		}
		r.failing[o.PeerID] = now
	case raft.ResumedHeartbeatObservation:
		delete(r.failing, o.PeerID)
	case raft.PeerObservation:
		if o.Removed {
			delete(r.failing, o.Peer.ID)
		}
	case raft.RaftState:
		clear(r.failing) // a new leadership starts with fresh heartbeats
		if o == raft.Leader {
			r.leading = now
		}
	}
}

// ledFor is how long this node has led (by the last leadership it
// observed).
func (r *reach) ledFor(now time.Time) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return now.Sub(r.leading)
}

// unreached reports whether heartbeats to id failed recently and have not
// resumed since.
func (r *reach) unreached(id raft.ServerID, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.failing[id]
	return ok && now.Sub(at) < reachStale
}

// watchReach feeds raft's heartbeat observations to s.reach until ctx ends.
func (s *Store) watchReach(ctx context.Context) {
	ch := make(chan raft.Observation, 256)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.FailedHeartbeatObservation, raft.ResumedHeartbeatObservation, raft.PeerObservation, raft.RaftState:
			return true
		}
		return false
	})
	s.raft.RegisterObserver(obs)
	defer s.raft.DeregisterObserver(obs)
	for {
		select {
		case <-ctx.Done():
			return
		case o := <-ch:
			s.reach.note(o.Data, time.Now())
		}
	}
}

// Unreached reports whether this node leads and raft's heartbeats to the
// server fail.
func (s *Store) Unreached(id string) bool {
	return s.IsLeader() && s.reach.unreached(raft.ServerID(id), time.Now())
}

// settleReach waits, on a leader elected moments ago, until its heartbeats
// have had a heartbeat timeout to find the servers they cannot reach
// (they go out ten times as often): before that, Unreached knows nothing.
func (s *Store) settleReach(ctx context.Context) error {
	wait := s.raft.ReloadableConfig().HeartbeatTimeout - s.reach.ledFor(time.Now())
	if wait <= 0 {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(wait):
		return nil
	}
}
