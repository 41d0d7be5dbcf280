package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gosty/gosty/internal/tick"
	"github.com/hashicorp/raft"
)

// Promoter runs on the leader and keeps the raft configuration matching
// the cluster with a quorum of healthy voters (the rules and why are in
// quorum.go): a server whose node left gossip gracefully (scale-down,
// restart) is removed; one whose node has been down for DeadTimeout is
// removed; non-voters that have been alive for the stabilisation time are
// promoted until the voter target is met, lowest StatefulSet ordinal
// first. One change per round. A voter that leaves gracefully is taken out
// through Remove (and, when it leads, PrepareLeave), which promote a
// replacement first when the quorum needs one.
type Promoter struct {
	Store     *Store
	Members   *Membership
	Voters    int
	Stabilize time.Duration
	// DeadTimeout is how long a server's node is dead or suspect in
	// gossip (and unreached by raft) before the leader removes it; 0:
	// never.
	DeadTimeout time.Duration
	Interval    time.Duration
	Logger      *slog.Logger

	mu sync.Mutex // one configuration change at a time: rounds and leaves

	missMu  sync.Mutex
	missing map[raft.ServerID]time.Time // servers gossip does not know, since when
}

// rejoinGrace is how long after a join request the promoter trusts it over
// gossip's memory of the node's last departure (news older than the
// request).
const rejoinGrace = 30 * time.Second

// changeTimeout bounds one configuration change of a round.
const changeTimeout = 10 * time.Second

// Run promotes while this node leads, until ctx ends.
func (p *Promoter) Run(ctx context.Context) {
	tick.Every(ctx, p.Interval, func() {
		if p.Store.IsLeader() {
			p.round(ctx)
		}
	})
}

func (p *Promoter) policy() policy {
	return policy{Voters: p.Voters, Stabilize: p.Stabilize, DeadTimeout: p.DeadTimeout}
}

func (p *Promoter) round(ctx context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	servers, err := p.Store.Configuration()
	if err != nil {
		return
	}
	now := time.Now()
	c, ok := planRound(p.view(servers, now), p.Store.id, p.policy(), now)
	if !ok {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, changeTimeout)
	defer cancel()
	if err := p.apply(cctx, c); err != nil {
		p.Logger.Warn("raft configuration change failed", "change", c.Op.String(), "member", c.Server.Name,
			"id", c.Server.ID, "err", err)
	}
}

// Remove takes a departing server out of the configuration; it runs on
// the leader, at the departing node's request. A voter is replaced first
// when the voters that stay would be short of a quorum (planLeave). The
// leader never removes itself (it hands leadership over first:
// PrepareLeave).
func (p *Promoter) Remove(ctx context.Context, req RemoveRequest) error {
	if !p.Store.IsLeader() {
		return fmt.Errorf("remove %s: %w", req.Name, ErrNotLeader)
	}
	if req.ID == "" || req.ID == p.Store.ID() {
		return fmt.Errorf("remove %q: %w: not a removable server", req.Name, ErrInvalid)
	}
	if err := p.leave(ctx, raft.ServerID(req.ID), true); err != nil {
		return fmt.Errorf("remove %s: %w", req.Name, err)
	}
	return nil
}

// PrepareLeave readies the leader's own leave: it makes the changes
// planLeave asks for before this node goes (promotions, and in the rescue
// case removals of down voters), so that leadership can be handed to a
// healthy voter and the new leader can remove this one without losing the
// quorum.
func (p *Promoter) PrepareLeave(ctx context.Context) error {
	if !p.Store.IsLeader() {
		return fmt.Errorf("prepare leave: %w", ErrNotLeader)
	}
	if err := p.leave(ctx, p.Store.id, false); err != nil {
		return fmt.Errorf("prepare leave: %w", err)
	}
	return nil
}

