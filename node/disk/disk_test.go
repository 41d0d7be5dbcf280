package disk

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosty/gosty/cluster"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "1048576": 1 << 20, "2GiB": 2 << 30, "2Gi": 2 << 30, "2 GiB": 2 << 30, "256MiB": 256 << 20,
		"1.5GiB": 3 << 29, "500MB": 500e6, "2G": 2e9, "4KiB": 4096, "10B": 10, "1TiB": 1 << 40,
	} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1", "-1GiB", "GiB", "1PiB", "9999999999TiB", "1e400", "NaNGiB", "1.2.3MiB"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
	for _, n := range []int64{0, 10, 4096, 256 << 20, 2 << 30, 3 << 29, 1 << 40} {
		if got, err := ParseSize(FormatSize(n)); err != nil || (got != n && n%(1<<20) == 0) {
			t.Errorf("FormatSize(%d) = %q reads back as %d, %v", n, FormatSize(n), got, err)
		}
	}
}

func TestParseReserve(t *testing.T) {
	const gib = 1 << 30
	for _, tc := range []struct {
		in   string
		size int64
		want int64
	}{
		{DefaultReserve, 50 * gib, 2 * gib},         // 5% = 2.5 GiB: the 2 GiB bound is smaller
		{DefaultReserve, 10 * gib, gib / 2},         // 5% = 512 MiB
		{DefaultReserve, 64 << 20, (64 << 20) / 20}, // a 64 MiB tmpfs: 3.2 MiB
		{"2GiB,5%", 50 * gib, 2 * gib},              // order does not matter
		{"5%", 1000 * gib, 50 * gib},                // a percentage alone
		{"8MiB", 64 << 20, 8 << 20},                 // a size alone
		{"0", 50 * gib, 0},                          // nothing kept
		{"0%", 50 * gib, 0},                         //
		{"12.5%", 80 * gib, 10 * gib},               //
		{" 1GiB , 50% ", 1 * gib, gib / 2},          // spaces
	} {
		r, err := ParseReserve(tc.in)
		if err != nil {
			t.Errorf("ParseReserve(%q): %v", tc.in, err)
			continue
		}
		if got := r.Of(tc.size); got != tc.want {
			t.Errorf("ParseReserve(%q).Of(%d) = %d, want %d", tc.in, tc.size, got, tc.want)
		}
		if back, err := ParseReserve(r.String()); err != nil || back != r {
			t.Errorf("ParseReserve(%q).String() = %q reads back as %+v, %v", tc.in, r.String(), back, err)
		}
	}
	for _, in := range []string{"", "x%", "100%", "-1%", "5%,6%", "1GiB,2GiB", "5%,,", "lots"} {
		if r, err := ParseReserve(in); err == nil {
			t.Errorf("ParseReserve(%q) = %+v, want an error", in, r)
		}
	}
}

// fakeFS is a volume whose free space the test sets, with a clock.
type fakeFS struct {
	mu    sync.Mutex
	u     Usage
	reads int
	now   time.Time
	err   error
}

func (f *fakeFS) statfs(string) (Usage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	return f.u, f.err
}

func (f *fakeFS) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeFS) set(avail int64) {
	f.mu.Lock()
	f.u.Avail = avail
	f.mu.Unlock()
}

func (f *fakeFS) tick(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

func newFake(t *testing.T, size, avail int64, reserve string, raft int64) (*Space, *fakeFS) {
	t.Helper()
	fs := &fakeFS{u: Usage{Size: size, Avail: avail}, now: time.Unix(1e9, 0)}
	r, err := ParseReserve(reserve)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Dir: "/data", Reserve: r, RaftReserve: raft, TTL: time.Second, Statfs: fs.statfs, Now: fs.clock})
	if err != nil {
		t.Fatal(err)
	}
	return s, fs
}

