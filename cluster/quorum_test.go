package cluster

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// The quorum decisions on hand-made views: no raft, no gossip.

var qnow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

var testPolicy = policy{Voters: 3, Stabilize: 10 * time.Second, DeadTimeout: 5 * time.Minute}

// srv is a server of a view: "gosty-N", its ID the name, a voter or not, its
// health; healthy nodes have been alive for a minute, down ones down for
// one (unless changed).
func srv(name string, voter bool, h serverHealth) serverView {
	s := serverView{ID: raft.ServerID(name), Address: raft.ServerAddress(name + ":7947"), Name: name, Voter: voter, Health: h}
	switch h {
	case healthy:
		s.AliveSince = qnow.Add(-time.Minute)
	case down:
		s.DownSince = qnow.Add(-time.Minute)
	}
	return s
}

func downFor(s serverView, d time.Duration) serverView {
	s.DownSince = qnow.Add(-d)
	return s
}

func aliveFor(s serverView, d time.Duration) serverView {
	s.AliveSince = qnow.Add(-d)
	return s
}

// steps renders a plan as "promote gosty-4, remove gosty-1".
func steps(plan []change) string {
	var out []string
	for _, c := range plan {
		out = append(out, c.Op.String()+" "+c.Server.Name)
	}
	return strings.Join(out, ", ")
}

func TestPlanLeave(t *testing.T) {
	for _, tc := range []struct {
		name       string
		view       []serverView
		leaver     string
		withLeaver bool
		want       string
	}{
		{
			// Issue 15: the leader and a non-voter killed, then a voter
			// leaves. Removing it outright would leave one live voter of
			// two: no quorum ever again.
			name: "a crashed voter and a leaving one: promote first",
			view: []serverView{srv("gosty-0", true, down), srv("gosty-1", true, leaving), srv("gosty-2", true, healthy),
				srv("gosty-3", false, down), srv("gosty-4", false, healthy)},
			leaver: "gosty-1", withLeaver: true,
			want: "promote gosty-4, remove gosty-1",
		},
		{
			name: "the leader prepares its own leave",
			view: []serverView{srv("gosty-0", true, down), srv("gosty-1", true, leaving), srv("gosty-2", true, healthy),
				srv("gosty-3", false, down), srv("gosty-4", false, healthy)},
			leaver: "gosty-1", withLeaver: false,
			want: "promote gosty-4",
		},
		{
			name: "enough healthy voters stay: no promotion",
			view: []serverView{srv("gosty-0", true, healthy), srv("gosty-1", true, healthy), srv("gosty-2", true, leaving),
				srv("gosty-3", false, healthy), srv("gosty-4", false, healthy)},
			leaver: "gosty-2", withLeaver: true,
			want: "remove gosty-2",
		},
		{
			// A StatefulSet scaled 5→2 with Parallel pod management: the
			// non-voters leave with the voter; two healthy voters stay.
			name: "scale-down 5→2",
			view: []serverView{srv("gosty-0", true, healthy), srv("gosty-1", true, healthy), srv("gosty-2", true, leaving),
				srv("gosty-3", false, leaving), srv("gosty-4", false, leaving)},
			leaver: "gosty-2", withLeaver: true,
			want: "remove gosty-2",
		},
		{
			// Scaled 3→1 at once: nobody to promote and nobody down; the
			// leavers go one after the other while they still vote.
			name:   "scale-down 3→1, first leaver",
			view:   []serverView{srv("gosty-0", true, healthy), srv("gosty-1", true, leaving), srv("gosty-2", true, leaving)},
			leaver: "gosty-2", withLeaver: true,
			want: "remove gosty-2",
		},
		{
			name:   "scale-down 3→1, second leaver",
			view:   []serverView{srv("gosty-0", true, healthy), srv("gosty-1", true, leaving)},
			leaver: "gosty-1", withLeaver: true,
			want: "remove gosty-1",
		},
		{
			name: "a non-voter leaves as it is",
			view: []serverView{srv("gosty-0", true, down), srv("gosty-1", true, healthy), srv("gosty-2", true, down),
				srv("gosty-3", false, leaving), srv("gosty-4", false, healthy)},
			leaver: "gosty-3", withLeaver: true,
			want: "remove gosty-3",
		},
		{
			// Nobody to promote: once the leaver is gone the down voter
			// would hold half the votes of two. It goes first, while the
			// leaver can still help commit that.
			name: "nobody to promote: the down voter goes first",
			view: []serverView{srv("gosty-0", true, down), srv("gosty-1", true, leaving), srv("gosty-2", true, healthy),
				srv("gosty-3", false, down)},
			leaver: "gosty-1", withLeaver: true,
			want: "remove gosty-0, remove gosty-1",
		},
		{
			// Five voters, two down, one leaving: promoting one healthy
			// non-voter gives three healthy of five.
			name: "five voters",
			view: []serverView{srv("gosty-0", true, down), srv("gosty-1", true, down), srv("gosty-2", true, healthy),
				srv("gosty-3", true, healthy), srv("gosty-4", true, leaving), srv("gosty-5", false, healthy), srv("gosty-6", false, healthy)},
			leaver: "gosty-4", withLeaver: true,
			want: "promote gosty-5, remove gosty-4",
		},
		{
			// A voter that just asked to join is not taken for down.
			name: "a rejoined voter is not removed in the rescue",
			view: []serverView{func() serverView { s := srv("gosty-0", true, down); s.Rejoined = true; return s }(),
				srv("gosty-1", true, leaving), srv("gosty-2", true, healthy)},
			leaver: "gosty-1", withLeaver: true,
			want: "remove gosty-1",
		},
		{
			name:   "not a member",
			view:   []serverView{srv("gosty-0", true, healthy)},
			leaver: "gosty-9", withLeaver: true,
			want: "",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := steps(planLeave(tc.view, raft.ServerID(tc.leaver), testPolicy, qnow, tc.withLeaver))
			if got != tc.want {
				t.Fatalf("plan %q, want %q", got, tc.want)
			}
		})
	}
}

