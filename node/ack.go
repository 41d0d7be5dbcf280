package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/cluster/peerproto"
	"github.com/gosty/gosty/cluster/replica"
)

// Acknowledged uploads. An upload (a POST, or the PATCH that completes a
// resumable upload) is answered only once ackNeed nodes, this one
// included, hold its source fsynced and verified, and the job.submit
// entry names them all as holders: losing any disk the moment after the
// answer loses nothing.
//
// The copies are made while the upload streams in: every byte read from
// the client goes to the local blob store and, through
// cluster.Peers.Stream, to the other nodes. Those are chosen like the
// replicator chooses (alive, not leaving, running the incarnation the log
// knows for their name; ranked by rendezvous hashing, here of the job ID
// since the content's hash is not known yet). Once the last byte is stored
// here the streams end with the blob's size and hash, and each node
// installs its copy only if it matches: the wait is the peers' fsync, not
// a second transfer, and it overlaps the probe. A node that fails, or
// takes no bytes for ackStall, is dropped from the stream; after the
// upload the stored blob is streamed to the next nodes in rank (by its
// hash, as the replicator ranks) instead, within ackWait plus the time the
// bytes take at ackMinRate. A streamed copy is pinned on its node for
// ackHold, taken as it is stored, so that no collector removes it before
// the job that names it commits (and is applied there: a node more than
// ackHold behind the log has only the grace).
//
// How many: --ack-replicas when set, never lowered; by default the
// replication factor capped by the nodes alive, counted when the upload
// starts and again when its copies are done (so that a node that died
// meanwhile lowers the bar once gossip has seen it go, and a lone node
// takes uploads at all). Too few copies answer 503 insufficient_replicas
// and commit nothing; the bytes already stored, here and on peers, are
// referenced by nothing and the collectors delete them after --gc-grace
// (the streamed ones once their pin lapses too).
const (
	ackStall   = 10 * time.Second
	ackWait    = 30 * time.Second
	ackMinRate = 8 << 20 // bytes a second
	ackHold    = 10 * time.Minute
)

// ackNeed is how many nodes, this one included, must hold an upload's
// source before it is acknowledged: ack when set, else the replication
// factor capped by the live nodes (at least this one).
func ackNeed(ack, replicas, live int) int {
	if ack > 0 {
		return ack
	}
	return max(min(replicas, live), 1)
}

// Outcomes of gosty_upload_ack_seconds.
const (
	ackOK     = "ok"     // as many copies as --ack-replicas (or the replication factor) asks
	ackFewer  = "fewer"  // accepted with fewer: fewer nodes were alive
	ackFailed = "failed" // answered 503
)

// ackOutcome names how an upload's acknowledgement went: held copies (this
// one included) against what was needed and what the configuration asks
// for when every node is alive.
func ackOutcome(held, need, ack, replicas int) string {
	switch {
	case held < need:
		return ackFailed
	case held < ackNeed(ack, replicas, replicas):
		return ackFewer
	}
	return ackOK
}

// copyTarget is one node an upload is copied to.
type copyTarget struct {
	name   string
	stream *cluster.BlobStream // nil once given up
	err    error
}

// copies are one upload's copies to other nodes. Read tees the upload
// into them (from the one goroutine that stores it); finish ends them.
type copies struct {
	n       *Node
	logger  *slog.Logger
	ctx     context.Context
	cancel  context.CancelFunc
	r       io.Reader
	need    int
	targets []*copyTarget
	tried   map[string]bool
}

// liveNodes counts the nodes that can hold a copy now, this one included.
func (n *Node) liveNodes() (map[string]bool, int) {
	alive := n.aliveNames()
	live := len(alive)
	if !alive[n.cfg.Name] {
		live++
	}
	return alive, live
}

// startCopies opens the streams of an upload to the nodes ranked first
// for key (the job ID) and returns the reader that feeds them from body.
// The copies end with finish, or with abort (always called: it stops
// whatever is left).
func (n *Node) startCopies(ctx context.Context, key string, body io.Reader) *copies {
	ctx, cancel := context.WithCancel(ctx)
	alive, live := n.liveNodes()
	c := &copies{n: n, logger: n.logger.With("job", key), ctx: ctx, cancel: cancel, r: body,
		need: ackNeed(n.cfg.AckReplicas, n.cfg.Replicas, live), tried: map[string]bool{n.cfg.Name: true}}
	for _, name := range replica.RankTargets(key, alive, c.tried) {
		if len(c.targets) >= c.need-1 {
			break
		}
		c.tried[name] = true
		t := &copyTarget{name: name}
		c.targets = append(c.targets, t)
		addr := n.internalAddr(name)
		if addr == "" {
			t.err = fmt.Errorf("%s: not in gossip", name)
			continue
		}
		if t.stream, t.err = n.peers.Stream(ctx, addr, peerproto.ReasonReplicate, ackStall); t.err != nil {
			t.stream = nil
		}
	}
	return c
}

// internalAddr is a member's internal API address ("" when unknown).
func (n *Node) internalAddr(name string) string {
	if m, ok := n.members.Member(name); ok {
		return m.Meta.Internal
	}
	return ""
}

