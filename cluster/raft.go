package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/gosty/gosty/cluster/peerlink"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// RaftConfig configures the consensus part of a node.
type RaftConfig struct {
	NodeName  string // memberlist name; the task assignee name
	DataDir   string // raft state lives in DataDir/raft
	BindAddr  string // host:port the raft transport listens on
	Advertise string // host:port peers dial; empty = BindAddr (must not be unspecified)
	// Bootstrap makes a node with empty raft state form a one-node cluster.
	Bootstrap bool
	Logger    *slog.Logger
	// AddressProvider resolves a server ID to its current raft address
	// (from gossip), so that peers whose IPs changed are still reached.
	AddressProvider raft.ServerAddressProvider
	// Link, when set, carries every raft connection (TLS 1.3 and the
	// cluster key's exchange: raftlink.go, package peerlink). A node always
	// sets it; nil is plain TCP, for tests of raft alone.
	Link *peerlink.Link
	// Tuning, zero = raft defaults; tests shorten them.
	HeartbeatTimeout time.Duration
	ElectionTimeout  time.Duration
}

// Store is the replicated job log of one node: raft over BoltDB plus the FSM.
type Store struct {
	cfg       RaftConfig
	log       *slog.Logger
	id        raft.ServerID
	fsm       *FSM
	raft      *raft.Raft
	transport *raft.NetworkTransport
	bolt      *raftboltdb.BoltStore
	hadState  bool
	commits   *committer
	stop      context.CancelFunc
	done      chan struct{}

	// joined records when servers last asked this leader to join, so the
	// promoter does not take out a node that gossip still remembers as
	// gone (its rejoin can reach raft before its alive message spreads).
	joinedMu sync.Mutex
	joined   map[raft.ServerID]time.Time

	reach reach // on the leader, the servers its heartbeats fail to reach
}

// noteJoin records that a server just asked to join.
func (s *Store) noteJoin(id raft.ServerID) {
	s.joinedMu.Lock()
	defer s.joinedMu.Unlock()
	if s.joined == nil {
		s.joined = map[raft.ServerID]time.Time{}
	}
	now := time.Now()
	for k, at := range s.joined {
		if now.Sub(at) > time.Hour {
			delete(s.joined, k)
		}
	}
	s.joined[id] = now
}

// joinedAt says when a server last asked this leader to join.
func (s *Store) joinedAt(id raft.ServerID) (time.Time, bool) {
	s.joinedMu.Lock()
	defer s.joinedMu.Unlock()
	at, ok := s.joined[id]
	return at, ok
}

