package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// DefaultGossipPort is the memberlist port (TCP and UDP) when none is configured.
const DefaultGossipPort = 7946

const (
	joinBackoffStart  = 200 * time.Millisecond
	joinBackoffCap    = 5 * time.Second
	joinResolveEvery  = 30 * time.Second
	joinLoudFailures  = 3 // consecutive failed rounds logged at warn before dropping to debug
	updateMetaTimeout = 5 * time.Second
)

// MemberMeta travels in memberlist node metadata (JSON, must stay < 512 bytes).
type MemberMeta struct {
	ID       string `json:"id"`                // raft server ID (UUID)
	Raft     string `json:"raft"`              // host:port of the raft transport
	Internal string `json:"int"`               // host:port of the internal (peer) HTTP API
	HTTP     string `json:"http"`              // host:port of the public HTTP API
	Slots    int    `json:"slots"`             // tasks it may run at once
	Queue    int    `json:"queue,omitempty"`   // tasks it may hold beyond Slots (pipelining; absent from older nodes)
	Version  string `json:"v,omitempty"`       //
	Leaving  bool   `json:"leaving,omitempty"` // set during graceful shutdown: take no new work there
	// Log is the newest log version the node reads (CommandVersion); absent
	// (0) from nodes of the first release, which read version 1 only.
	Log int `json:"log,omitempty"`
	// Disk is the node's data volume as it last told (absent from nodes
	// that predate it: they count as having room). Each gossip replaces
	// it; it goes with the member.
	Disk *DiskMeta `json:"disk,omitempty"`
}

// DiskMeta is a node's data volume in its gossip metadata, in MiB so that
// it stays small. A node gossips it again when it crosses its reserve and
// when the free space moved by a percent of the volume.
type DiskMeta struct {
	FreeMiB    int64 `json:"free"`           // free space on the volume
	SizeMiB    int64 `json:"size"`           // the volume's size
	ReserveMiB int64 `json:"res"`            // what media must leave free (disk and raft reserves)
	Full       bool  `json:"full,omitempty"` // below the reserves (or just out of space): takes no new task or media
}

// LogVersion is the newest log version the member reads.
func (m MemberMeta) LogVersion() int { return max(m.Log, LogV1) }

// MemberState is the gossip view of a member's health.
type MemberState string

const (
	StateAlive   MemberState = "alive"
	StateSuspect MemberState = "suspect"
	StateDead    MemberState = "dead"
	StateLeft    MemberState = "left"
)

// Member is one node as seen through gossip.
type Member struct {
	Name  string
	Addr  string // gossip ip:port
	Meta  MemberMeta
	State MemberState
	Since time.Time // when State last changed (local clock)
}

// MembershipConfig configures the gossip layer.
type MembershipConfig struct {
	Name          string
	BindAddr      string // IP to bind gossip on (TCP+UDP); "" = 0.0.0.0
	BindPort      int    // nodes pass DefaultGossipPort; 0 = any free port (tests)
	AdvertiseAddr string // IP others reach us on; "" = BindAddr unless unspecified, then memberlist's choice
	// Join entries are "host", "host:port", "ip", "ip:port" or DNS names; the
	// default port is BindPort (DefaultGossipPort unless configured).
	Join      []string
	GossipKey []byte // nil = no encryption; else 16, 24 or 32 bytes (AES)
	Meta      MemberMeta
	Logger    *slog.Logger
	// Fast makes failure detection quick for tests and loopback clusters
	// (memberlist.DefaultLocalConfig-like timings).
	Fast bool
	// Resolver resolves the DNS names in Join; nil = net.DefaultResolver
	// (see DNSResolver for one that asks a given server).
	Resolver *net.Resolver
}

