package main

import (
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/node/nodetest"
)

// Loopback subnets: 127.0.102.x (TestQuorumSurvivesCrashesThenALeave) and
// 127.0.103.x (TestDeadServersReplacedAndRejoin).

// TestQuorumSurvivesCrashesThenALeave is issue 15's sequence on five node
// processes (three voters, two non-voters): kill -9 the leader and a
// non-voter, and two seconds later SIGTERM another voter. Removing the
// leaver outright would leave one live voter and one dead one, a cluster
// that never elects a leader again; the leader must promote the healthy
// non-voter first. Run twice: the voter that leaves is the new leader
// (which prepares its leave before handing leadership over) or a follower
// (whose removal the leader plans). Afterwards the two survivors elect a
// leader, commit and finish a job, and when the crashed nodes come back
// the quorum is whole again.
func TestQuorumSurvivesCrashesThenALeave(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node processes and ffmpeg")
	}
	src := nodetest.GenClip(t, filepath.Join(t.TempDir(), "clip.mp4"), "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=4",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p")
	for k, leaderLeaves := range []bool{true, false} {
		name := map[bool]string{true: "the new leader leaves", false: "a follower leaves"}[leaderLeaves]
		t.Run(name, func(t *testing.T) {
			c := e2e.New(t, e2e.Opts{Subnet: 102, First: 1 + 10*k, Size: 5, Fast: true},
				"--slots", "1", "--drain-timeout", "5s")
			if err := c.Scale(5, time.Minute); err != nil {
				t.Fatal(err)
			}
			all := []int{0, 1, 2, 3, 4}
			v := c.Agree(t, all, 5, 3)
			leader := c.Ordinal(v.Leader)
			var voters, nonvoters []int
			for _, m := range v.Members {
				if p := c.Ordinal(m.Name); m.Voter && p != leader {
					voters = append(voters, p)
				} else if !m.Voter {
					nonvoters = append(nonvoters, p)
				}
			}
			crashedNonvoter := nonvoters[0]
			t.Logf("before: %s; killing %s (leader) and %s (non-voter)", e2e.Summary(v), c.Name(leader), c.Name(crashedNonvoter))

			c.Kill(leader)
			c.Kill(crashedNonvoter)
			time.Sleep(2 * time.Second) // part of the scenario, not a wait for anything
			// The voter that leaves: the new leader, or the other one.
			leaver, role := voters[0], "no leader known yet"
			if s, err := c.Status(voters[0]); err == nil && slices.Contains(voters, c.Ordinal(s.Leader)) {
				newLeader, follower := c.Ordinal(s.Leader), voters[0]
				if follower == newLeader {
					follower = voters[1]
				}
				leaver, role = follower, "a follower"
				if leaderLeaves {
					leaver, role = newLeader, "the new leader"
				}
			}
			t.Logf("stopping %s, %s (SIGTERM)", c.Name(leaver), role)
			if err := c.Stop(leaver, time.Minute); err != nil {
				t.Fatal(err)
			}

			var survivors []int
			for _, p := range all {
				if p != leader && p != crashedNonvoter && p != leaver {
					survivors = append(survivors, p)
				}
			}
			after := c.Agree(t, survivors, 2, 2)
			t.Logf("after: %s", e2e.Summary(after))
			s, err := c.Status(c.Ordinal(after.Leader))
			if err != nil {
				t.Fatal(err)
			}
			if got := e2e.Suffrage(s, c.Name(leaver)); got != "" {
				t.Errorf("the leaver is still a %s", got)
			}
			if s.Quorum.Voters != 3 || s.Quorum.HealthyVoters != 2 {
				t.Errorf("quorum %+v, want 2 healthy of 3 voters (one crashed)", s.Quorum)
			}
			id := e2e.Upload(t, c.HTTP(survivors[1]), src, `{"chunk_seconds":2,"preset":"ultrafast"}`)
			waitJobOn(t, c, survivors, id)

			// The crashed nodes come back: the crashed voter was never
			// removed, so the quorum is three healthy voters again.
			for _, p := range []int{leader, crashedNonvoter} {
				if err := c.Start(p); err != nil {
					t.Fatal(err)
				}
			}
			back := append(slices.Clone(survivors), leader, crashedNonvoter)
			c.Agree(t, back, 4, 3)
			nodetest.WaitFor(t, 30*time.Second, "the leader to see 3 of 3 voters healthy", func() bool {
				for _, p := range back {
					if s, err := c.Status(p); err == nil && s.Leader == s.Node {
						return s.Quorum == httpapi.QuorumStatus{Voters: 3, HealthyVoters: 3, Needed: 2, FailureTolerance: 1}
					}
				}
				return false
			})
		})
	}
}