// The plan, carried out on the view, leaves a quorum of healthy voters
// whenever there were non-voters enough to promote: checked over every
// mix of healths for five servers.
func TestPlanLeaveKeepsAQuorum(t *testing.T) {
	healths := []serverHealth{healthy, leaving, down}
	n := 0
	for mask := range 243 * 4 { // 3^5 mixes of health × 4 shapes of suffrage
		shape := mask / 243
		voters := [][]bool{
			{true, true, true, false, false},
			{true, true, true, true, true},
			{true, true, false, false, false},
			{true, false, false, false, false},
		}[shape]
		view := make([]serverView, 5)
		m := mask % 243
		for i := range view {
			view[i] = srv(fmt.Sprintf("gosty-%d", i), voters[i], healths[m%3])
			m /= 3
		}
		for _, l := range view {
			if l.Health != leaving || !l.Voter {
				continue // a non-voter's leave changes no vote
			}
			plan := planLeave(view, l.ID, testPolicy, qnow, true)
			after := applyPlan(t, view, plan)
			q := quorumHealth(after)
			spare := 0
			for _, s := range view {
				if !s.Voter && s.Health == healthy {
					spare++
				}
			}
			healthyBefore := quorumHealth(view).Healthy
			if healthyBefore+spare >= quorumSize(testPolicy.Voters) && q.Healthy < quorumSize(testPolicy.Voters) {
				t.Errorf("%v leaving: %s leaves %d healthy voters of %d", describe(view), steps(plan), q.Healthy, q.Voters)
			}
			// The voters that answer during the change (healthy, and the
			// leavers until they are removed) make a quorum of the result,
			// unless there was none to start with.
			if healthyBefore > 0 && q.Voters > 0 && answering(after) < quorumSize(q.Voters) && answering(view) >= quorumSize(quorumHealth(view).Voters) {
				t.Errorf("%v leaving %s: %s ends without a quorum that answers (%d of %d)", describe(view), l.Name, steps(plan), answering(after), q.Voters)
			}
			n++
		}
	}
	if n == 0 {
		t.Fatal("no case checked")
	}
}

func answering(view []serverView) int {
	n := 0
	for _, s := range view {
		if s.Voter && (s.Health == healthy || s.Health == leaving) {
			n++
		}
	}
	return n
}

func describe(view []serverView) string {
	var out []string
	for _, s := range view {
		v := "n"
		if s.Voter {
			v = "v"
		}
		out = append(out, fmt.Sprintf("%s:%s/%s", s.Name, v, s.Health))
	}
	return strings.Join(out, " ")
}