// Membership is this node's view of the cluster through memberlist gossip.
type Membership struct {
	cfg  MembershipConfig
	log  *slog.Logger
	list *memberlist.Memberlist
	port int

	updateMu sync.Mutex // serialises UpdateMeta

	mu       sync.Mutex
	meta     MemberMeta // local meta
	metaJSON []byte
	members  map[string]*Member
	joined   bool
	changed  chan struct{}
	left     bool
	shutdown bool

	lifeMu sync.Mutex // guards Leave/Shutdown against each other (memberlist panics on leave after shutdown)
}

// StartMembership validates cfg, creates the memberlist (listening on
// BindAddr:BindPort) and returns. It does not contact anyone: run JoinLoop.
// It is long because it checks cfg and then sets memberlist's
// configuration field by field, each with why.
func StartMembership(cfg MembershipConfig) (*Membership, error) {
	if cfg.Name == "" {
		return nil, errors.New("start membership: node name is required")
	}
	if cfg.BindAddr == "" {
		cfg.BindAddr = "0.0.0.0"
	}
	bindIP := net.ParseIP(cfg.BindAddr)
	if bindIP == nil {
		return nil, fmt.Errorf("start membership: bind address %q is not an IP", cfg.BindAddr)
	}
	if cfg.BindPort < 0 || cfg.BindPort > 65535 {
		return nil, fmt.Errorf("start membership: bind port %d out of range", cfg.BindPort)
	}
	advertise := cfg.AdvertiseAddr
	if advertise == "" && !bindIP.IsUnspecified() {
		advertise = cfg.BindAddr
	}
	if advertise != "" {
		ip := net.ParseIP(advertise)
		if ip == nil || ip.IsUnspecified() {
			return nil, fmt.Errorf("start membership: advertise address %q is not a usable IP", advertise)
		}
	}
	switch len(cfg.GossipKey) {
	case 0, 16, 24, 32:
	default:
		return nil, fmt.Errorf("start membership: gossip key must be 16, 24 or 32 bytes (AES-128/192/256), got %d", len(cfg.GossipKey))
	}
	metaJSON, err := encodeMeta(cfg.Meta)
	if err != nil {
		return nil, fmt.Errorf("start membership: %w", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("component", "gossip")

	m := &Membership{
		cfg:      cfg,
		log:      logger,
		port:     cfg.BindPort,
		meta:     cfg.Meta,
		metaJSON: metaJSON,
		members:  make(map[string]*Member),
		changed:  make(chan struct{}),
	}

	var mc *memberlist.Config
	if cfg.Fast {
		mc = memberlist.DefaultLocalConfig()
		mc.ProbeInterval = 500 * time.Millisecond
		mc.ProbeTimeout = 200 * time.Millisecond
		mc.SuspicionMult = 3
		mc.SuspicionMaxTimeoutMult = 2
		mc.PushPullInterval = 5 * time.Second
		mc.DeadNodeReclaimTime = time.Second
	} else {
		mc = memberlist.DefaultLANConfig()
		// A crashed pod comes back under the same name with a new IP: let
		// it take its name over once the old incarnation has been dead a while.
		mc.DeadNodeReclaimTime = 10 * time.Second
	}
	mc.Name = cfg.Name
	mc.BindAddr = cfg.BindAddr
	mc.BindPort = cfg.BindPort
	mc.AdvertiseAddr = advertise
	mc.AdvertisePort = cfg.BindPort
	mc.Delegate = metaDelegate{m}
	mc.Events = eventDelegate{m}
	mc.Ping = pingDelegate{m}
	mc.LogOutput = nil
	mc.Logger = log.New(&memberlistLogWriter{log: logger, onSuspect: m.markSuspect}, "", 0)
	if len(cfg.GossipKey) > 0 {
		kr, err := memberlist.NewKeyring(nil, slices.Clone(cfg.GossipKey))
		if err != nil {
			return nil, fmt.Errorf("start membership: gossip key: %w", err)
		}
		mc.Keyring = kr
		mc.GossipVerifyIncoming = true
		mc.GossipVerifyOutgoing = true
	}

	if ip := net.ParseIP(cfg.BindAddr); ip != nil && !ip.IsUnspecified() {
		// Gossip dials from the bind address, as it listens on it, so that
		// a node's traffic carries its own address (firewalls and fault
		// injection see who is talking; multi-homed hosts pick the right
		// interface).
		nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{cfg.BindAddr}, BindPort: cfg.BindPort, Logger: mc.Logger,
		})
		if err != nil {
			return nil, fmt.Errorf("start membership on %s: %w",
				net.JoinHostPort(cfg.BindAddr, strconv.Itoa(cfg.BindPort)), err)
		}
		mc.Transport = &boundTransport{NetTransport: nt, local: &net.TCPAddr{IP: ip}}
		if mc.BindPort == 0 {
			mc.BindPort = nt.GetAutoBindPort()
			mc.AdvertisePort = mc.BindPort
		}
	}
	list, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("start membership on %s: %w",
			net.JoinHostPort(cfg.BindAddr, strconv.Itoa(cfg.BindPort)), err)
	}
	m.list = list
	self := list.LocalNode()
	m.port = int(self.Port) // the real port when BindPort was 0
	m.mu.Lock()
	if _, ok := m.members[cfg.Name]; !ok { // normally NotifyJoin(self) already added it
		m.members[cfg.Name] = &Member{Name: cfg.Name, Addr: self.Address(), Meta: cfg.Meta, State: StateAlive, Since: time.Now()}
	}
	m.mu.Unlock()
	logger.Info("gossip started", "name", cfg.Name, "addr", self.Address(),
		"encrypted", len(cfg.GossipKey) > 0, "fast", cfg.Fast)
	return m, nil
}