func (p *Promoter) leave(ctx context.Context, id raft.ServerID, withLeaver bool) error {
	if err := p.Store.settleReach(ctx); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	servers, err := p.Store.Configuration()
	if err != nil {
		return err
	}
	now := time.Now()
	for _, c := range planLeave(p.view(servers, now), id, p.policy(), now, withLeaver) {
		if err := p.apply(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// apply makes one configuration change.
func (p *Promoter) apply(ctx context.Context, c change) error {
	s := c.Server
	// "member", not "node": the logger already names this node.
	log := p.Logger.With("member", s.Name, "id", s.ID, "why", c.Why)
	var f raft.Future
	switch c.Op {
	case opPromote:
		log.Info("promoting to voter", "target", p.Voters)
		f = p.Store.raft.AddVoter(s.ID, s.Address, 0, timeoutOf(ctx))
	default:
		log.Info("removing a server", "suffrage", voterOrNot(s.Voter), "health", s.Health.String())
		f = p.Store.raft.RemoveServer(s.ID, 0, timeoutOf(ctx))
	}
	if err := waitFuture(ctx, f); err != nil {
		return fmt.Errorf("%s %s: %w", c.Op, s.Name, err)
	}
	return nil
}

func voterOrNot(v bool) string {
	if v {
		return "voter"
	}
	return "nonvoter"
}

// Health is the voters' health as this node sees it (on the leader, raft's
// reach counts too).
func (p *Promoter) Health() (QuorumHealth, error) {
	servers, err := p.Store.Configuration()
	if err != nil {
		return QuorumHealth{}, err
	}
	return quorumHealth(p.view(servers, time.Now())), nil
}

// Healthy reports whether a server's node is healthy: alive in gossip, not
// leaving, and (on the leader) reached by raft. A leader hands leadership
// only to such a voter.
func (p *Promoter) Healthy(id string) bool {
	return p.serverHealth(raft.ServerID(id)) == healthy
}

func (p *Promoter) serverHealth(id raft.ServerID) serverHealth {
	m, ok := p.Members.ByID(string(id))
	return p.healthOf(id, m, ok)
}

func (p *Promoter) healthOf(id raft.ServerID, m Member, known bool) serverHealth {
	switch {
	case !known:
		return down
	case m.State == StateLeft:
		return gone
	case m.Meta.Leaving:
		return leaving
	case m.State == StateAlive && (id == p.Store.id || !p.Store.Unreached(string(id))):
		return healthy
	}
	return down
}

// view joins the raft configuration with gossip, raft's reach and the
// recent join requests.
func (p *Promoter) view(servers []raft.Server, now time.Time) []serverView {
	var names map[string]string // from the log, for servers gossip does not know
	leads := p.Store.IsLeader()
	out := make([]serverView, 0, len(servers))
	inConfig := make(map[raft.ServerID]bool, len(servers))
	for _, srv := range servers {
		inConfig[srv.ID] = true
		m, known := p.Members.ByID(string(srv.ID))
		v := serverView{ID: srv.ID, Address: srv.Address, Name: m.Name, Voter: srv.Suffrage == raft.Voter,
			Health: p.healthOf(srv.ID, m, known)}
		// A join request newer than gossip's news of the node beats it
		// for a while: its alive message may not have spread yet.
		if at, ok := p.Store.joinedAt(srv.ID); ok && now.Sub(at) < rejoinGrace && (!known || at.After(m.Since)) {
			v.Rejoined = true
		}
		if m.Meta.Raft != "" {
			v.Address = raft.ServerAddress(m.Meta.Raft)
		}
		since := m.Since
		if !known {
			if names == nil {
				p.Store.fsm.Read(func(st *State) { names = st.Nodes() })
			}
			v.Name = names[string(srv.ID)]
			since = p.missingSince(srv.ID, now)
		}
		switch gossipDown := !known || m.State == StateSuspect || m.State == StateDead; {
		case v.Health == healthy:
			v.AliveSince = m.Since
		case v.Health == down && gossipDown && (!leads || p.Store.Unreached(string(srv.ID))):
			v.DownSince = since
		}
		out = append(out, v)
	}
	p.forgetMissing(inConfig)
	return out
}

// missingSince is when this node first found a server of the
// configuration missing from gossip.
func (p *Promoter) missingSince(id raft.ServerID, now time.Time) time.Time {
	p.missMu.Lock()
	defer p.missMu.Unlock()
	if p.missing == nil {
		p.missing = map[raft.ServerID]time.Time{}
	}
	if at, ok := p.missing[id]; ok {
		return at
	}
	p.missing[id] = now
	return now
}

// forgetMissing drops what missingSince remembers of servers that are no
// longer in the configuration or are known to gossip again.
func (p *Promoter) forgetMissing(inConfig map[raft.ServerID]bool) {
	p.missMu.Lock()
	defer p.missMu.Unlock()
	for id := range p.missing {
		if _, ok := p.Members.ByID(string(id)); ok || !inConfig[id] {
			delete(p.missing, id)
		}
	}
}

// lessOrdinal orders StatefulSet pod names by their ordinal suffix
// ("gosty-2" < "gosty-10"), and other names alphabetically.
func lessOrdinal(a, b string) bool {
	oa, okA := ordinal(a)
	ob, okB := ordinal(b)
	if okA && okB && oa != ob {
		return oa < ob
	}
	if okA != okB {
		return okA
	}
	return a < b
}

func ordinal(name string) (int, bool) {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(name[i+1:])
	return n, err == nil && n >= 0
}

// IsBootstrapOrdinal reports whether a StatefulSet pod name is the one
// that may bootstrap (ordinal 0).
func IsBootstrapOrdinal(name string) bool {
	n, ok := ordinal(name)
	return ok && n == 0
}
