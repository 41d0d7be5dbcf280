// Package disk watches the free space of a node's data volume and decides
// whether media may take more of it.
//
// Uploads, resumable (tus) upload files, blobs, task work files, the raft
// log and its snapshots all live on one volume. A node keeps two amounts
// of it free: the disk reserve (--disk-reserve: room for running tasks'
// work files and everything that is not admitted byte by byte) and, on top
// of it, the raft reserve (--raft-reserve), so that the job log and its
// snapshots can always be written whatever media do. Media are admitted
// only while they leave both free: Admit says whether a declared size
// fits, Take does the same for bytes about to be written and counts them.
// A node whose free space is below the two reserves together is Full:
// it takes no upload, no blob copy and no new task.
//
// Admit (once per request) reads the volume with statfs; Take (once per
// chunk written) uses a reading for a TTL (a few hundred milliseconds),
// less the bytes admitted through Take since, so that many writers
// between two readings cannot together overshoot the reserve, and reads
// afresh before it refuses.
package disk

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gosty/gosty/cluster"
)

// Defaults: the disk reserve is the smaller of 5 % of the volume and
// 2 GiB; the raft reserve 256 MiB.
const (
	DefaultReserve     = "5%,2GiB"
	DefaultRaftReserve = 256 << 20
	// DefaultTTL is how long a statfs reading is used.
	DefaultTTL = 250 * time.Millisecond
)

// Reserve is an amount of a volume to keep free: a number of bytes, a
// share of the volume's size, or both (then the smaller of the two).
type Reserve struct {
	Bytes   int64   // 0 = none given
	Percent float64 // 0 = none given
}

// ParseReserve reads --disk-reserve: a size ("2GiB", "500MB", "1048576"),
// a percentage ("5%") or both, comma-separated ("5%,2GiB": the smaller
// applies). "0" keeps nothing free.
func ParseReserve(s string) (Reserve, error) {
	var r Reserve
	s = strings.TrimSpace(s)
	if s == "" {
		return r, fmt.Errorf("disk reserve: empty (want a size like 2GiB, a percentage like 5%%, or both)")
	}
	seenBytes, seenPct := false, false
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if p, ok := strings.CutSuffix(part, "%"); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
			if err != nil || v < 0 || v >= 100 || math.IsNaN(v) || seenPct {
				return Reserve{}, fmt.Errorf("disk reserve %q: %q is not a percentage from 0 to 100 (or given twice)", s, part)
			}
			r.Percent, seenPct = v, true
			continue
		}
		n, err := ParseSize(part)
		if err != nil || seenBytes {
			return Reserve{}, fmt.Errorf("disk reserve %q: want a size (2GiB), a percentage (5%%) or both, comma-separated", s)
		}
		r.Bytes, seenBytes = n, true
	}
	return r, nil
}

// Of is the reserve in bytes on a volume of size bytes.
func (r Reserve) Of(size int64) int64 {
	pct := int64(-1)
	if r.Percent > 0 {
		pct = int64(float64(size) * r.Percent / 100)
	}
	switch {
	case r.Bytes > 0 && pct >= 0:
		return min(r.Bytes, pct)
	case pct >= 0:
		return pct
	default:
		return r.Bytes
	}
}

func (r Reserve) String() string {
	var parts []string
	if r.Percent > 0 {
		parts = append(parts, strconv.FormatFloat(r.Percent, 'f', -1, 64)+"%")
	}
	if r.Bytes > 0 || len(parts) == 0 {
		parts = append(parts, FormatSize(r.Bytes))
	}
	return strings.Join(parts, ",")
}

var units = []struct {
	suffix string
	mult   int64
}{
	// Longest first, so that "GiB" is not read as "B" after "Gi".
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12},
	{"B", 1},
}

