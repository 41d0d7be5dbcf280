package cluster

import (
	"context"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// Promoter runs on the leader and keeps the raft configuration matching
// the cluster: a server whose node left gossip gracefully (scale-down,
// restart) is removed, and non-voters that have been alive for the
// stabilisation time are promoted until the voter target is met, lowest
// StatefulSet ordinal first. One change per round. A node that crashed is
// not removed: it may come back, and a dead voter only lowers the failures
// the cluster can take until it does.
type Promoter struct {
	Store     *Store
	Members   *Membership
	Voters    int
	Stabilize time.Duration
	Interval  time.Duration
	Logger    *slog.Logger
}

// rejoinGrace is how long after a join request the promoter trusts it over
// gossip's memory of the node's last departure.
const rejoinGrace = 30 * time.Second

// Run promotes while this node leads, until ctx ends.
func (p *Promoter) Run(ctx context.Context) {
	t := time.NewTicker(p.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if p.Store.IsLeader() {
			p.round(ctx)
		}
	}
}

func (p *Promoter) round(ctx context.Context) {
	servers, err := p.Store.Configuration()
	if err != nil {
		return
	}
	self := p.Store.ID()
	for _, srv := range servers {
		if string(srv.ID) == self {
			continue
		}
		if p.Store.joinedWithin(srv.ID, rejoinGrace) {
			continue // it just asked to join: alive, whatever gossip still says
		}
		if m, ok := p.Members.ByID(string(srv.ID)); ok && m.State == StateLeft {
			p.Logger.Info("removing a server whose node left", "node", m.Name, "id", srv.ID, "suffrage", srv.Suffrage.String())
			if err := p.Store.raft.RemoveServer(srv.ID, 0, timeoutOf(ctx)).Error(); err != nil {
				p.Logger.Warn("removing a departed server failed", "node", m.Name, "err", err)
			}
			return
		}
	}
	voters := 0
	var candidates []Member
	for _, s := range servers {
		if s.Suffrage == raft.Voter {
			voters++
			continue
		}
		m, ok := p.Members.ByID(string(s.ID))
		if ok && m.State == StateAlive && !m.Meta.Leaving && time.Since(m.Since) >= p.Stabilize {
			candidates = append(candidates, m)
		}
	}
	if voters >= p.Voters || len(candidates) == 0 {
		return
	}
	sort.Slice(candidates, func(a, b int) bool { return lessOrdinal(candidates[a].Name, candidates[b].Name) })
	c := candidates[0]
	p.Logger.Info("promoting to voter", "node", c.Name, "id", c.Meta.ID, "voters", voters, "target", p.Voters)
	f := p.Store.raft.AddVoter(raft.ServerID(c.Meta.ID), raft.ServerAddress(c.Meta.Raft), 0, timeoutOf(ctx))
	if err := f.Error(); err != nil {
		p.Logger.Warn("promotion failed", "node", c.Name, "err", err)
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