// applyPlan is what the configuration becomes after the plan.
func applyPlan(t *testing.T, view []serverView, plan []change) []serverView {
	t.Helper()
	out := append([]serverView(nil), view...)
	for _, c := range plan {
		i := -1
		for k, s := range out {
			if s.ID == c.Server.ID {
				i = k
			}
		}
		if i < 0 {
			t.Fatalf("plan changes %s, not in the view", c.Server.Name)
		}
		switch c.Op {
		case opPromote:
			if out[i].Voter || out[i].Health != healthy {
				t.Fatalf("plan promotes %s, a %s voter=%v", c.Server.Name, out[i].Health, out[i].Voter)
			}
			out[i].Voter = true
		case opRemove:
			out = append(out[:i], out[i+1:]...)
		}
	}
	return out
}

func TestCandidatesOrder(t *testing.T) {
	view := []serverView{
		srv("gosty-0", true, healthy),
		aliveFor(srv("gosty-5", false, healthy), time.Second), // not stable yet
		srv("gosty-10", false, healthy),
		srv("gosty-3", false, healthy),
		srv("gosty-1", false, down),
		srv("gosty-2", false, leaving),
	}
	var got []string
	for _, c := range candidates(view, "", testPolicy.Stabilize, qnow, false) {
		got = append(got, c.Name)
	}
	if want := []string{"gosty-3", "gosty-10", "gosty-5"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("candidates %v, want %v", got, want)
	}
	got = nil
	for _, c := range candidates(view, "gosty-3", testPolicy.Stabilize, qnow, true) {
		got = append(got, c.Name)
	}
	if want := []string{"gosty-10"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("stable candidates but gosty-3: %v, want %v", got, want)
	}
}

func TestPlanRound(t *testing.T) {
	rejoined := func(s serverView) serverView { s.Rejoined = true; return s }
	raftReaches := func(s serverView) serverView { s.DownSince = time.Time{}; return s }
	for _, tc := range []struct {
		name string
		view []serverView
		p    policy
		want string
	}{
		{
			name: "a server whose node left is removed",
			view: []serverView{srv("gosty-0", true, healthy), srv("gosty-1", true, healthy), srv("gosty-2", true, gone)},
			want: "remove gosty-2",
		},
		{
			name: "unless it just asked to join again",
			view: []serverView{srv("gosty-0", true, healthy), srv("gosty-1", true, healthy), rejoined(srv("gosty-2", true, gone))},
			want: "",
		},
		{
			name: "a voter down past the timeout is removed",
			view: []serverView{srv("gosty-0", true, healthy), srv("gosty-1", true, healthy), downFor(srv("gosty-2", true, down), 6*time.Minute),
				srv("gosty-3", false, healthy)},
			want: "remove gosty-2",
		},
		{
			name: "and then replaced",
			view: []serverView{srv("gosty-0", true, healthy), srv("gosty-1", true, healthy), srv("gosty-3", false, healthy)},
			want: "promote gosty-3",
		},
		{
			name: "not before the timeout",
			view: []serverView{srv("gosty-0", true, healthy), srv("gosty-1", true, healthy), downFor(srv("gosty-2", true, down), 4*time.Minute),
				srv("gosty-3", false, healthy)},
			want: "",
		},
		{
			name: "never with no timeout",
			view: []serverView{srv("gosty-0", true, healthy), srv("gosty-1", true, healthy), downFor(srv("gosty-2", true, down), time.Hour)},
			p:    policy{Voters: 3, Stabilize: 10 * time.Second},
			want: "",
		},
		{
			// Gossip has it dead but the leader's heartbeats reach it:
			// back before gossip noticed.
			name: "not while raft reaches it",
			view: []serverView{srv("gosty-0", true, healthy), srv("gosty-1", true, healthy), raftReaches(srv("gosty-2", true, down))},
			want: "",
		},
		{
			name: "a non-voter down past the timeout too, voters first",
			view: []serverView{srv("gosty-0", true, healthy), downFor(srv("gosty-4", false, down), time.Hour),
				srv("gosty-1", true, healthy), downFor(srv("gosty-2", true, down), 10*time.Minute), downFor(srv("gosty-3", true, down), 20*time.Minute)},
			p:    policy{Voters: 5, Stabilize: 10 * time.Second, DeadTimeout: 5 * time.Minute},
			want: "remove gosty-3",
		},
		{
			name: "not when what remains could not commit it",
			view: []serverView{srv("gosty-0", true, healthy), downFor(srv("gosty-1", true, down), 10*time.Minute),
				srv("gosty-2", true, down), srv("gosty-3", true, down)},
			want: "",
		},
		{
			name: "promotion waits for the stabilisation time",
			view: []serverView{srv("gosty-0", true, healthy), aliveFor(srv("gosty-1", false, healthy), 5*time.Second)},
			want: "",
		},
		{
			name: "promotion: lowest ordinal first",
			view: []serverView{srv("gosty-0", true, healthy), srv("gosty-12", false, healthy), srv("gosty-2", false, healthy)},
			want: "promote gosty-2",
		},
		{
			name: "no promotion beyond the target",
			view: []serverView{srv("gosty-0", true, healthy), srv("gosty-1", true, healthy), srv("gosty-2", true, down), srv("gosty-3", false, healthy)},
			want: "",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.p
			if p.Voters == 0 {
				p = testPolicy
			}
			c, ok := planRound(tc.view, "gosty-0", p, qnow)
			got := ""
			if ok {
				got = steps([]change{c})
			}
			if got != tc.want {
				t.Fatalf("round %q, want %q", got, tc.want)
			}
		})
	}
}

