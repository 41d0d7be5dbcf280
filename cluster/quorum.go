package cluster

import (
	"cmp"
	"slices"
	"time"

	"github.com/hashicorp/raft"
)

// The quorum decisions, as pure functions of the raft configuration and
// what this node knows of each server's node (serverView): which changes
// keep a quorum of healthy voters when a voter leaves, and what the
// promoter does in a round. autopilot.go builds the view and carries the
// changes out.
//
// Why the rules are what they are:
//   - A voter that leaves gracefully still votes until it is removed. If
//     the voters that stay would be short of the target's quorum without
//     it, a healthy non-voter is promoted first, while the leaver can still
//     help commit that change (after the removal it could not). Should no
//     non-voter be there to promote and the voters that stay not make a
//     quorum of what remains, the down voters are removed first too: a
//     down voter counts towards the quorum size without voting, and once
//     the leaver is gone nothing could take it out.
//   - A down voter is removed when it has been down for the dead-server
//     timeout, and only then replaced (the next round promotes as usual).
//     Removing it never lowers the healthy voters, and so never the
//     failures the cluster can take; promoting first would, for a moment,
//     make the newcomer one more voter the quorum depends on, and make the
//     commit of the change wait for it.
//   - A non-voter down for the timeout is removed too: it holds no vote,
//     but the leader keeps replicating to it, and a pod that never comes
//     back (scaled away while it was down) would stay in the
//     configuration for ever.
//   - A node that crashed may come back: nothing is removed for being down
//     a short while, except in the leave rescue above, where waiting would
//     lose the quorum for certain. A removed node that comes back asks to
//     join again (Joiner) and is a non-voter until promoted.
//   - Healthy means alive in gossip and not leaving, and on the leader
//     also reached by raft's heartbeats (reach.go): gossip takes seconds
//     to call a crashed node dead, and a voter killed a moment before
//     another leaves must not be counted on. A node is down for the
//     timeout only if gossip has it dead (or suspect, or does not know it)
//     and raft does not reach it either: one that came back before gossip
//     noticed is not removed.

// serverHealth is what this node knows of a raft server's node.
type serverHealth int

const (
	// healthy: alive in gossip, not leaving, and (on the leader) reached
	// by raft's heartbeats.
	healthy serverHealth = iota
	// leaving: drains before it goes; it still votes until it is removed.
	leaving
	// gone: left gossip gracefully.
	gone
	// down: dead or suspect in gossip, unknown to it, or (on the leader)
	// not reached by raft's heartbeats.
	down
)

func (h serverHealth) String() string {
	switch h {
	case healthy:
		return "healthy"
	case leaving:
		return "leaving"
	case gone:
		return "left"
	default:
		return "down"
	}
}

// serverView is one server of the raft configuration with what this node
// knows of its node.
type serverView struct {
	ID      raft.ServerID
	Address raft.ServerAddress // gossip's current raft address when known
	Name    string             // "" when neither gossip nor the log knows it
	Voter   bool
	Health  serverHealth
	// AliveSince is when a healthy node turned alive in gossip (the
	// stabilisation time runs from it).
	AliveSince time.Time
	// DownSince is when gossip saw the node die or turn suspect, or this
	// node first missed it in gossip; zero unless gossip has it down and
	// raft (on the leader) does not reach it either. The dead-server
	// timeout runs from it.
	DownSince time.Time
	// Rejoined: it asked to join moments ago, after gossip last changed
	// its state: that beats gossip's memory of its departure.
	Rejoined bool
}

// policy is what the decisions are asked to keep.
type policy struct {
	Voters      int           // the voter target
	Stabilize   time.Duration // how long a non-voter is alive before the promoter promotes it
	DeadTimeout time.Duration // how long a server is down before it is removed; 0: never
}

// quorumSize is the number of voters of n that make a quorum.
func quorumSize(n int) int { return n/2 + 1 }

// QuorumHealth is how the raft voters fare, as one node sees them.
type QuorumHealth struct {
	Voters  int // voters in the raft configuration
	Healthy int // of them: alive in gossip, not leaving (and, on the leader, reached by raft)
	Needed  int // voters that make a quorum of Voters
	// FailureTolerance is how many more healthy voters may fail before
	// the cluster loses its quorum: Healthy − Needed, never below 0 (when
	// Healthy < Needed the quorum is already lost, as far as this node
	// sees).
	FailureTolerance int
}

func quorumHealth(view []serverView) QuorumHealth {
	var q QuorumHealth
	for _, s := range view {
		if s.Voter {
			q.Voters++
			if s.Health == healthy {
				q.Healthy++
			}
		}
	}
	if q.Voters > 0 {
		q.Needed = quorumSize(q.Voters)
	}
	q.FailureTolerance = max(q.Healthy-q.Needed, 0)
	return q
}

type changeOp int

const (
	opPromote changeOp = iota
	opRemove
)

func (o changeOp) String() string {
	if o == opPromote {
		return "promote"
	}
	return "remove"
}

// change is one raft configuration change and why.
type change struct {
	Op     changeOp
	Server serverView
	Why    string
}