// Read reads the upload and hands what it read to every stream still
// going; a stream that fails is dropped (finish makes up for it).
func (c *copies) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	if k > 0 {
		for _, t := range c.targets {
			if t.stream == nil {
				continue
			}
			if _, werr := t.stream.Write(p[:k]); werr != nil {
				c.logger.Warn("copying an upload while it streams failed; another node takes the copy after the upload",
					"to", t.name, "err", werr)
				t.err, t.stream = werr, nil
			}
		}
	}
	return k, err
}

// abort stops the copies still going; their nodes store nothing.
func (c *copies) abort() { c.cancel() }

// finish ends the copies of ref, stored here, and sends ref to other
// nodes in place of the copies that failed. It returns the other nodes
// that hold ref (sorted), or an error wrapping cluster.ErrTooFewCopies
// (and nothing else: its message says why) when fewer than ackNeed nodes
// do.
func (c *copies) finish(ref cluster.BlobRef) ([]string, error) {
	n := c.n
	start := time.Now()
	var (
		mu   sync.Mutex
		held []string
		why  []string
		wg   sync.WaitGroup
	)
	note := func(name string, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err == nil {
			held = append(held, name)
			return
		}
		why = append(why, fmt.Sprintf("%s: %v", name, err))
	}
	wctx, cancel := context.WithTimeout(c.ctx, ackWait)
	for _, t := range c.targets {
		if t.stream == nil {
			note(t.name, t.err)
			continue
		}
		wg.Go(func() { note(t.name, t.stream.Close(wctx, ref)) })
	}
	wg.Wait()
	cancel()

	alive, live := n.liveNodes()
	need := min(c.need, ackNeed(n.cfg.AckReplicas, n.cfg.Replicas, live))
	if need-1 > len(held) {
		// Send the stored blob to the next nodes in rank (by its hash,
		// as the replicator ranks), a batch at a time.
		pctx, cancel := context.WithTimeout(c.ctx, ackWait+time.Duration(ref.Size/ackMinRate)*time.Second)
		defer cancel()
		cands := replica.RankTargets(ref.Hash, alive, c.tried)
		for missing := need - 1 - len(held); missing > 0 && len(cands) > 0 && pctx.Err() == nil; missing = need - 1 - len(held) {
			batch := cands[:min(missing, len(cands))]
			cands = cands[len(batch):]
			for _, name := range batch {
				c.tried[name] = true
				wg.Go(func() {
					addr := n.internalAddr(name)
					if addr == "" {
						note(name, fmt.Errorf("not in gossip"))
						return
					}
					note(name, n.streamCopy(pctx, ref, addr))
				})
			}
			wg.Wait()
		}
		_, live = n.liveNodes()
		need = min(need, ackNeed(n.cfg.AckReplicas, n.cfg.Replicas, live))
	}
	outcome := ackOutcome(1+len(held), need, n.cfg.AckReplicas, n.cfg.Replicas)
	if c.ctx.Err() != nil {
		// The upload failed otherwise (bad media, the client left): not
		// the copies' doing.
		return nil, fmt.Errorf("copies of %s: %w", ref.Hash, c.ctx.Err())
	}
	n.metrics.ackSeconds.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
	sort.Strings(held)
	if outcome == ackFailed {
		if len(why) == 0 {
			why = append(why, fmt.Sprintf("%d node(s) alive and not leaving", live))
		}
		c.logger.Warn("upload refused: too few copies", "blob", ref.Hash, "held_by", held, "need", need, "errors", why)
		return nil, fmt.Errorf("%w: the upload is stored on %d of the %d nodes that must hold it before it is acknowledged (%s): %s; nothing was committed, retry later",
			cluster.ErrTooFewCopies, 1+len(held), need, n.ackSetting(), strings.Join(why, "; "))
	}
	if len(why) > 0 || outcome != ackOK {
		c.logger.Info("upload copied", "blob", ref.Hash, "held_by", held, "need", need, "outcome", outcome,
			"seconds", time.Since(start).Seconds(), "errors", why)
	}
	return held, nil
}

// streamCopy sends a stored blob to the node at addr as a stream, so that
// the copy is pinned there like those streamed during the upload (a push
// lands unpinned, kept only by the grace until its job commits); a node
// of an older release, which takes no streams, gets a push.
func (n *Node) streamCopy(ctx context.Context, ref cluster.BlobRef, addr string) error {
	f, err := n.blobs.Open(ref.Hash)
	if err != nil {
		return err
	}
	defer f.Close()
	s, err := n.peers.Stream(ctx, addr, peerproto.ReasonReplicate, ackStall)
	if err != nil {
		return err
	}
	if _, err = io.Copy(s, f); err == nil {
		err = s.Close(ctx, ref)
	} else {
		s.Abort()
	}
	if errors.Is(err, cluster.ErrNotFound) { // no such route
		return n.peers.Push(ctx, ref, addr, peerproto.ReasonReplicate)
	}
	return err
}

// ackSetting describes --ack-replicas for messages.
func (n *Node) ackSetting() string {
	if n.cfg.AckReplicas > 0 {
		return fmt.Sprintf("--ack-replicas %d", n.cfg.AckReplicas)
	}
	return fmt.Sprintf("the replication factor %d, capped by the nodes alive", n.cfg.Replicas)
}