// ParseSize reads a byte count: a plain number of bytes, or a number with
// a binary (KiB, MiB, GiB, TiB; Ki, Mi, Gi, Ti as Kubernetes writes them)
// or decimal (KB, MB, GB, TB; K, M, G, T) unit. Fractions are allowed
// ("1.5GiB").
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	num := s
	for _, u := range units {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = strings.TrimSpace(v), u.mult
			break
		}
	}
	if n, err := strconv.ParseInt(num, 10, 64); err == nil {
		if n < 0 || (n > 0 && n > math.MaxInt64/mult) {
			return 0, fmt.Errorf("size %q out of range", s)
		}
		return n * mult, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) || f*float64(mult) >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q: want bytes or a number with a unit (KiB, MiB, GiB, TiB, KB, MB, GB, TB)", s)
	}
	return int64(f * float64(mult)), nil
}

// FormatSize writes a byte count with a binary unit, as ParseSize reads it.
func FormatSize(n int64) string {
	for _, u := range []struct {
		s string
		m int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.m {
			if n%u.m == 0 {
				return strconv.FormatInt(n/u.m, 10) + u.s
			}
			return strconv.FormatFloat(float64(n)/float64(u.m), 'f', 1, 64) + u.s
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

// Usage is one reading of a volume.
type Usage struct {
	Size  int64 // bytes in the file system
	Avail int64 // bytes this process may still write (statfs f_bavail)
}

// Statfs reads the volume that holds dir.
func Statfs(dir string) (Usage, error) {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		return Usage{}, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return Usage{Size: int64(fs.Blocks) * int64(fs.Bsize), Avail: int64(fs.Bavail) * int64(fs.Bsize)}, nil
}

// Space is the admission of media to one data volume. Its methods are safe
// for concurrent use.
type Space struct {
	dir     string
	reserve Reserve
	raft    int64
	ttl     time.Duration
	read    func(string) (Usage, error)
	now     func() time.Time

	mu   sync.Mutex
	last Usage
	at   time.Time
	err  error
	// taken counts the bytes admitted through Take since last was read.
	taken atomic.Int64
	// holdUntil keeps the node Full after a write failed for lack of
	// space, until the disk has been seen with room again after it.
	holdUntil time.Time

	// ballast is the file that holds the raft reserve (ballast.go), and
	// held its size while it is there (0: released or never made).
	ballast string
	held    atomic.Int64
}

// Config builds a Space.
type Config struct {
	Dir         string
	Reserve     Reserve
	RaftReserve int64
	// TTL is how long a reading is used (0: DefaultTTL).
	TTL time.Duration
	// Statfs replaces the real statfs (tests); nil = Statfs.
	Statfs func(dir string) (Usage, error)
	// Now replaces the clock (tests); nil = time.Now.
	Now func() time.Time
}

// New returns the space of cfg.Dir's volume and reads it once, so that a
// data dir that cannot be read fails at start.
func New(cfg Config) (*Space, error) {
	if cfg.RaftReserve < 0 || cfg.Reserve.Bytes < 0 || cfg.Reserve.Percent < 0 {
		return nil, errors.New("disk: reserves must not be negative")
	}
	s := &Space{dir: cfg.Dir, reserve: cfg.Reserve, raft: cfg.RaftReserve, ttl: cfg.TTL, read: cfg.Statfs, now: cfg.Now}
	if s.ttl <= 0 {
		s.ttl = DefaultTTL
	}
	if s.read == nil {
		s.read = Statfs
	}
	if s.now == nil {
		s.now = time.Now
	}
	if _, err := s.Usage(); err != nil {
		return nil, err
	}
	return s, nil
}

// Usage is the volume as last read (read again when the reading is older
// than the TTL), its Avail less the bytes taken since.
func (s *Space) Usage() (Usage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.usageLocked(false)
}

// Refresh reads the volume now, whatever the TTL.
func (s *Space) Refresh() (Usage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.usageLocked(true)
}

func (s *Space) usageLocked(force bool) (Usage, error) {
	now := s.now()
	if force || s.at.IsZero() || now.Sub(s.at) >= s.ttl {
		// Bytes taken before this reading are in it (written, or given
		// up by a writer that failed): start counting afresh.
		s.taken.Store(0)
		s.last, s.err = s.read(s.dir)
		s.at = now
	}
	u := s.last
	u.Avail = max(u.Avail-s.taken.Load(), 0)
	return u, s.err
}

// ReserveBytes is the disk reserve on this volume.
func (s *Space) ReserveBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reserve.Of(s.last.Size)
}

// RaftReserveBytes is the room kept for the raft log and snapshots.
func (s *Space) RaftReserveBytes() int64 { return s.raft }

// Floor is what media must leave free: the disk reserve and the raft
// reserve together (less what the ballast holds of the latter: those
// bytes are not free already).
func (s *Space) Floor() int64 { return s.ReserveBytes() + s.raftFloor() }

// raftFloor is the part of the raft reserve that must be left free: all
// of it, unless the ballast holds it.
func (s *Space) raftFloor() int64 { return max(s.raft-s.held.Load(), 0) }

// Headroom is how many bytes media may still take (negative when the
// volume is already below the floor).
func (s *Space) Headroom() (int64, error) {
	u, err := s.Usage()
	if err != nil {
		return 0, err
	}
	return u.Avail - s.reserve.Of(u.Size) - s.raftFloor(), nil
}

// Admit returns nil when n more bytes of media fit above the reserves, and
// otherwise an error wrapping cluster.ErrNoSpace that says how much room
// there is. A volume that cannot be read admits nothing.
//
// Admit reads the volume afresh (it is asked once per request, for a
// declared size, so the syscall costs nothing that matters): a file
// someone else wrote a moment ago counts.
func (s *Space) Admit(n int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.admitLocked(n, true)
}

// admitLocked checks n against a reading; a refusal based on a cached
// reading is checked again against a fresh one (a writer that failed may
// just have removed its file), so that only a fresh reading refuses.
func (s *Space) admitLocked(n int64, fresh bool) error {
	u, err := s.usageLocked(fresh)
	if err != nil {
		return fmt.Errorf("%w: %v", cluster.ErrNoSpace, err)
	}
	floor := s.reserve.Of(u.Size) + s.raftFloor()
	if !fresh && (n < 0 || u.Avail-n < floor) {
		return s.admitLocked(n, true)
	}
	if n < 0 || u.Avail-n < floor {
		room := max(u.Avail-floor, 0)
		raft := "raft reserve " + FormatSize(s.raft)
		if s.held.Load() > 0 {
			raft += " held apart by its ballast"
		}
		return fmt.Errorf("%w: %s more would not fit: %s free on the data volume, %s of it kept free (disk reserve %s, %s), so %s left for media",
			cluster.ErrNoSpace, FormatSize(max(n, 0)), FormatSize(u.Avail), FormatSize(floor),
			FormatSize(s.reserve.Of(u.Size)), raft, FormatSize(room))
	}
	return nil
}

// Take admits n bytes about to be written and counts them until the next
// reading of the volume, which will see them. It uses the reading of the
// last TTL (it is asked for every chunk a writer writes), and reads
// afresh only before it refuses.
func (s *Space) Take(n int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.admitLocked(n, false); err != nil {
		return err
	}
	s.taken.Add(n)
	return nil
}

// Full reports whether the volume is below the reserves (or was found out
// of space by a write within the hold), so that the node should take no
// new task, upload or blob copy.
func (s *Space) Full() bool {
	h, err := s.Headroom()
	if err != nil || h < 0 {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now().Before(s.holdUntil)
}

// Hold marks the volume Full for d: a write failed for lack of space (a
// task's ffmpeg, say, which writes without asking), and the space it
// took may be back as soon as its work files are removed; the scheduler
// should look elsewhere for a while rather than hand the node the same
// work at once.
func (s *Space) Hold(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.now().Add(d); t.After(s.holdUntil) {
		s.holdUntil = t
	}
	s.at = time.Time{} // read the volume afresh next time
}
