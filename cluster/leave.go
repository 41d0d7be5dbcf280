package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/hashicorp/raft"
)

// LeaveTimeout bounds Leaver.Leave (within a drain's bound).
const LeaveTimeout = 10 * time.Second

// Leaver takes a draining node out of the raft configuration, handing
// leadership over first when it leads. It is the last step of a drain,
// after the node's tasks and media went to others.
type Leaver struct {
	Store    *Store
	Members  *Membership
	Promoter *Promoter
	Peers    *Peers
	Name     string // this node's
	Logger   *slog.Logger
}

// Leave takes this node out of the raft configuration before it goes,
// so that a scaled-down node does not linger as a voter the cluster waits
// for. It asks the leader until the removal is committed: the leader may be
// unknown for a moment (right after this node handed leadership over) or
// change under it. A node that leads hands leadership over first, to a
// voter that stays, and again should a peer that drains at the same time
// hand it back. A node alone in the configuration stays.
//
// This must not be left to the leader, which removes servers whose node
// left gossip: it can only do so while it has a quorum, and when a cluster
// is scaled down to one node the last two voters are that quorum — once
// the departing one is gone, the one that stays can neither commit nor be
// elected.
//
// The leader never lets a leave take the cluster below a quorum of healthy
// voters (Promoter.Remove): it promotes a healthy non-voter first when the
// voters that stay would be short of one. A leader that leaves does the
// same before it hands leadership over (PrepareLeave), with what it knows
// as the leader: raft's heartbeats tell it at once which voters just
// crashed, which the next leader may not know yet, and the voter it hands
// leadership to must be a healthy one.
func (l *Leaver) Leave(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, LeaveTimeout)
	defer cancel()
	self := l.Store.ID()
	backoff := 50 * time.Millisecond
	var lastErr error
	for ctx.Err() == nil {
		servers, err := l.Store.Configuration()
		if err == nil && !slices.ContainsFunc(servers, func(s raft.Server) bool { return string(s.ID) == self }) {
			return // not (or no longer) a member
		}
		if err == nil && len(servers) == 1 {
			return // alone: it keeps its log for its return
		}
		var left bool
		if left, lastErr = l.try(ctx, self); left {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
	l.Logger.Warn("could not leave raft", "err", lastErr)
}

// try makes one attempt: a leader prepares its leave and hands leadership
// over; a follower asks the leader to remove it. left: the removal is
// committed.
func (l *Leaver) try(ctx context.Context, self string) (left bool, err error) {
	switch id, _ := l.Store.Leader(); {
	case id == self:
		if err = l.Promoter.PrepareLeave(ctx); err == nil {
			err = l.transferLeadership()
		}
		return false, err
	case id == "":
		return false, errors.New("no leader known")
	default:
		m, ok := l.Members.ByID(id)
		if !ok || m.Meta.Internal == "" {
			return false, fmt.Errorf("leader %s not in gossip", id)
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = l.Peers.Remove(rctx, m.Meta.Internal, RemoveRequest{ID: self, Name: l.Name})
		cancel()
		if err != nil {
			return false, err
		}
		l.Logger.Info("left raft", "leader", m.Name)
		return true, nil
	}
}

// transferLeadership hands leadership to a voter that stays (healthy:
// alive in gossip, not leaving, reached by raft) if there is one, else to
// whichever voter raft picks. Nodes of a scale-down drain at once:
// leadership handed to one of them would leave with it.
func (l *Leaver) transferLeadership() error {
	servers, err := l.Store.Configuration()
	if err != nil {
		return fmt.Errorf("leadership transfer: %w", err)
	}
	for _, s := range servers {
		if s.Suffrage != raft.Voter || string(s.ID) == l.Store.ID() {
			continue
		}
		if m, ok := l.Members.ByID(string(s.ID)); ok && l.Promoter.Healthy(string(s.ID)) {
			if err := l.Store.TransferLeadership(string(s.ID), string(s.Address)); err != nil {
				return fmt.Errorf("leadership transfer to %s: %w", m.Name, err)
			}
			l.Logger.Info("leadership transferred", "to", m.Name)
			return nil
		}
	}
	if err := l.Store.TransferLeadership("", ""); err != nil {
		return fmt.Errorf("leadership transfer: %w", err)
	}
	l.Logger.Info("leadership transferred", "to", "any voter (none stays)")
	return nil
}