func TestQuorumHealth(t *testing.T) {
	for _, tc := range []struct {
		name string
		view []serverView
		want QuorumHealth
	}{
		{"one voter", []serverView{srv("gosty-0", true, healthy)}, QuorumHealth{Voters: 1, Healthy: 1, Needed: 1}},
		{"three healthy", []serverView{srv("gosty-0", true, healthy), srv("gosty-1", true, healthy), srv("gosty-2", true, healthy), srv("gosty-3", false, healthy)},
			QuorumHealth{Voters: 3, Healthy: 3, Needed: 2, FailureTolerance: 1}},
		{"one down", []serverView{srv("gosty-0", true, healthy), srv("gosty-1", true, down), srv("gosty-2", true, healthy)},
			QuorumHealth{Voters: 3, Healthy: 2, Needed: 2}},
		{"a leaving voter is not counted", []serverView{srv("gosty-0", true, healthy), srv("gosty-1", true, leaving), srv("gosty-2", true, healthy)},
			QuorumHealth{Voters: 3, Healthy: 2, Needed: 2}},
		{"quorum lost", []serverView{srv("gosty-0", true, healthy), srv("gosty-1", true, down), srv("gosty-2", true, down)},
			QuorumHealth{Voters: 3, Healthy: 1, Needed: 2}},
		{"five", []serverView{srv("gosty-0", true, healthy), srv("gosty-1", true, healthy), srv("gosty-2", true, healthy), srv("gosty-3", true, healthy), srv("gosty-4", true, gone)},
			QuorumHealth{Voters: 5, Healthy: 4, Needed: 3, FailureTolerance: 1}},
		{"none", nil, QuorumHealth{}},
	} {
		if got := quorumHealth(tc.view); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestReach(t *testing.T) {
	var r reach
	a, b := raft.ServerID("a"), raft.ServerID("b")
	r.note(raft.RaftState(raft.Leader), qnow)
	if r.unreached(a, qnow) {
		t.Fatal("unreached before any failure")
	}
	r.note(raft.FailedHeartbeatObservation{PeerID: a}, qnow)
	r.note(raft.FailedHeartbeatObservation{PeerID: b}, qnow)
	if !r.unreached(a, qnow.Add(time.Second)) || !r.unreached(b, qnow.Add(time.Second)) {
		t.Fatal("a failed heartbeat does not count")
	}
	if r.unreached(a, qnow.Add(reachStale)) {
		t.Fatal("a failure long past, never repeated, still counts")
	}
	r.note(raft.ResumedHeartbeatObservation{PeerID: a}, qnow)
	if r.unreached(a, qnow) || !r.unreached(b, qnow) {
		t.Fatal("resumed heartbeats do not clear only their server")
	}
	r.note(raft.PeerObservation{Removed: true, Peer: raft.Server{ID: b}}, qnow)
	if r.unreached(b, qnow) {
		t.Fatal("a removed server still counts")
	}
	r.note(raft.FailedHeartbeatObservation{PeerID: a}, qnow)
	r.note(raft.RaftState(raft.Follower), qnow)
	if r.unreached(a, qnow) {
		t.Fatal("a lost leadership keeps its failures")
	}
	if got := r.ledFor(qnow.Add(3 * time.Second)); got != 3*time.Second {
		t.Fatalf("led for %v, want 3s", got)
	}
}