// OpenStore opens (or creates) the raft state in cfg.DataDir and starts raft.
// It is long because its steps (the transport over the secure link, the
// BoltDB log and stable store, snapshots, raft's configuration,
// bootstrapping) each need the ones before, in this order.
func OpenStore(cfg RaftConfig) (*Store, error) {
	if cfg.NodeName == "" || cfg.DataDir == "" || cfg.BindAddr == "" {
		return nil, fmt.Errorf("open store: node name, data dir and bind address are required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	dir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	id, err := LocalServerID(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	s := &Store{cfg: cfg, log: log.With("raft_id", id), id: raft.ServerID(id), fsm: NewFSM(log)}
	s.commits = newCommitter(s, log)

	adv := cfg.Advertise
	if adv == "" {
		adv = cfg.BindAddr
	}
	advAddr, err := net.ResolveTCPAddr("tcp", adv)
	if err != nil {
		return nil, fmt.Errorf("open store: advertise address %q: %w", adv, err)
	}
	if advAddr.IP == nil || advAddr.IP.IsUnspecified() {
		return nil, fmt.Errorf("open store: advertise address %q is not reachable by peers; set --advertise-addr", adv)
	}
	var advertise net.Addr = advAddr
	if advAddr.Port == 0 {
		// Port 0 (tests): advertise whatever port the listener gets.
		advertise = nil
	}
	stream, err := newBoundStream(cfg.BindAddr, advertise)
	if err != nil {
		return nil, fmt.Errorf("open store: raft transport on %s: %w", cfg.BindAddr, err)
	}
	var layer raft.StreamLayer = stream
	if cfg.Link != nil {
		layer = newLinkStream(stream, cfg.Link)
	}
	s.transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		ServerAddressProvider: cfg.AddressProvider,
		Logger:                newHCLogger(log, "raft-net"),
		Stream:                layer,
		MaxPool:               3,
		Timeout:               10 * time.Second,
	})
	s.bolt, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
	if err != nil {
		s.transport.Close()
		return nil, fmt.Errorf("open store: bolt: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, newHCLogger(log, "raft-snap"))
	if err != nil {
		s.closeParts()
		return nil, fmt.Errorf("open store: snapshots: %w", err)
	}

	rc := raft.DefaultConfig()
	rc.LocalID = s.id
	rc.Logger = newHCLogger(log, "raft")
	// The per-peer legacy metric names are dropped by the bridge anyway.
	rc.NoLegacyTelemetry = true
	if cfg.HeartbeatTimeout > 0 {
		rc.HeartbeatTimeout = cfg.HeartbeatTimeout
		rc.LeaderLeaseTimeout = cfg.HeartbeatTimeout / 2
	}
	if cfg.ElectionTimeout > 0 {
		rc.ElectionTimeout = cfg.ElectionTimeout
	}
	// Snapshots keep restart replay short (they are cheap: see
	// snapshot.go). An entry may be a batch of hundreds of commands, so a
	// thousand entries kept behind a snapshot (not raft's 10240) are plenty
	// for a follower that fell a little behind, and keep the log file small.
	rc.SnapshotThreshold = 1024
	rc.TrailingLogs = 1024
	if err := raft.ValidateConfig(rc); err != nil {
		s.closeParts()
		return nil, fmt.Errorf("open store: raft config: %w", err)
	}

	has, err := raft.HasExistingState(s.bolt, s.bolt, snaps)
	if err != nil {
		s.closeParts()
		return nil, fmt.Errorf("open store: %w", err)
	}
	s.hadState = has
	s.raft, err = raft.NewRaft(rc, s.fsm, s.bolt, s.bolt, snaps, s.transport)
	if err != nil {
		s.closeParts()
		return nil, fmt.Errorf("open store: start raft: %w", err)
	}
	cctx, stop := context.WithCancel(context.Background())
	s.stop, s.done = stop, make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.commits.run(cctx) }()
	go func() { defer wg.Done(); s.watchReach(cctx) }()
	go func() { wg.Wait(); close(s.done) }()
	if cfg.Bootstrap && !has {
		if err := s.BootstrapSelf(); err != nil {
			s.Close()
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	return s, nil
}

// HadState reports whether raft state existed when the store was opened:
// such a node never bootstraps or asks to join, it is already a member.
func (s *Store) HadState() bool { return s.hadState }

// BootstrapSelf forms a new one-voter cluster of this node. Callers make
// sure no cluster exists (DESIGN.md: only the designated bootstrapper, with
// empty state, after asking every discovered peer).
func (s *Store) BootstrapSelf() error {
	s.log.Info("bootstrapping a new cluster", "node", s.cfg.NodeName, "addr", s.transport.LocalAddr())
	f := s.raft.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{
		ID: s.id, Address: s.transport.LocalAddr(), Suffrage: raft.Voter,
	}}})
	if err := f.Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("bootstrap: %w", err)
	}
	return nil
}

// Addr is this node's raft address as peers dial it.
func (s *Store) Addr() string { return string(s.transport.LocalAddr()) }

// Leader returns the leader's raft ID and address ("" when unknown).
func (s *Store) Leader() (id, addr string) {
	a, i := s.raft.LeaderWithID()
	return string(i), string(a)
}

// Configuration is the current raft membership.
func (s *Store) Configuration() ([]raft.Server, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	return f.Configuration().Servers, nil
}

// LocalServerID returns this data dir's raft server ID, minting one on
// first use. An empty data dir is a new incarnation with a new ID
// (DESIGN.md).
func LocalServerID(dataDir string) (string, error) {
	p := filepath.Join(dataDir, "node-id")
	b, err := os.ReadFile(p)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if _, perr := uuid.Parse(id); perr != nil {
			return "", fmt.Errorf("node id in %s is damaged: %q", p, id)
		}
		return id, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read node id: %w", err)
	}
	id := uuid.NewString()
	if err := writeFileSync(p, []byte(id+"\n")); err != nil {
		return "", fmt.Errorf("write node id: %w", err)
	}
	return id, nil
}

func (s *Store) closeParts() {
	if s.bolt != nil {
		s.bolt.Close()
	}
	if s.transport != nil {
		s.transport.Close()
	}
}

// Close stops raft and releases its files. It does not leave the cluster.
func (s *Store) Close() error {
	if s.stop != nil {
		s.stop()
		<-s.done
	}
	var err error
	if s.raft != nil {
		err = s.raft.Shutdown().Error()
	}
	s.closeParts()
	return err
}

// ID is this node's raft server ID.
func (s *Store) ID() string { return string(s.id) }

// FSM gives read access to the applied state.
func (s *Store) FSM() *FSM { return s.fsm }

// IsLeader reports whether this node leads.
func (s *Store) IsLeader() bool { return s.raft.State() == raft.Leader }

// LeaderCh delivers leadership changes of this node.
func (s *Store) LeaderCh() <-chan bool { return s.raft.LeaderCh() }

// Term is the current raft term.
func (s *Store) Term() uint64 { return s.raft.CurrentTerm() }

