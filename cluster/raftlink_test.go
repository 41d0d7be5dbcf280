package cluster

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gosty/gosty/cluster/peerlink"
	"github.com/hashicorp/raft"
)

func testLink(t *testing.T, key string) *peerlink.Link {
	t.Helper()
	l, err := peerlink.New(peerlink.Config{Purpose: peerlink.Raft, Key: peerlink.DeriveKey(key, peerlink.Raft),
		Logger: slog.New(slog.DiscardHandler), HandshakeTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func testLinkStream(t *testing.T, key string) *linkStream {
	t.Helper()
	inner, err := newBoundStream("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	s := newLinkStream(inner, testLink(t, key))
	t.Cleanup(func() { s.Close() })
	return s
}

// acceptOne returns what the next Accept yields within d, or nil.
func acceptOne(s net.Listener, d time.Duration) net.Conn {
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := s.Accept()
		if err != nil {
			c = nil
		}
		ch <- c
	}()
	select {
	case c := <-ch:
		return c
	case <-time.After(d):
		return nil
	}
}

// TestRaftLinkStream: raft connections between nodes with the same
// cluster key carry raft's bytes; a dialer with another key and a
// stranger speaking raft directly never reach raft.
func TestRaftLinkStream(t *testing.T) {
	server := testLinkStream(t, "k1")
	addr := raft.ServerAddress(server.Addr().String())

	client := testLinkStream(t, "k1")
	c, err := client.Dial(addr, time.Second)
	if err != nil {
		t.Fatalf("dial with the right key: %v", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("rpc")); err != nil {
		t.Fatal(err)
	}
	sc := acceptOne(server, 5*time.Second)
	if sc == nil {
		t.Fatal("the right key was not accepted")
	}
	buf := make([]byte, 3)
	if _, err := io.ReadFull(sc, buf); err != nil || string(buf) != "rpc" {
		t.Fatalf("read %q, %v", buf, err)
	}
	sc.Close()

	other := testLinkStream(t, "k2")
	if c, err := other.Dial(addr, time.Second); err == nil {
		c.Close()
		t.Fatal("dial with another key succeeded")
	} else if !strings.Contains(err.Error(), "another cluster key") {
		t.Errorf("dial error: %v", err)
	}
	if c := acceptOne(server, 500*time.Millisecond); c != nil {
		t.Fatal("a connection with another key reached raft")
	}

	// A stranger writing raft bytes at once is dropped.
	raw, err := net.Dial("tcp", string(addr))
	if err != nil {
		t.Fatal(err)
	}
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	raw.Write(append([]byte{0}, make([]byte, 100)...)) // rpcAppendEntries and junk
	if n, err := raw.Read(make([]byte, 64)); err == nil {
		t.Errorf("a stranger got %d bytes back", n)
	}
	raw.Close()
	if c := acceptOne(server, 500*time.Millisecond); c != nil {
		t.Fatal("a raw connection reached raft")
	}

	server.Close()
	if _, err := server.Accept(); err == nil {
		t.Fatal("accept after close")
	}
}

// TestRaftLinkStoresReplicate runs two raft stores with the same cluster
// key: the follower is added and receives the log through the link.
func TestRaftLinkStoresReplicate(t *testing.T) {
	open := func(name string, boot bool) *Store {
		s, err := OpenStore(RaftConfig{
			NodeName: name, DataDir: t.TempDir(), BindAddr: "127.0.0.1:0", Bootstrap: boot, Link: testLink(t, "k"),
			HeartbeatTimeout: 200 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a := open("a", true)
	b := open("b", false)
	deadline := time.Now().Add(10 * time.Second)
	for !a.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatal("no leader")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := a.raft.AddVoter(raft.ServerID(b.ID()), raft.ServerAddress(b.Addr()), 0, 10*time.Second).Error(); err != nil {
		t.Fatalf("add voter: %v", err)
	}
	if err := a.Propose(t.Context(), OpJobSubmit, SubmitJob{Job: testJob("j1", false)}); err != nil {
		t.Fatal(err)
	}
	for {
		var ok bool
		b.FSM().Read(func(st *State) { _, ok = st.Job("j1") })
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the follower never got the job")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
