package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// committer is the leader's one way into the log: every command proposed on
// this node while it leads (its own, and those forwarded by followers)
// goes through one loop, which commits whatever queued up while the
// previous entry was being committed as a single batch entry (log version
// 2), together with what the scheduler plans on top of it. A task result
// and the assignment that fills the slot it frees thus cost one entry, and
// under load many results share one. Before the cluster writes version 2,
// the same loop proposes each command as an entry of its own.
type committer struct {
	store *Store
	log   *slog.Logger

	mu    sync.Mutex
	queue []*proposal
	wake  chan struct{}

	plan atomic.Pointer[Planner]
}

// Planner is what the leader's scheduler adds to an entry. Plan, given the
// state and the commands about to be committed, returns the commands to
// commit after them (task reclaims, rewinds, assignments); it runs under
// the FSM's read lock and must not block. Applied is told each planned
// command's verdict once its entry is committed (err nil: it took effect).
type Planner struct {
	Plan    func(st *State, queued []Command) []Command
	Applied func(c Command, err error)
}

type proposal struct {
	cmd  Command
	data []byte
	done chan commitResult
}

type commitResult struct {
	index uint64
	err   error
}

func newCommitter(s *Store, log *slog.Logger) *committer {
	return &committer{store: s, log: log.With("component", "committer"), wake: make(chan struct{}, 1)}
}

// setPlanner installs (or, with nil, removes) the scheduler's planner.
func (c *committer) setPlanner(p *Planner) {
	c.plan.Store(p)
	if p != nil {
		c.kick()
	}
}

// kick asks for a planning round even with nothing queued.
func (c *committer) kick() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// propose queues one encoded command and waits for its verdict.
func (c *committer) propose(ctx context.Context, cmd Command, data []byte) (uint64, error) {
	p := &proposal{cmd: cmd, data: data, done: make(chan commitResult, 1)}
	c.mu.Lock()
	c.queue = append(c.queue, p)
	c.mu.Unlock()
	c.kick()
	select {
	case r := <-p.done:
		return r.index, r.err
	case <-ctx.Done():
		// The entry may still commit; the caller cannot know.
		return 0, ctx.Err()
	}
}

// run commits until ctx ends.
func (c *committer) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			c.failQueued(fmt.Errorf("%w: shutting down", ErrNotLeader))
			return
		case <-c.wake:
		}
		for c.round(ctx) {
			if ctx.Err() != nil {
				break
			}
		}
	}
}

// round commits one entry; it reports whether another round should follow
// at once (more queued, or the entry changed something the planner may
// act on).
func (c *committer) round(ctx context.Context) bool {
	s := c.store
	if !s.IsLeader() {
		c.failQueued(ErrNotLeader)
		return false
	}
	c.mu.Lock()
	n := min(len(c.queue), MaxBatch)
	items := c.queue[:n:n]
	c.queue = c.queue[n:]
	more := len(c.queue) > 0
	c.mu.Unlock()

	cmds := make([]Command, len(items))
	for i, p := range items {
		cmds[i] = p.cmd
	}
	var extra []Command
	plan := c.plan.Load()
	if plan != nil {
		s.fsm.Read(func(st *State) { extra = plan.Plan(st, cmds) })
		if room := MaxBatch - len(cmds); len(extra) > room {
			extra = extra[:room]
			more = true
		}
	}
	if len(items) == 0 && len(extra) == 0 {
		return more
	}
	version := s.fsm.LogVersion()
	var results []commitResult
	if version >= LogV2 && len(items)+len(extra) > 1 {
		results = c.commitBatch(ctx, append(cmds, extra...))
	} else {
		results = c.commitEach(ctx, items, extra, version)
	}
	applied := false
	for i, r := range results {
		if i < len(items) {
			items[i].done <- r
			applied = applied || r.err == nil
			continue
		}
		if plan != nil && plan.Applied != nil {
			plan.Applied(extra[i-len(items)], r.err)
		}
		applied = applied || r.err == nil
	}
	return more || (applied && len(extra) > 0) || (applied && len(items) > 0)
}

// commitBatch commits cmds as one batch entry.
func (c *committer) commitBatch(ctx context.Context, cmds []Command) []commitResult {
	out := make([]commitResult, len(cmds))
	data, err := encodeBatch(cmds)
	if err == nil {
		var f raft.ApplyFuture
		f, err = c.store.applyRaw(ctx, data)
		if err == nil {
			switch res := f.Response().(type) {
			case BatchResult:
				for i := range out {
					out[i] = commitResult{index: f.Index()}
					if i < len(res.Errs) {
						out[i].err = res.Errs[i]
					}
				}
				return out
			case error:
				err = res
			default:
				err = fmt.Errorf("batch: unexpected answer %T", res)
			}
		}
	}
	for i := range out {
		out[i] = commitResult{err: err}
	}
	return out
}

// commitEach proposes every command as its own entry (log version 1, or a
// lone command), keeping their order.
func (c *committer) commitEach(ctx context.Context, items []*proposal, extra []Command, version int) []commitResult {
	futures := make([]raft.ApplyFuture, 0, len(items)+len(extra))
	errs := make([]error, 0, cap(futures))
	for _, p := range items {
		futures = append(futures, c.store.raft.Apply(p.data, timeoutOf(ctx)))
		errs = append(errs, nil)
	}
	for _, cmd := range extra {
		cmd.V = min(cmd.V, max(version, cmd.Op.minVersion()))
		data, err := json.Marshal(cmd)
		if err != nil {
			futures, errs = append(futures, nil), append(errs, err)
			continue
		}
		futures = append(futures, c.store.raft.Apply(data, timeoutOf(ctx)))
		errs = append(errs, nil)
	}
	out := make([]commitResult, len(futures))
	for i, f := range futures {
		if errs[i] != nil {
			out[i] = commitResult{err: errs[i]}
			continue
		}
		if err := waitFuture(ctx, f); err != nil {
			out[i] = commitResult{err: raftError(err)}
			continue
		}
		out[i] = commitResult{index: f.Index()}
		if res, ok := f.Response().(error); ok && res != nil {
			out[i].err = res
		}
	}
	return out
}

func encodeBatch(cmds []Command) ([]byte, error) {
	body, err := json.Marshal(Batch{Cmds: cmds})
	if err != nil {
		return nil, fmt.Errorf("encode batch: %w", err)
	}
	return json.Marshal(Command{V: LogV2, Op: OpBatch, At: time.Now().UTC(), Body: body})
}

func (c *committer) failQueued(err error) {
	c.mu.Lock()
	q := c.queue
	c.queue = nil
	c.mu.Unlock()
	for _, p := range q {
		p.done <- commitResult{err: err}
	}
}

// raftError maps raft's leadership errors to ErrNotLeader.
func raftError(err error) error {
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
		return fmt.Errorf("%w: %v", ErrNotLeader, err)
	}
	return err
}
