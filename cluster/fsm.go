package cluster

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// FSM is the raft.FSM over State. Reads run under a read lock (records are
// immutable, so what a reader takes stays valid after it); every applied
// entry wakes the watchers (the scheduler, the worker loop, server-sent
// events) by closing the current change channel, and records which jobs it
// changed in a bounded feed (ChangesSince) so that watchers look at those
// jobs only.
type FSM struct {
	log *slog.Logger

	mu      sync.RWMutex
	state   *State
	changed chan struct{}
	applied uint64
	feed    changeFeed

	commands atomic.Uint64 // commands applied (a batch counts its own)

	onFinish atomic.Pointer[func(Job)]
	onExpire atomic.Pointer[func(Job)]
	onBlobs  atomic.Pointer[func(BlobEvents)]
}

// BlobEvents says what one applied entry did to blob records: Released
// lost their last reference (their bytes may go), Durable became durable
// or lost a holder (replication may be due).
type BlobEvents struct {
	Released []BlobRef
	Durable  []string
}

// NewFSM returns an FSM over an empty state.
func NewFSM(log *slog.Logger) *FSM {
	if log == nil {
		log = slog.Default()
	}
	return &FSM{log: log, state: NewState(), changed: make(chan struct{}), feed: newChangeFeed(feedSize)}
}

var _ raft.FSM = (*FSM)(nil)

// Apply applies one committed entry. The returned value is the command's
// error (nil when it took effect), or a BatchResult for a batch; raft hands
// it back to the proposer.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	c, err := DecodeCommand(l.Data)
	if err != nil {
		f.log.Error("skipping undecodable log entry", "index", l.Index, "err", err)
		return err
	}
	var res any
	f.mu.Lock()
	if c.Op == OpBatch {
		errs, berr := f.state.ApplyBatch(c)
		err = berr
		if berr == nil {
			res = BatchResult{Errs: errs}
			f.commands.Add(uint64(len(errs)))
		}
	} else {
		err = f.state.Apply(c)
		f.commands.Add(1)
	}
	rep := f.state.takeReport()
	f.applied = l.Index
	f.feed.add(l.Index, rep.touched)
	f.notifyLocked()
	f.mu.Unlock()
	if err != nil {
		f.log.Debug("command refused", "index", l.Index, "op", c.Op, "err", err)
		res = err
	}
	if r, ok := res.(BatchResult); ok {
		for i, e := range r.Errs {
			if e != nil {
				f.log.Debug("command refused", "index", l.Index, "op", OpBatch, "item", i, "err", e)
			}
		}
	}
	f.report(c, rep)
	return res
}

// report tells the watchers what an entry did, outside the lock.
func (f *FSM) report(c Command, rep applyReport) {
	// A node replaying an old log after a restart must not report those
	// jobs as finishing now.
	fresh := time.Since(c.At) < finishReportWindow
	if fn := f.onFinish.Load(); fn != nil && fresh {
		for _, j := range rep.finished {
			(*fn)(j)
		}
	}
	if fn := f.onExpire.Load(); fn != nil && fresh {
		for _, j := range rep.expired {
			(*fn)(j)
		}
	}
	if fn := f.onBlobs.Load(); fn != nil && (len(rep.released) > 0 || len(rep.durable) > 0) {
		(*fn)(BlobEvents{Released: rep.released, Durable: rep.durable})
	}
}

// OnJobExpired sets fn to be called (outside the lock) with every job whose
// media expire in a freshly committed entry. Every node calls it for the
// same jobs.
func (f *FSM) OnJobExpired(fn func(Job)) { f.onExpire.Store(&fn) }

// finishReportWindow is how old a log entry may be for the jobs it finishes
// to be reported to OnJobFinished.
const finishReportWindow = time.Minute

// OnJobFinished sets fn to be called (outside the lock) with every job that
// reaches done, failed or canceled in a freshly committed entry. Every node
// calls it for the same jobs.
func (f *FSM) OnJobFinished(fn func(Job)) { f.onFinish.Store(&fn) }

// OnBlobs sets fn to be called (outside the lock, from raft's apply
// goroutine: it must not block) with what every applied entry, replayed
// ones included, did to blob records.
func (f *FSM) OnBlobs(fn func(BlobEvents)) { f.onBlobs.Store(&fn) }

func (f *FSM) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// Changed returns a channel that is closed at the next applied entry.
func (f *FSM) Changed() <-chan struct{} {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.changed
}

// Read calls fn with the state under a read lock. fn must not change
// anything it is given, and should be short: applying waits for it.
func (f *FSM) Read(fn func(s *State)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.state)
}

// AppliedIndex is the index of the last applied entry.
func (f *FSM) AppliedIndex() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.applied
}

// CommandsApplied is how many commands this FSM applied since it started
// (every command of a batch counts, refused ones too).
func (f *FSM) CommandsApplied() uint64 { return f.commands.Load() }

// LogVersion is the log version the cluster writes now.
func (f *FSM) LogVersion() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state.version
}

// ChangesSince returns the jobs changed (or removed) by entries after index
// after, each once, and the index they bring the caller to. ok is false
// when the feed no longer reaches back that far (the caller was away too
// long, or a snapshot was restored): the caller must read afresh.
func (f *FSM) ChangesSince(after uint64) (ids []string, upTo uint64, ok bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	ids, ok = f.feed.since(after)
	return ids, f.applied, ok
}

// Snapshot freezes the state in O(1) (see snapshot.go); raft writes it out
// later without the lock.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &snapshot{f: f.state.freeze()}, nil
}

// Restore replaces the state with a snapshot, read one record at a time
// into a new state while the old one still answers reads.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	st, err := ReadState(rc)
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	f.mu.Lock()
	f.state = st
	f.feed.reset()
	f.notifyLocked()
	f.mu.Unlock()
	return nil
}

type snapshot struct{ f *frozen }

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.f.WriteTo(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *snapshot) Release() {}

// feedSize bounds the change feed: a watcher that falls further behind
// reads afresh.
const feedSize = 8192

// changeFeed is a ring of (index, job ID) pairs, oldest first.
type changeFeed struct {
	buf   []feedEntry
	start int
	n     int
	// floor is the index below which changes may be missing: the feed
	// starts there after a restore, and moves up as the ring overwrites.
	floor uint64
}

type feedEntry struct {
	index uint64
	id    string
}

func newChangeFeed(size int) changeFeed { return changeFeed{buf: make([]feedEntry, size)} }

func (c *changeFeed) add(index uint64, ids []string) {
	if c.floor == restored {
		c.floor = index - 1 // complete from this entry on
	}
	for _, id := range ids {
		if c.n == len(c.buf) {
			c.floor = c.buf[c.start].index
			c.start = (c.start + 1) % len(c.buf)
			c.n--
		}
		c.buf[(c.start+c.n)%len(c.buf)] = feedEntry{index: index, id: id}
		c.n++
	}
}

func (c *changeFeed) since(after uint64) ([]string, bool) {
	if after < c.floor || c.floor == restored {
		return nil, false
	}
	seen := map[string]bool{}
	var out []string
	for i := 0; i < c.n; i++ {
		e := c.buf[(c.start+i)%len(c.buf)]
		if e.index > after && !seen[e.id] {
			seen[e.id] = true
			out = append(out, e.id)
		}
	}
	slices.Sort(out)
	return out, true
}

// restored marks a feed emptied by a restore: until the next entry, no
// watcher can be told what changed.
const restored = ^uint64(0)

func (c *changeFeed) reset() {
	c.start, c.n = 0, 0
	c.floor = restored
}
