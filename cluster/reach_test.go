package cluster

import (
	"errors"
	"net"
	"testing"
	"time"
)

// TestUnreachedFollowsRaftHeartbeats runs two real raft stores: the leader
// sees at once that its heartbeats no longer reach a server whose process
// is gone, and sees it reached again when it comes back.
func TestUnreachedFollowsRaftHeartbeats(t *testing.T) {
	leader := openTestStore(t, t.TempDir())
	defer leader.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bind := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	open := func() *Store {
		s, err := OpenStore(RaftConfig{NodeName: "n2", DataDir: dir, BindAddr: bind,
			HeartbeatTimeout: 200 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	follower := open()
	if err := leader.raft.AddNonvoter(follower.id, follower.transport.LocalAddr(), 0, 5*time.Second).Error(); err != nil {
		follower.Close()
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the follower to hear from the leader", func() error {
		if id, _ := follower.Leader(); id != leader.ID() {
			return errors.New("no leader yet")
		}
		return nil
	})
	if leader.Unreached(follower.ID()) {
		t.Fatal("a follower that hears from the leader counts as unreached")
	}
	if follower.Unreached(leader.ID()) {
		t.Fatal("a follower claims to know whom raft reaches")
	}

	if err := follower.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the leader to find the follower unreached", func() error {
		if !leader.Unreached(follower.ID()) {
			return errors.New("still reached")
		}
		return nil
	})

	follower = open()
	defer follower.Close()
	waitFor(t, 10*time.Second, "the leader to reach the follower again", func() error {
		if leader.Unreached(follower.ID()) {
			return errors.New("still unreached")
		}
		return nil
	})
}
