package disk

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// The ballast holds the raft reserve while the volume has room, goes when
// the volume is all but full, and comes back once there is room for it
// above both reserves; the floor media must leave counts it.
func TestBallast(t *testing.T) {
	const size, raft = 1000 << 20, 64 << 20
	var mu sync.Mutex
	avail := int64(500 << 20)
	s, err := New(Config{Dir: t.TempDir(), Reserve: Reserve{Bytes: 100 << 20}, RaftReserve: raft,
		Statfs: func(string) (Usage, error) {
			mu.Lock()
			defer mu.Unlock()
			return Usage{Size: size, Avail: avail}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	setAvail := func(n int64) { mu.Lock(); avail = n; mu.Unlock() }
	path := filepath.Join(t.TempDir(), "raft.ballast")
	if err := s.AttachBallast(path); err != nil {
		t.Fatal(err)
	}
	if s.Floor() != 100<<20+raft {
		t.Fatalf("floor without a ballast: %d", s.Floor())
	}
	if ev, err := s.TendBallast(); err != nil || ev != BallastMade {
		t.Fatalf("room for it: %q %v", ev, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != raft {
		t.Fatalf("ballast file: %v %v", fi, err)
	}
	if s.Floor() != 100<<20 {
		t.Fatalf("floor with the ballast held: %d", s.Floor())
	}
	setAvail(raft / 4) // filling up: still above the low mark
	if ev, _ := s.TendBallast(); ev != "" {
		t.Fatalf("released at %d free: %q", raft/4, ev)
	}
	setAvail(raft/ballastLow - 1)
	if ev, err := s.TendBallast(); err != nil || ev != BallastReleased {
		t.Fatalf("all but full: %q %v", ev, err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("ballast still there: %v", err)
	}
	if s.Floor() != 100<<20+raft {
		t.Fatalf("floor after the release: %d", s.Floor())
	}
	setAvail(100<<20 + 2*raft - 1) // not yet room for it above both reserves
	if ev, _ := s.TendBallast(); ev != "" {
		t.Fatalf("made without room: %q", ev)
	}
	setAvail(100<<20 + 2*raft)
	if ev, _ := s.TendBallast(); ev != BallastMade {
		t.Fatalf("not made again with room: %q", ev)
	}

	// A restart counts the ballast it finds.
	s2, _ := New(Config{Dir: t.TempDir(), Reserve: Reserve{Bytes: 100 << 20}, RaftReserve: raft,
		Statfs: func(string) (Usage, error) { return Usage{Size: size, Avail: 500 << 20}, nil }})
	if err := s2.AttachBallast(path); err != nil || s2.Floor() != 100<<20 {
		t.Fatalf("restart: floor %d, %v", s2.Floor(), err)
	}
	// No raft reserve: no ballast, an old one removed.
	s3, _ := New(Config{Dir: t.TempDir(), Statfs: func(string) (Usage, error) { return Usage{Size: size, Avail: 500 << 20}, nil }})
	if err := s3.AttachBallast(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("a ballast kept with no raft reserve: %v", err)
	}
}
