package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/hashicorp/raft"
)

// CheckJoinVersion refuses a node that cannot read the log version the
// cluster writes (meta is the node's gossip metadata; ok false when gossip
// has not brought it here yet, and the node should ask again).
func (s *Store) CheckJoinVersion(name string, meta MemberMeta, ok bool) error {
	v := s.fsm.LogVersion()
	if v <= LogV1 {
		return nil // every release reads version 1
	}
	if !ok {
		return fmt.Errorf("join %s: %w: its gossip metadata has not arrived yet", name, ErrNotLeader)
	}
	if reads := meta.LogVersion(); reads < v {
		return fmt.Errorf("join %s: %w: the node reads log version %d but the cluster writes %d; run a newer release on it",
			name, ErrInvalid, reads, v)
	}
	return nil
}

// Join adds a node to the cluster as a non-voter; it runs on the leader.
// A node that comes back under an old name with a new ID (a wiped data
// dir is a new incarnation) first has its old ID removed, so the old one
// cannot count towards quorum or be elected.
func (s *Store) Join(ctx context.Context, req JoinRequest) error {
	if req.ID == "" || req.Name == "" || req.Addr == "" {
		return fmt.Errorf("join: %w: name, id and addr are required", ErrInvalid)
	}
	if !s.IsLeader() {
		return fmt.Errorf("join %s: %w", req.Name, ErrNotLeader)
	}
	servers, err := s.Configuration()
	if err != nil {
		return fmt.Errorf("join %s: %w", req.Name, err)
	}
	var stale []string
	s.fsm.Read(func(st *State) {
		for id, name := range st.nodes {
			if name == req.Name && id != req.ID {
				stale = append(stale, id)
			}
		}
	})
	timeout := timeoutOf(ctx)
	for _, srv := range servers {
		for _, old := range stale {
			if string(srv.ID) == old {
				s.log.Info("replacing an old incarnation", "node", req.Name, "old_id", old, "new_id", req.ID)
				if err := s.raft.RemoveServer(srv.ID, 0, timeout).Error(); err != nil {
					return fmt.Errorf("join %s: remove old id %s: %w", req.Name, old, err)
				}
			}
		}
	}
	known := false
	for _, srv := range servers {
		if string(srv.ID) == req.ID {
			known = true
			if string(srv.Address) != req.Addr {
				// Same server, new address: re-adding with the same suffrage updates it.
				var f raft.IndexFuture
				if srv.Suffrage == raft.Voter {
					f = s.raft.AddVoter(srv.ID, raft.ServerAddress(req.Addr), 0, timeout)
				} else {
					f = s.raft.AddNonvoter(srv.ID, raft.ServerAddress(req.Addr), 0, timeout)
				}
				if err := f.Error(); err != nil {
					return fmt.Errorf("join %s: update address: %w", req.Name, err)
				}
			}
		}
	}
	s.noteJoin(raft.ServerID(req.ID))
	if !known {
		s.log.Info("adding node as non-voter", "node", req.Name, "id", req.ID, "addr", req.Addr)
		if err := s.raft.AddNonvoter(raft.ServerID(req.ID), raft.ServerAddress(req.Addr), 0, timeout).Error(); err != nil {
			return fmt.Errorf("join %s: %w", req.Name, err)
		}
	}
	return s.Propose(ctx, OpNodeJoin, NodeJoin{ID: req.ID, Name: req.Name})
}

// RemoveRequest asks the leader to remove a departing server.
type RemoveRequest struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Status is this node's view of raft, for peers deciding whether a cluster
// exists and where its leader is.
func (s *Store) Status() RaftStatus {
	id, addr := s.Leader()
	return RaftStatus{
		HasState:   s.hadState || s.raft.LastIndex() > 0,
		Leader:     id,
		LeaderAddr: addr,
		Term:       s.Term(),
		ID:         s.ID(),
	}
}

// Joiner brings a node with empty raft state into a cluster: the
// designated bootstrapper forms a new cluster only after asking every peer
// it can find and finding no existing one; everyone else asks the leader
// to add them.
type Joiner struct {
	Store        *Store
	Members      *Membership
	Peers        *Peers
	Name         string
	Bootstrapper bool
	// Settle is how long a bootstrapper that has found no peer at all
	// waits before concluding it is alone (peers may not be up yet).
	Settle time.Duration
	Logger *slog.Logger
}

