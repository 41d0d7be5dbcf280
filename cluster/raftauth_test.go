package cluster

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func testAuthStream(t *testing.T, key string) (*authStream, *boundStream) {
	t.Helper()
	inner, err := newBoundStream("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	s := newAuthStream(inner, key, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { s.Close() })
	return s, inner
}

// acceptOne returns what the next Accept yields within d, or nil.
func acceptOne(s *authStream, d time.Duration) net.Conn {
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

// TestRaftAuthStream: raft connections between nodes with the same
// cluster key carry raft's bytes; a dialer with another key, a dialer
// without any key and a stranger speaking raft directly never reach raft.
func TestRaftAuthStream(t *testing.T) {
	server, _ := testAuthStream(t, "k1")
	addr := raft.ServerAddress(server.Addr().String())

	// Same key: both ends authenticate and the stream is raft's.
	client, _ := testAuthStream(t, "k1")
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

	// Another key: the dialer refuses the acceptor and nothing is accepted.
	other, _ := testAuthStream(t, "k2")
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

	// A node with a key cannot talk to one without (and vice versa).
	plain, err := newBoundStream("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	go func() {
		for {
			c, err := plain.Accept()
			if err != nil {
				return
			}
			// Raft would read the first byte as an RPC type and hang up.
			c.Read(make([]byte, 1))
			c.Close()
		}
	}()
	if c, err := client.Dial(raft.ServerAddress(plain.Addr().String()), time.Second); err == nil {
		c.Close()
		t.Fatal("dial to a node without a key succeeded")
	}

	// After Close, Accept returns at once.
	server.Close()
	if _, err := server.Accept(); err == nil {
		t.Fatal("accept after close")
	}
}

// TestRaftAuthStoresReplicate runs two raft stores with the same cluster
// key: the follower is added and receives the log through the
// authenticated transport.
func TestRaftAuthStoresReplicate(t *testing.T) {
	open := func(name string, boot bool) *Store {
		s, err := OpenStore(RaftConfig{
			NodeName: name, DataDir: t.TempDir(), BindAddr: "127.0.0.1:0", Bootstrap: boot, ClusterKey: "k",
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
	if err := a.Raft().AddVoter(raft.ServerID(b.ID()), raft.ServerAddress(b.Addr()), 0, 10*time.Second).Error(); err != nil {
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