func TestAdmitKeepsBothReserves(t *testing.T) {
	const mib = 1 << 20
	s, fs := newFake(t, 64*mib, 40*mib, "8MiB", 4*mib)
	if s.Floor() != 12*mib || s.ReserveBytes() != 8*mib || s.RaftReserveBytes() != 4*mib {
		t.Fatalf("floor %d reserve %d raft %d", s.Floor(), s.ReserveBytes(), s.RaftReserveBytes())
	}
	if err := s.Admit(28 * mib); err != nil {
		t.Fatalf("28 MiB of 40 free above 12 kept: %v", err)
	}
	err := s.Admit(28*mib + 1)
	if !errors.Is(err, cluster.ErrNoSpace) {
		t.Fatalf("one byte more: %v", err)
	}
	for _, w := range []string{"40MiB free", "12MiB of it kept free", "disk reserve 8MiB", "raft reserve 4MiB", "28MiB left for media"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("the refusal %q does not say %q", err, w)
		}
	}
	if h, _ := s.Headroom(); h != 28*mib || s.Full() {
		t.Fatalf("headroom %d, full %v", h, s.Full())
	}

	// Takes count until the next reading: two writers of 20 MiB cannot
	// both get in between two readings.
	if err := s.Take(20 * mib); err != nil {
		t.Fatal(err)
	}
	if h, _ := s.Headroom(); h != 8*mib {
		t.Fatalf("headroom after a take: %d", h)
	}
	// A refusal reads the volume afresh first: the 20 MiB are written
	// (the reading sees them), and 5 MiB more still fit.
	fs.set(20 * mib)
	if err := s.Take(10 * mib); !errors.Is(err, cluster.ErrNoSpace) {
		t.Fatalf("10 MiB more after a fresh reading: %v", err)
	}
	if err := s.Take(5 * mib); err != nil {
		t.Fatalf("5 MiB: %v", err)
	}
	fs.set(15 * mib)
	// The next reading (after the TTL) sees the bytes on disk instead.
	fs.tick(time.Second)
	if h, _ := s.Headroom(); h != 3*mib {
		t.Fatalf("headroom after the reading: %d", h)
	}
	// Below the floor: full, nothing admitted, not even a byte.
	fs.set(11 * mib)
	if h, _ := s.Headroom(); h != 3*mib {
		t.Fatal("a reading is used for its TTL")
	}
	if _, err := s.Refresh(); err != nil {
		t.Fatal(err)
	}
	if !s.Full() || s.Admit(1) == nil || s.Admit(0) == nil {
		t.Fatal("below the floor: full and refusing")
	}
	fs.set(30 * mib)
	fs.tick(time.Second)
	if s.Full() {
		t.Fatal("room again")
	}
}

func TestTakeIsCachedAdmitIsFresh(t *testing.T) {
	s, fs := newFake(t, 1<<30, 1<<29, DefaultReserve, DefaultRaftReserve)
	before := fs.reads
	for range 1000 {
		_ = s.Take(1)
	}
	if fs.reads != before {
		t.Fatalf("%d statfs calls within the TTL", fs.reads-before)
	}
	fs.tick(time.Second)
	_ = s.Take(1)
	if fs.reads != before+1 {
		t.Fatalf("%d statfs calls after the TTL, want 1", fs.reads-before)
	}
	// A declared size is checked against a fresh reading: a file written
	// a moment ago counts.
	fs.set(1 << 20)
	if err := s.Admit(1); !errors.Is(err, cluster.ErrNoSpace) || fs.reads != before+2 {
		t.Fatalf("Admit after the volume filled: %v (%d reads)", err, fs.reads-before)
	}
}

func TestHoldKeepsFull(t *testing.T) {
	s, fs := newFake(t, 1<<30, 1<<29, DefaultReserve, DefaultRaftReserve)
	s.Hold(time.Minute)
	if !s.Full() {
		t.Fatal("held: full")
	}
	if err := s.Admit(1); err != nil {
		t.Fatal("a hold stops new tasks, not uploads that fit")
	}
	fs.tick(time.Minute)
	if s.Full() {
		t.Fatal("the hold ended")
	}
}

func TestUnreadableVolumeAdmitsNothing(t *testing.T) {
	s, fs := newFake(t, 1<<30, 1<<29, DefaultReserve, DefaultRaftReserve)
	fs.mu.Lock()
	fs.err = errors.New("statfs: input/output error")
	fs.mu.Unlock()
	fs.tick(time.Second)
	if err := s.Admit(1); !errors.Is(err, cluster.ErrNoSpace) || !s.Full() {
		t.Fatalf("admit on an unreadable volume: %v", err)
	}
	if _, err := New(Config{Dir: "/nonexistent/gosty"}); err == nil {
		t.Fatal("New on a missing dir must fail")
	}
}

// The real statfs reads a real directory.
func TestStatfs(t *testing.T) {
	u, err := Statfs(t.TempDir())
	if err != nil || u.Size <= 0 || u.Avail < 0 || u.Avail > u.Size {
		t.Fatalf("Statfs = %+v, %v", u, err)
	}
}