// candidates are the healthy non-voters other than except, in the order
// they are promoted: those alive for the stabilisation time first (when
// stableOnly, only those), then by StatefulSet ordinal.
func candidates(view []serverView, except raft.ServerID, stabilize time.Duration, now time.Time, stableOnly bool) []serverView {
	stable := func(s serverView) bool { return now.Sub(s.AliveSince) >= stabilize }
	var out []serverView
	for _, s := range view {
		if s.Voter || s.Health != healthy || s.ID == except || (stableOnly && !stable(s)) {
			continue
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b serverView) int {
		if sa, sb := stable(a), stable(b); sa != sb {
			if sa {
				return -1
			}
			return 1
		}
		if lessOrdinal(a.Name, b.Name) {
			return -1
		}
		if lessOrdinal(b.Name, a.Name) {
			return 1
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out
}

// planLeave lists the changes, in order, that take the server leaver out
// of the configuration without leaving fewer healthy voters than a quorum
// (of the target, and of the voters that remain) when that can be helped:
// healthy non-voters promoted first (those alive for the stabilisation
// time before the others, then by ordinal); failing those, down voters
// removed first when the healthy voters that stay would not make a quorum
// of what remains; then the leaver. Nothing when it is not a member.
// withLeaver false leaves its own removal out (a leader prepares its leave
// before handing leadership over).
func planLeave(view []serverView, leaver raft.ServerID, p policy, now time.Time, withLeaver bool) []change {
	i := slices.IndexFunc(view, func(s serverView) bool { return s.ID == leaver })
	if i < 0 {
		return nil
	}
	l := view[i]
	var plan []change
	if l.Voter {
		remaining, good := 0, 0
		for _, s := range view {
			if s.Voter && s.ID != leaver {
				remaining++
				if s.Health == healthy {
					good++
				}
			}
		}
		for _, c := range candidates(view, leaver, p.Stabilize, now, false) {
			if good >= max(quorumSize(p.Voters), quorumSize(remaining)) {
				break
			}
			plan = append(plan, change{Op: opPromote, Server: c, Why: "replaces a leaving voter"})
			remaining++
			good++
		}
		if good < quorumSize(remaining) {
			for _, d := range downVoters(view, leaver) {
				if good >= quorumSize(remaining) {
					break
				}
				plan = append(plan, change{Op: opRemove, Server: d,
					Why: "down while a voter leaves: the voters that stay would not make a quorum with it"})
				remaining--
			}
		}
	}
	if withLeaver {
		plan = append(plan, change{Op: opRemove, Server: l, Why: "leaves"})
	}
	return plan
}

// downVoters are the down voters other than except that did not just ask
// to join, longest down first.
func downVoters(view []serverView, except raft.ServerID) []serverView {
	var out []serverView
	for _, s := range view {
		if s.Voter && s.Health == down && s.ID != except && !s.Rejoined {
			out = append(out, s)
		}
	}
	slices.SortStableFunc(out, func(a, b serverView) int { return downOrder(a, b) })
	return out
}

// downOrder puts voters first, then the longest down (an unknown time
// last).
func downOrder(a, b serverView) int {
	if a.Voter != b.Voter {
		if a.Voter {
			return -1
		}
		return 1
	}
	if az, bz := a.DownSince.IsZero(), b.DownSince.IsZero(); az != bz {
		if bz {
			return -1
		}
		return 1
	}
	return a.DownSince.Compare(b.DownSince)
}

// planRound is the promoter's one change of a round, on the leader self:
// remove a server whose node left gossip; else remove one down for the
// dead-server timeout, if the voters left can commit without it; else
// promote a non-voter alive for the stabilisation time while the voters
// are short of the target, lowest ordinal first.
func planRound(view []serverView, self raft.ServerID, p policy, now time.Time) (change, bool) {
	for _, s := range view {
		if s.ID != self && s.Health == gone && !s.Rejoined {
			return change{Op: opRemove, Server: s, Why: "its node left"}, true
		}
	}
	if p.DeadTimeout > 0 {
		var dead []serverView
		for _, s := range view {
			if s.ID != self && s.Health == down && !s.Rejoined && !s.DownSince.IsZero() && now.Sub(s.DownSince) >= p.DeadTimeout {
				dead = append(dead, s)
			}
		}
		slices.SortStableFunc(dead, downOrder)
		for _, d := range dead {
			if commitsWithout(view, d.ID) {
				return change{Op: opRemove, Server: d, Why: "down for longer than the dead-server timeout"}, true
			}
		}
	}
	voters := 0
	for _, s := range view {
		if s.Voter {
			voters++
		}
	}
	if voters >= p.Voters {
		return change{}, false
	}
	if c := candidates(view, "", p.Stabilize, now, true); len(c) > 0 {
		return change{Op: opPromote, Server: c[0], Why: "the voters are short of the target"}, true
	}
	return change{}, false
}

// commitsWithout reports whether the voters that still answer (healthy or
// leaving) make a quorum of the configuration without id.
func commitsWithout(view []serverView, id raft.ServerID) bool {
	voters, answering := 0, 0
	for _, s := range view {
		if !s.Voter || s.ID == id {
			continue
		}
		voters++
		if s.Health == healthy || s.Health == leaving {
			answering++
		}
	}
	return voters > 0 && answering >= quorumSize(voters)
}
