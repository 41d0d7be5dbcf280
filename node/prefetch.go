package node

// Pipelining, the worker's side: the leader may assign a node a few tasks
// beyond its slots (cluster.Worker.Queue). The worker pulls such a
// queued task's input while its current encodes run, and starts it the
// moment a slot frees: the next encode no longer waits for the result of
// the last one to be committed and the new assignment to reach it.

import (
	"context"

	"github.com/gosty/gosty/cluster"
)

// prefetch is the pull of one queued task's input. It lives in
// worker.queued from the reconcile that sees the assignment waiting until
// the task starts (input takes it) or the assignment goes away (canceled).
type prefetch struct {
	attempt int
	ref     cluster.BlobRef
	cancel  context.CancelFunc
	done    chan struct{} // closed when the pull ended; then pulled and err are set
	pulled  bool          // the copy came from a peer: the task's result records it
	err     error
}

// ready reports whether the pull ended well.
func (p *prefetch) ready() bool {
	select {
	case <-p.done:
		return p.err == nil
	default:
		return false
	}
}

// startPrefetch pulls a queued task's input under ctx (Run's); w.mu is held.
func (w *worker) startPrefetch(ctx context.Context, t cluster.Task, ref cluster.BlobRef) {
	pctx, cancel := context.WithCancel(ctx)
	p := &prefetch{attempt: t.Attempt, ref: ref, cancel: cancel, done: make(chan struct{})}
	w.queued[t.ID] = p
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer cancel()
		_, p.pulled, p.err = w.fetch(pctx, ref, "prefetch")
		close(p.done)
		if p.err != nil && pctx.Err() == nil {
			// The task's own run fetches again and reports what it finds.
			w.logger.Info("prefetching a queued task's input failed", "task", t.ID, "blob", ref.Hash, "err", p.err)
		}
	}()
}

// takePrefetch hands a starting run the pull of its input, if one was made
// for this attempt: it waits for the pull to end (pulling the same bytes
// twice would waste the link) and says whether the copy came from a peer.
func (w *worker) takePrefetch(ctx context.Context, taskID string, attempt int, ref cluster.BlobRef) (pulled bool) {
	w.mu.Lock()
	p, ok := w.queued[taskID]
	if ok && p.attempt == attempt && p.ref.Hash == ref.Hash {
		delete(w.queued, taskID)
	} else {
		ok = false
	}
	w.mu.Unlock()
	if !ok {
		return false
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		p.cancel()
		<-p.done
	}
	return p.err == nil && p.pulled
}

// dropPrefetches cancels the pulls of assignments that are gone (mine:
// this node's assignments by task id and attempt; w.mu is held); a run
// that started takes its own (takePrefetch). A canceled pull leaves at most an unrecorded copy of a blob the
// log still references, which the collector removes with its job.
func (w *worker) dropPrefetches(mine map[string]int) {
	for id, p := range w.queued {
		if attempt, ok := mine[id]; !ok || attempt != p.attempt {
			p.cancel()
			delete(w.queued, id)
		}
	}
}