// RaftMetrics is what the metrics read of raft (node/raftmetrics.go).
type RaftMetrics struct {
	State                           raft.RaftState
	Term, CommitIndex, AppliedIndex uint64
	LastContact                     time.Time // zero on the leader, or before any contact
}

// Metrics reads raft's state and indexes for the metrics.
func (s *Store) Metrics() RaftMetrics {
	m := RaftMetrics{State: s.raft.State(), Term: s.raft.CurrentTerm(), CommitIndex: s.raft.CommitIndex(),
		AppliedIndex: s.raft.AppliedIndex()}
	if m.State != raft.Leader {
		m.LastContact = s.raft.LastContact()
	}
	return m
}

// TransferLeadership hands this leader's leadership to the server id at
// addr, or to whichever voter raft picks when id is "".
func (s *Store) TransferLeadership(id, addr string) error {
	if id == "" {
		return s.raft.LeadershipTransfer().Error()
	}
	return s.raft.LeadershipTransferToServer(raft.ServerID(id), raft.ServerAddress(addr)).Error()
}

// Barrier waits until every entry committed before it has been applied here.
func (s *Store) Barrier(ctx context.Context) error {
	return waitFuture(ctx, s.raft.Barrier(timeoutOf(ctx)))
}

// Propose commits one command on this node, which must lead, and returns
// the FSM's verdict on it. Followers get ErrNotLeader (the Forwarder sends
// their writes to the leader).
func (s *Store) Propose(ctx context.Context, op Op, body any) error {
	data, err := EncodeCommandV(s.fsm.LogVersion(), op, time.Now(), body)
	if err != nil {
		return err
	}
	if _, err := s.ApplyEncoded(ctx, data); err != nil {
		return fmt.Errorf("propose %s: %w", op, err)
	}
	return nil
}

// ApplyEncoded commits an encoded command and returns its log index, or
// the FSM's verdict on it as the error. It goes through the committer,
// which may share the entry with other commands.
func (s *Store) ApplyEncoded(ctx context.Context, data []byte) (uint64, error) {
	if s.raft.State() != raft.Leader {
		return 0, ErrNotLeader
	}
	cmd, err := DecodeCommand(data)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if cmd.Op == OpBatch {
		return 0, fmt.Errorf("%w: batches are made by the leader", ErrInvalid)
	}
	return s.commits.propose(ctx, cmd, data)
}

// applyRaw commits one entry as it is.
func (s *Store) applyRaw(ctx context.Context, data []byte) (raft.ApplyFuture, error) {
	f := s.raft.Apply(data, timeoutOf(ctx))
	if err := waitFuture(ctx, f); err != nil {
		return nil, raftError(err)
	}
	return f, nil
}

// Snapshot takes a raft snapshot now (a graceful stop does, so that the
// next start replays little of the log).
func (s *Store) Snapshot() error {
	if err := s.raft.Snapshot().Error(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return fmt.Errorf("snapshot: %w", err)
	}
	return nil
}

// WaitApplied blocks until the local FSM has applied index, so that a
// write forwarded to the leader is visible to reads on this node.
func (s *Store) WaitApplied(ctx context.Context, index uint64) error {
	for {
		ch := s.fsm.Changed()
		if s.fsm.AppliedIndex() >= index {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for index %d: %w", index, ctx.Err())
		case <-ch:
		case <-time.After(time.Second):
			// Entries raft applies without the FSM (configuration
			// changes) do not wake us; the index still moves past them.
			if s.raft.AppliedIndex() >= index {
				return nil
			}
		}
	}
}

func timeoutOf(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		if t := time.Until(d); t > 0 {
			return t
		}
		return time.Millisecond
	}
	return 30 * time.Second
}

// waitFuture waits for f; raft futures honour their own timeout, and a
// canceled ctx stops the wait (the entry may still commit).
func waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// boundStream is raft's TCP stream layer, dialing from the bind address
// (like gossip) when that address is specific.
type boundStream struct {
	net.Listener
	advertise net.Addr
	dialer    net.Dialer
}

func newBoundStream(bind string, advertise net.Addr) (*boundStream, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	s := &boundStream{Listener: ln, advertise: advertise}
	if s.advertise == nil {
		s.advertise = ln.Addr()
	}
	if a, ok := s.advertise.(*net.TCPAddr); !ok || a.IP == nil || a.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("address %v is not advertisable", s.advertise)
	}
	if host, _, err := net.SplitHostPort(bind); err == nil {
		if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
			s.dialer.LocalAddr = &net.TCPAddr{IP: ip}
		}
	}
	return s, nil
}

func (s *boundStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := s.dialer
	d.Timeout = timeout
	return d.Dial("tcp", string(addr))
}

func (s *boundStream) Addr() net.Addr { return s.advertise }
