package cluster

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Heartbeat is what a worker sends the leader every few seconds: the tasks
// it is running. It renews their leases; it is never written to the log.
type Heartbeat struct {
	Node  string     `json:"node"`
	Tasks []TaskBeat `json:"tasks"`
}

// TaskBeat is one running task in a heartbeat.
type TaskBeat struct {
	ID       string  `json:"id"`
	Attempt  int     `json:"attempt"`
	Progress float64 `json:"progress"`
}

// leases live only in the leader's memory (DESIGN.md): a new leader starts
// with none and grants every assignment a fresh lease, so a failover never
// takes a task away from a worker that is still on it.
type leases struct {
	mu sync.Mutex
	m  map[string]lease // by task id
}

type lease struct {
	node     string
	attempt  int
	expires  time.Time
	progress float64
}

func (l *leases) reset() {
	l.mu.Lock()
	l.m = map[string]lease{}
	l.mu.Unlock()
}

// renew extends the leases a heartbeat names, if they are still the
// current assignments; ttl gives each task's lease length.
func (l *leases) renew(hb Heartbeat, now time.Time, current func(id string) (node string, attempt int, ttl time.Duration, ok bool)) {
	// current reads the FSM: ask it before taking l.mu, so that the lock
	// order is always FSM first, leases second (readers of progress hold
	// the FSM's read lock while they ask us).
	fresh := map[string]lease{}
	for _, b := range hb.Tasks {
		node, attempt, ttl, ok := current(b.ID)
		if !ok || node != hb.Node || attempt != b.Attempt {
			continue // a stale run: let its lease lapse
		}
		fresh[b.ID] = lease{node: node, attempt: attempt, expires: now.Add(ttl), progress: b.Progress}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]lease{}
	}
	for id, ls := range fresh {
		l.m[id] = ls
	}
}

// check returns the assigned tasks whose lease ran out, granting a first
// lease to assignments it has not seen.
func (l *leases) check(assigned []*Task, now time.Time, ttl func(*Task) time.Duration) []*Task {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]lease{}
	}
	live := map[string]bool{}
	var expired []*Task
	for _, t := range assigned {
		live[t.ID] = true
		ls, ok := l.m[t.ID]
		if !ok || ls.attempt != t.Attempt || ls.node != t.Node {
			l.m[t.ID] = lease{node: t.Node, attempt: t.Attempt, expires: now.Add(ttl(t))}
			continue
		}
		if now.After(ls.expires) {
			expired = append(expired, t)
		}
	}
	for id := range l.m {
		if !live[id] {
			delete(l.m, id)
		}
	}
	return expired
}

// progress is the last reported progress of a task's current run.
func (l *leases) progress(id string) float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m[id].progress
}

// running returns the last reported progress of every leased task whose
// id starts with prefix.
func (l *leases) running(prefix string) map[string]float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]float64{}
	for id, ls := range l.m {
		if strings.HasPrefix(id, prefix) && ls.progress > 0 {
			out[id] = ls.progress
		}
	}
	return out
}

// Heartbeat renews the leases of a worker's running tasks. Only the
// leader takes heartbeats.
func (s *Scheduler) Heartbeat(_ context.Context, hb Heartbeat) error {
	if !s.store.IsLeader() {
		return fmt.Errorf("heartbeat: %w", ErrNotLeader)
	}
	s.leases.renew(hb, time.Now(), func(id string) (node string, attempt int, ttl time.Duration, ok bool) {
		s.store.FSM().Read(func(st *State) {
			if t, found := st.Task(id); found && t.State == TaskAssigned {
				node, attempt, ttl, ok = t.Node, t.Attempt, s.leaseTTL(t), true
			}
		})
		return
	})
	return nil
}

// leaseTTL is how long a task may go without a heartbeat: a base plus a
// share of the media duration it covers, since long tasks also have longer
// quiet moments (ffmpeg start, a slow first GOP).
func (s *Scheduler) leaseTTL(t *Task) time.Duration {
	return s.LeaseBase + time.Duration(t.Duration*float64(s.LeasePerMediaSecond))
}
