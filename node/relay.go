package node

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/httpapi"
)

// RelayUpload sends a resumable-upload request to the node named owner,
// which holds the upload (httpapi.UploadRelay). The name comes from the
// upload's ID, that is from a client: it is only ever looked up among the
// gossip members, and the request goes to the internal address that
// member advertises, never to an address taken from the ID. A node that is
// not alive there is not tried (see ownerAbsent).
func (s service) RelayUpload(ctx context.Context, owner string, call cluster.UploadCall) (*http.Response, error) {
	n := s.n
	m, inGossip := n.members.Member(owner)
	if inGossip && m.State == cluster.StateAlive {
		if m.Meta.Internal == "" {
			return nil, fmt.Errorf("relay upload %s: node %s has no internal address in gossip", call.ID, owner)
		}
		resp, err := n.peers.RelayUpload(ctx, m.Meta.Internal, call)
		if err == nil && resp.StatusCode < 300 {
			if id := resp.Header.Get(httpapi.JobIDHeader); id != "" {
				n.waitJob(ctx, id, call.ID)
			}
		}
		return resp, err
	}
	inLog := false
	n.store.FSM().Read(func(st *cluster.State) { inLog = st.Incarnation(owner) != "" })
	err := ownerAbsent(m, inGossip, inLog, n.joined.Load(), n.started, time.Now(), n.cfg.DeadServerTimeout)
	return nil, fmt.Errorf("relay upload %s: node %s: %w", call.ID, owner, err)
}

// ownerAbsent says why an upload's node that is not alive in gossip (m,
// when inGossip) cannot take a relayed request, and whether the client
// should wait for it:
//
//   - a name neither gossip nor the log (inLog: it has a raft incarnation)
//     knows, once this node is in the cluster (joined), is
//     httpapi.ErrOwnerUnknown: no such node, no such upload (404);
//   - a node this node has not seen alive for deadTimeout
//     (--dead-server-timeout, after which the leader also gives up on it
//     as a raft server) is httpapi.ErrOwnerGone (410): counted from its
//     last change of state in gossip (it died or left), or, for a node
//     gossip does not know, from this node's start (started);
//   - otherwise it may come back with its data dir (a restart, a rolling
//     update): a plain error, answered 503 with Retry-After. So is every
//     absence when deadTimeout is 0 (the cluster waits for ever).
func ownerAbsent(m cluster.Member, inGossip, inLog, joined bool, started, now time.Time, deadTimeout time.Duration) error {
	if !inGossip && !inLog {
		if !joined {
			return fmt.Errorf("not known here yet: this node is not in the cluster yet")
		}
		return httpapi.ErrOwnerUnknown
	}
	state, since := cluster.MemberState("not in gossip"), started
	if inGossip {
		state, since = m.State, m.Since
	}
	if away := now.Sub(since); deadTimeout > 0 && away >= deadTimeout {
		return fmt.Errorf("%s for %v, longer than the dead server timeout (%v): %w",
			state, away.Round(time.Second), deadTimeout, httpapi.ErrOwnerGone)
	}
	return fmt.Errorf("%s (not alive)", state)
}

// relayJobWait bounds how long a relayed answer that names a job waits for
// this node to have the job (waitJob).
const relayJobWait = 5 * time.Second

// waitJob waits until this node's log has the job a relayed answer names
// (the last PATCH made it; a HEAD tells it): the owner committed it, but
// this node may not have applied it yet, and the client's next request
// (GET the job, on the same connection) comes here. Reads are local, so
// without the wait it could be told the job it was just given does not
// exist. Bounded: a job deleted since, or a node cut off from the leader,
// does not hold the answer up for longer than relayJobWait.
func (n *Node) waitJob(ctx context.Context, jobID, upload string) {
	ctx, cancel := context.WithTimeout(ctx, relayJobWait)
	defer cancel()
	fsm := n.store.FSM()
	for {
		changed := fsm.Changed()
		known := false
		fsm.Read(func(st *cluster.State) { _, known = st.Job(jobID) })
		if known {
			return
		}
		select {
		case <-ctx.Done():
			n.logger.Warn("a relayed upload answer names a job this node does not have (yet)",
				"upload", upload, "job", jobID, "waited", relayJobWait)
			return
		case <-changed:
		}
	}
}
