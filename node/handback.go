package node

// A worker giving assignments back (without counting a failure against
// them): all of them when the node drains, a waiting one when the node
// holds itself full. The leader places them again on a node with room.

import (
	"context"
	"time"

	"github.com/gosty/gosty/cluster"
)

// drain stops taking tasks, hands back at once the assignments still
// waiting for a slot, waits up to timeout for the running ones to finish,
// and hands the rest back to the leader (without counting a failure
// against them).
func (w *worker) drain(ctx context.Context, timeout time.Duration) {
	w.mu.Lock()
	w.draining = true
	var back []cluster.TaskFailure
	for id, attempt := range w.waiting {
		if w.running[id] == nil {
			back = append(back, w.handBack(id, attempt, "handed back: node "+w.name+" is shutting down"))
		}
	}
	w.mu.Unlock()
	w.handBackAll(ctx, back)
	deadline := time.Now().Add(timeout)
	for w.active() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond) // polling our own runs; they end on their own
	}
	w.mu.Lock()
	back = back[:0]
	for id, r := range w.running {
		r.cancel() // a canceled run reports nothing; the hand-back below does
		back = append(back, w.handBack(id, r.attempt, "handed back: node "+w.name+" is shutting down"))
	}
	w.mu.Unlock()
	w.handBackAll(ctx, back)
}

// handBack is the failure that gives an assignment back without counting
// against it.
func (w *worker) handBack(id string, attempt int, why string) cluster.TaskFailure {
	return cluster.TaskFailure{TaskID: id, Node: w.name, Attempt: attempt, Reason: why, Requeue: true}
}

// giveBack hands a waiting assignment back once (w.mu is held); the
// leader places it again on a node with room.
func (w *worker) giveBack(ctx context.Context, t cluster.Task, why string) {
	if a, ok := w.given[t.ID]; ok && a == t.Attempt {
		return
	}
	w.given[t.ID] = t.Attempt
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		w.handBackAll(ctx, []cluster.TaskFailure{w.handBack(t.ID, t.Attempt, why)})
	}()
}

func (w *worker) handBackAll(ctx context.Context, back []cluster.TaskFailure) {
	for _, f := range back {
		if err := w.log.Propose(ctx, cluster.OpTaskFail, f); err != nil {
			w.logger.Warn("handing a task back failed", "task", f.TaskID, "err", err)
		} else {
			w.logger.Info("task handed back", "task", f.TaskID)
		}
	}
}