func encodeMeta(meta MemberMeta) ([]byte, error) {
	b, err := json.Marshal(meta)
	if err != nil {
		return nil, fmt.Errorf("encode member meta: %w", err)
	}
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("member meta is %d bytes, more than the gossip limit of %d", len(b), memberlist.MetaMaxSize)
	}
	return b, nil
}

// ---- queries -------------------------------------------------------------

// Joined reports whether at least one other member has been seen alive.
func (m *Membership) Joined() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.joined
}

// Local returns this node as a Member, with its current metadata.
func (m *Membership) Local() Member {
	m.mu.Lock()
	defer m.mu.Unlock()
	mem := *m.members[m.cfg.Name]
	mem.Meta = m.meta
	return mem
}

// Members returns every member ever known (self included, dead and left too), sorted by name.
func (m *Membership) Members() []Member {
	return m.list_(func(Member) bool { return true })
}

// Alive returns the members in state alive (self included), sorted by name.
func (m *Membership) Alive() []Member {
	return m.list_(func(mem Member) bool { return mem.State == StateAlive })
}

func (m *Membership) list_(keep func(Member) bool) []Member {
	m.mu.Lock()
	out := make([]Member, 0, len(m.members))
	for _, mem := range m.members {
		if keep(*mem) {
			out = append(out, *mem)
		}
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Member returns the member with that memberlist name.
func (m *Membership) Member(name string) (Member, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mem, ok := m.members[name]
	if !ok {
		return Member{}, false
	}
	return *mem, true
}

// ByID returns the member whose Meta.ID is raftID. Among several (a node that
// came back under another name or address with the same ID), it prefers alive,
// then suspect, then dead/left; within a rank the most recent state change
// (Since) wins, then the name, for determinism.
func (m *Membership) ByID(raftID string) (Member, bool) {
	if raftID == "" {
		return Member{}, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var best *Member
	for _, mem := range m.members {
		if mem.Meta.ID != raftID {
			continue
		}
		if best == nil || betterByID(mem, best) {
			best = mem
		}
	}
	if best == nil {
		return Member{}, false
	}
	return *best, true
}

func stateRank(s MemberState) int {
	switch s {
	case StateAlive:
		return 0
	case StateSuspect:
		return 1
	default:
		return 2
	}
}

func betterByID(a, b *Member) bool {
	if ra, rb := stateRank(a.State), stateRank(b.State); ra != rb {
		return ra < rb
	}
	if !a.Since.Equal(b.Since) {
		return a.Since.After(b.Since)
	}
	return a.Name < b.Name
}

// Changed returns a channel closed at the next join, leave, failure, update or
// suspicion event. Call it again after it fires.
func (m *Membership) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

// ---- changes -------------------------------------------------------------

// UpdateMeta changes the local metadata and gossips it. The local change is
// kept even when an error is returned for a broadcast that timed out (it
// then spreads with the next push/pull sync).
func (m *Membership) UpdateMeta(fn func(*MemberMeta)) error {
	m.updateMu.Lock()
	defer m.updateMu.Unlock()

	m.mu.Lock()
	if m.shutdown {
		m.mu.Unlock()
		return errors.New("update member meta: gossip is shut down")
	}
	next := m.meta
	fn(&next)
	b, err := encodeMeta(next)
	if err != nil {
		m.mu.Unlock()
		return fmt.Errorf("update member meta: %w", err)
	}
	if bytes.Equal(b, m.metaJSON) {
		m.mu.Unlock()
		return nil
	}
	m.meta = next
	m.metaJSON = b
	if self, ok := m.members[m.cfg.Name]; ok {
		self.Meta = next
	}
	m.notifyLocked()
	m.mu.Unlock()

	m.lifeMu.Lock()
	defer m.lifeMu.Unlock()
	return m.broadcastMetaLocked(updateMetaTimeout)
}

// broadcastMetaLocked gossips the current local meta; lifeMu is held.
func (m *Membership) broadcastMetaLocked(timeout time.Duration) error {
	if m.isShutdown() {
		return errors.New("update member meta: gossip is shut down")
	}
	if err := m.list.UpdateNode(timeout); err != nil {
		return fmt.Errorf("update member meta: %w", err)
	}
	return nil
}

func (m *Membership) isShutdown() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.shutdown
}

// Leave announces that this node leaves on purpose and waits up to timeout
// for the announcement to go out. It first sets Meta.Leaving and gossips it
// (if not set already), then broadcasts memberlist's leave; others show the
// node as "left" rather than "dead" because its last metadata said Leaving.
// Gossip keeps running until Shutdown; JoinLoop stops joining.
func (m *Membership) Leave(timeout time.Duration) error {
	m.updateMu.Lock()
	defer m.updateMu.Unlock()
	m.lifeMu.Lock()
	defer m.lifeMu.Unlock()
	deadline := time.Now().Add(timeout)
	m.mu.Lock()
	if m.shutdown {
		m.mu.Unlock()
		return errors.New("leave gossip: already shut down")
	}
	m.left = true
	needMeta := !m.meta.Leaving
	if needMeta {
		m.meta.Leaving = true
		if b, err := encodeMeta(m.meta); err == nil {
			m.metaJSON = b
		}
		if self, ok := m.members[m.cfg.Name]; ok {
			self.Meta = m.meta
		}
		m.notifyLocked()
	}
	m.mu.Unlock()
	if needMeta {
		if err := m.broadcastMetaLocked(timeout); err != nil {
			m.log.Warn("gossip: leaving flag not confirmed sent before leave", "err", err)
		}
	}
	if err := m.list.Leave(max(time.Until(deadline), 100*time.Millisecond)); err != nil {
		return fmt.Errorf("leave gossip: %w", err)
	}
	m.log.Info("gossip: left the cluster")
	return nil
}

// Shutdown stops gossip at once, without announcing it: others will see this
// node fail. Call Leave first for a graceful exit. Safe to call twice.
func (m *Membership) Shutdown() error {
	m.lifeMu.Lock()
	defer m.lifeMu.Unlock()
	m.mu.Lock()
	if m.shutdown {
		m.mu.Unlock()
		return nil
	}
	m.shutdown = true
	m.mu.Unlock()
	if err := m.list.Shutdown(); err != nil {
		return fmt.Errorf("shutdown gossip: %w", err)
	}
	return nil
}