// Run returns once this node is part of a cluster (or ctx ends). A node
// with raft state normally is already; but one that left (a restart, or a
// scale-down undone) was removed from the configuration and asks again.
func (j *Joiner) Run(ctx context.Context) error {
	log := j.Logger.With("component", "joiner")
	start := time.Now()
	backoff := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		done, err := j.try(ctx, time.Since(start))
		if done {
			return nil
		}
		if err != nil && attempt%10 == 1 {
			log.Info("not in a cluster yet", "attempt", attempt, "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff/2 + rand.N(backoff)):
		}
		backoff = min(2*backoff, 3*time.Second)
	}
}

// inConfiguration reports whether this node's raft ID is in the raft
// configuration it knows.
func (j *Joiner) inConfiguration() bool {
	servers, err := j.Store.Configuration()
	if err != nil {
		return false
	}
	for _, s := range servers {
		if string(s.ID) == j.Store.ID() {
			return true
		}
	}
	return false
}

// Watch runs once Run has returned, until ctx ends. A member removed from
// the configuration while it was away without restarting (paused,
// partitioned, or dead past the dead-server timeout: see Promoter) hears
// from no leader, since leaders only replicate to their members: after two
// looks a period apart without a leader it asks to join again, as at
// startup. A member that is in the configuration and merely between
// leaders finds no leader among its peers either, and asks nothing.
func (j *Joiner) Watch(ctx context.Context, period time.Duration) {
	log := j.Logger.With("component", "joiner")
	t := time.NewTicker(period)
	defer t.Stop()
	leaderless := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if id, _ := j.Store.Leader(); id != "" {
			leaderless = 0
			continue
		}
		if leaderless++; leaderless < 2 {
			continue
		}
		if _, err := j.ask(ctx, 0, false); err != nil && leaderless%10 == 2 {
			log.Info("no leader heard from", "err", err)
		}
	}
}

func (j *Joiner) try(ctx context.Context, waited time.Duration) (bool, error) {
	return j.ask(ctx, waited, j.Bootstrapper && !j.Store.HadState())
}

// ask looks for a leader among the peers and asks it to add this node;
// mayBootstrap lets it form a cluster when no peer has one.
func (j *Joiner) ask(ctx context.Context, waited time.Duration, mayBootstrap bool) (bool, error) {
	// Hearing from a leader means being in its configuration (leaders only
	// replicate to their members), as long as that configuration names
	// this node's raft ID: a node that came back at its old address with
	// an empty data dir (a new incarnation) hears the leader that still
	// replicates to its old self there, and must ask to join as itself,
	// which takes the old incarnation out. (A node's own copy of the
	// configuration can still list it after it was removed while away.)
	if id, _ := j.Store.Leader(); id != "" && j.inConfiguration() {
		return true, nil
	}
	peers := 0
	var leaderID string
	for _, m := range j.Members.Alive() {
		if m.Name == j.Name || m.Meta.Internal == "" {
			continue
		}
		peers++
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := j.Peers.Status(sctx, m.Meta.Internal)
		cancel()
		if err != nil {
			continue
		}
		if st.Leader != "" {
			leaderID = st.Leader
			break
		}
		if st.HasState {
			leaderID = "?" // a cluster exists but is electing: wait, never bootstrap
		}
	}
	switch {
	case leaderID != "" && leaderID != "?":
		lm, ok := j.Members.ByID(leaderID)
		if !ok || lm.Meta.Internal == "" {
			return false, fmt.Errorf("leader %s not in gossip yet", leaderID)
		}
		jctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		err := j.Peers.Join(jctx, lm.Meta.Internal, JoinRequest{Name: j.Name, ID: j.Store.ID(), Addr: j.Store.Addr()})
		if err != nil {
			return false, fmt.Errorf("join via %s: %w", lm.Name, err)
		}
		return false, nil // added; done once our raft hears from the leader
	case leaderID == "?":
		return false, errors.New("a cluster exists but has no leader")
	case mayBootstrap && (peers > 0 || waited >= j.Settle):
		// Every peer we can see says it has no state: no cluster exists.
		return true, j.Store.BootstrapSelf()
	}
	return false, fmt.Errorf("no cluster found among %d peers", peers)
}