// TestDeadServersReplacedAndRejoin runs five node processes with a short
// --dead-server-timeout. A voter is SIGKILLed and a non-voter SIGSTOPped
// and both kept down: until the timeout the leader reports a quorum with
// no failure to spare; past it both are removed from raft and the healthy
// non-voter replaces the voter, so the voters are back to the target among
// live nodes. The paused node, resumed, and the killed one, restarted,
// join again as non-voters (the first without a restart: it hears from no
// leader and asks).
func TestDeadServersReplacedAndRejoin(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node processes")
	}
	const deadTimeout = 8 * time.Second
	c := e2e.New(t, e2e.Opts{Subnet: 103, Size: 5, Fast: true},
		"--slots", "1", "--dead-server-timeout", deadTimeout.String())
	if err := c.Scale(5, time.Minute); err != nil {
		t.Fatal(err)
	}
	all := []int{0, 1, 2, 3, 4}
	v := c.Agree(t, all, 5, 3)
	leader := c.Ordinal(v.Leader)
	killed, paused := -1, -1
	for _, m := range v.Members {
		switch p := c.Ordinal(m.Name); {
		case m.Voter && p != leader && killed < 0:
			killed = p
		case !m.Voter && paused < 0:
			paused = p
		}
	}
	var others []int
	for _, p := range all {
		if p != killed && p != paused {
			others = append(others, p)
		}
	}
	t.Logf("before: %s; killing %s (voter), pausing %s (non-voter)", e2e.Summary(v), c.Name(killed), c.Name(paused))
	gone := time.Now()
	c.Kill(killed)
	if err := c.Signal(paused, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}

	// Down, not yet past the timeout: still in raft, no failure to spare.
	nodetest.WaitFor(t, deadTimeout, "the leader to report 2 of 3 voters healthy", func() bool {
		s, err := c.Status(leader)
		return err == nil && s.Quorum == httpapi.QuorumStatus{Voters: 3, HealthyVoters: 2, Needed: 2, FailureTolerance: 0}
	})
	if s, err := c.Status(leader); err != nil || e2e.Suffrage(s, c.Name(killed)) != "voter" || e2e.Suffrage(s, c.Name(paused)) != "nonvoter" {
		t.Fatalf("removed before the timeout (%v): %+v", err, s.Raft)
	}
	if m := e2e.Metrics(t, c.HTTP(leader)); !strings.Contains(m, "\ngosty_raft_failure_tolerance 0\n") ||
		!strings.Contains(m, "\ngosty_raft_healthy_voters 2\n") {
		t.Errorf("leader metrics lack healthy voters 2, failure tolerance 0")
	}

	// Past it: both removed, the voter replaced.
	var replaced time.Duration
	nodetest.WaitFor(t, deadTimeout+60*time.Second, "both removed and the voters back to 3 healthy", func() bool {
		s, err := c.Status(leader)
		if err != nil || e2e.Suffrage(s, c.Name(killed)) != "" || e2e.Suffrage(s, c.Name(paused)) != "" ||
			s.Quorum != (httpapi.QuorumStatus{Voters: 3, HealthyVoters: 3, Needed: 2, FailureTolerance: 1}) {
			return false
		}
		replaced = time.Since(gone)
		return true
	})
	if replaced < deadTimeout {
		t.Fatalf("removed %v after the crash, before the %v timeout", replaced, deadTimeout)
	}
	v = c.Agree(t, others, 3, 3)
	t.Logf("replaced after %v: %s", replaced.Round(time.Second), e2e.Summary(v))
	out, _, code := gosty(t, "members", "--server", c.HTTP(others[0]))
	if code != 0 || !strings.Contains(out, "voters: 3 of 3 healthy, quorum 2, failure tolerance 1") {
		t.Errorf("gosty members (exit %d):\n%s", code, out)
	}

	// Back: both join again, as non-voters.
	if err := c.Signal(paused, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(killed); err != nil {
		t.Fatal(err)
	}
	v = c.Agree(t, all, 5, 3)
	t.Logf("back: %s", e2e.Summary(v))
	for _, m := range v.Members {
		if p := c.Ordinal(m.Name); (p == killed || p == paused) && (m.Voter || m.RaftRole != "nonvoter") {
			t.Errorf("%s came back as %s, want a non-voter", m.Name, m.RaftRole)
		}
	}
	nodetest.WaitReady(t, c.HTTP(paused), 30*time.Second)
	nodetest.WaitReady(t, c.HTTP(killed), 30*time.Second)
}
