package cluster

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// FSM is the raft.FSM over State. Reads take copies under a read lock;
// every applied entry wakes the watchers (the scheduler, the worker loop,
// server-sent events) by closing the current change channel.
type FSM struct {
	log *slog.Logger

	mu      sync.RWMutex
	state   *State
	changed chan struct{}
	applied uint64

	onFinish atomic.Pointer[func(Job)]
	onExpire atomic.Pointer[func(Job)]
}

// NewFSM returns an FSM over an empty state.
func NewFSM(log *slog.Logger) *FSM {
	if log == nil {
		log = slog.Default()
	}
	return &FSM{log: log, state: NewState(), changed: make(chan struct{})}
}

var _ raft.FSM = (*FSM)(nil)

// Apply applies one committed entry. The returned value is the command's
// error (nil when it took effect); raft hands it back to the proposer.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	c, err := DecodeCommand(l.Data)
	if err != nil {
		f.log.Error("skipping undecodable log entry", "index", l.Index, "err", err)
		return err
	}
	f.mu.Lock()
	err = f.state.Apply(c)
	finished, expired := f.state.finished, f.state.expired
	f.state.finished, f.state.expired = nil, nil
	f.applied = l.Index
	f.notifyLocked()
	f.mu.Unlock()
	if err != nil {
		f.log.Debug("command refused", "index", l.Index, "op", c.Op, "err", err)
	}
	// A node replaying an old log after a restart must not report those
	// jobs as finishing now.
	if fn := f.onFinish.Load(); fn != nil && time.Since(c.At) < finishReportWindow {
		for _, j := range finished {
			(*fn)(j)
		}
	}
	if fn := f.onExpire.Load(); fn != nil && time.Since(c.At) < finishReportWindow {
		for _, j := range expired {
			(*fn)(j)
		}
	}
	return err
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

// Read calls fn with the state under a read lock. fn must not keep or change
// anything it is given.
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

// Snapshot captures the state; the copy is taken under the lock and written
// out later without it.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return &snapshot{state: f.state.Clone()}, nil
}

// Restore replaces the state with a snapshot.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var env snapshotEnvelope
	if err := json.NewDecoder(rc).Decode(&env); err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	if env.V < 1 || env.V > CommandVersion {
		return fmt.Errorf("restore snapshot: unsupported version %d", env.V)
	}
	st := env.State
	if st == nil {
		st = NewState()
	}
	if st.Jobs == nil {
		st.Jobs = map[string]*Job{}
	}
	if st.Tasks == nil {
		st.Tasks = map[string]*Task{}
	}
	if st.Blobs == nil {
		st.Blobs = map[string]*BlobHolders{}
	}
	if st.Nodes == nil {
		st.Nodes = map[string]string{}
	}
	f.mu.Lock()
	f.state = st
	f.notifyLocked()
	f.mu.Unlock()
	return nil
}

type snapshotEnvelope struct {
	V     int    `json:"v"`
	State *State `json:"state"`
}

type snapshot struct{ state *State }

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	err := json.NewEncoder(sink).Encode(snapshotEnvelope{V: CommandVersion, State: s.state})
	if err != nil {
		sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *snapshot) Release() {}
