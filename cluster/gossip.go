package cluster

// The memberlist side of Membership (membership.go): the delegates through
// which memberlist reports joins, leaves, updates and probe results, its
// log lines turned into slog records (and suspicion), and the transport
// that dials from the bind address.

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// ---- memberlist delegates ------------------------------------------------

type metaDelegate struct{ m *Membership }

func (d metaDelegate) NodeMeta(limit int) []byte {
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	if len(d.m.metaJSON) > limit { // cannot happen: encodeMeta checks MetaMaxSize
		return nil
	}
	return slices.Clone(d.m.metaJSON)
}
func (metaDelegate) NotifyMsg([]byte)                           {}
func (metaDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (metaDelegate) LocalState(join bool) []byte                { return nil }
func (metaDelegate) MergeRemoteState(buf []byte, join bool)     {}

// eventDelegate methods are called by memberlist with its node lock held:
// they must never call back into m.list.
type eventDelegate struct{ m *Membership }

func (e eventDelegate) NotifyJoin(n *memberlist.Node)   { e.m.onEvent(n, "joined") }
func (e eventDelegate) NotifyLeave(n *memberlist.Node)  { e.m.onEvent(n, "left") }
func (e eventDelegate) NotifyUpdate(n *memberlist.Node) { e.m.onEvent(n, "updated") }

// onEvent records a memberlist event. memberlist (v0.6.0) does not fill
// Node.State, so the state comes from the event: join and update mean alive;
// a leave is "left" when the member's last metadata said Leaving (Leave sets
// it and gossips it before announcing the departure), otherwise "dead".
func (m *Membership) onEvent(n *memberlist.Node, what string) {
	addr := n.Address()
	self := n.Name == m.cfg.Name
	var meta MemberMeta
	var metaErr error
	if len(n.Meta) > 0 {
		metaErr = json.Unmarshal(n.Meta, &meta)
	}
	state := StateAlive
	if what == "left" {
		state = StateDead
		if meta.Leaving || self {
			state = StateLeft
		}
	}

	m.mu.Lock()
	if self {
		meta = m.meta // authoritative, and Leaving etc. are ours
		metaErr = nil
	}
	mem, ok := m.members[n.Name]
	if !ok {
		mem = &Member{Name: n.Name}
		m.members[n.Name] = mem
	}
	if metaErr == nil {
		mem.Meta = meta
	}
	mem.Addr = addr
	if mem.State != state || mem.Since.IsZero() {
		mem.State = state
		mem.Since = time.Now()
	}
	if !self && state == StateAlive {
		m.joined = true
	}
	m.notifyLocked()
	m.mu.Unlock()

	if metaErr != nil {
		m.log.Warn("gossip: undecodable member metadata", "member", n.Name, "err", metaErr)
	}
	if what == "left" && state == StateDead {
		what = "failed"
	}
	lvl := slog.LevelInfo
	if self {
		lvl = slog.LevelDebug
	}
	m.log.Log(context.Background(), lvl, "gossip: member "+what, "member", n.Name, "addr", addr,
		"state", string(state), "id", meta.ID, "slots", meta.Slots, "leaving", meta.Leaving)
}

func (m *Membership) notifyLocked() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// markSuspect records that this node's own probe of name failed (memberlist
// has no event for it; see memberlistLogWriter).
func (m *Membership) markSuspect(name string) {
	m.setProbeResult(name, StateSuspect)
}

// setProbeResult moves a member between alive and suspect; dead, left and
// unknown members are left to the join/leave events.
func (m *Membership) setProbeResult(name string, state MemberState) {
	if name == m.cfg.Name {
		return
	}
	m.mu.Lock()
	mem, ok := m.members[name]
	if !ok || (mem.State != StateAlive && mem.State != StateSuspect) || mem.State == state {
		m.mu.Unlock()
		return
	}
	mem.State = state
	mem.Since = time.Now()
	addr := mem.Addr
	m.notifyLocked()
	m.mu.Unlock()
	if state == StateSuspect {
		m.log.Info("gossip: member suspect", "member", name, "addr", addr)
	} else {
		m.log.Info("gossip: member no longer suspect", "member", name, "addr", addr)
	}
}

// pingDelegate clears suspicion when a direct probe of the member succeeds.
type pingDelegate struct{ m *Membership }

func (pingDelegate) AckPayload() []byte { return nil }
func (p pingDelegate) NotifyPingComplete(other *memberlist.Node, _ time.Duration, _ []byte) {
	p.m.setProbeResult(other.Name, StateAlive)
}

// ---- logging -------------------------------------------------------------

// memberlistLogWriter turns memberlist's "[LEVEL] memberlist: msg" lines into slog records.
// memberlist is loud about routine churn: INFO goes to debug, WARN to info, ERR to warn.
//
// memberlist (v0.6.0) never fills Node.State and has no event for
// suspicion, so the writer also watches for the line its prober logs when it
// marks a node suspect ("Suspect <name> has failed, no acks received").
type memberlistLogWriter struct {
	log       *slog.Logger
	onSuspect func(name string)
}

func (w *memberlistLogWriter) Write(p []byte) (int, error) {
	for line := range strings.SplitSeq(strings.TrimRight(string(p), "\n"), "\n") {
		lvl := slog.LevelDebug
		msg := line
		if strings.HasPrefix(msg, "[") {
			if i := strings.IndexByte(msg, ']'); i > 0 {
				switch msg[1:i] {
				case "WARN":
					lvl = slog.LevelInfo
				case "ERR", "ERROR":
					lvl = slog.LevelWarn
				}
				msg = strings.TrimSpace(msg[i+1:])
			}
		}
		msg = strings.TrimPrefix(msg, "memberlist: ")
		if rest, ok := strings.CutPrefix(msg, "Suspect "); ok && w.onSuspect != nil {
			if name, ok := strings.CutSuffix(rest, " has failed, no acks received"); ok {
				w.onSuspect(name)
			}
		}
		w.log.Log(context.Background(), lvl, "memberlist: "+msg)
	}
	return len(p), nil
}

// boundTransport is memberlist's TCP/UDP transport with outgoing TCP
// connections made from the bind address (UDP already sends from it).
type boundTransport struct {
	*memberlist.NetTransport
	local *net.TCPAddr
}

func (t *boundTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (t *boundTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout, LocalAddr: t.local}
	return d.Dial("tcp", a.Addr)
}
