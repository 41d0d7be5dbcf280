package node

import (
	"context"
	"sync"
	"time"
)

// Only the leader hears workers' heartbeats, so only it knows how far the
// chunks running on other nodes are. A follower asked for a job's progress
// fetches the leader's view over the internal API, and keeps it briefly so
// that clients polling through a load balancer do not each cost a request.
const (
	leaderProgressTTL     = time.Second
	leaderProgressTimeout = 500 * time.Millisecond
)

type progressCache struct {
	mu sync.Mutex
	m  map[string]progressEntry
}

type progressEntry struct {
	at    time.Time
	tasks map[string]float64
}

// leaderProgress returns the leader's last heartbeat progress of a job's
// running tasks (task id → fraction), or nil on the leader itself or when
// the leader cannot be asked.
func (n *Node) leaderProgress(jobID string) map[string]float64 {
	if n.store.IsLeader() {
		return nil
	}
	now := time.Now()
	c := &n.progress
	c.mu.Lock()
	if e, ok := c.m[jobID]; ok && now.Sub(e.at) < leaderProgressTTL {
		c.mu.Unlock()
		return e.tasks
	}
	c.mu.Unlock()

	var tasks map[string]float64
	leaderID, _ := n.store.Leader()
	if m, ok := n.members.ByID(leaderID); ok && m.Meta.Internal != "" {
		ctx, cancel := context.WithTimeout(context.Background(), leaderProgressTimeout)
		var err error
		tasks, err = n.peers.Progress(ctx, m.Meta.Internal, jobID)
		cancel()
		if err != nil {
			n.logger.Debug("asking the leader for progress failed", "job", jobID, "err", err)
		}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]progressEntry{}
	}
	for id, e := range c.m {
		if now.Sub(e.at) > 10*leaderProgressTTL {
			delete(c.m, id)
		}
	}
	// A failure is remembered too: a leader that does not answer is not
	// asked again on every poll.
	c.m[jobID] = progressEntry{at: now, tasks: tasks}
	return tasks
}
