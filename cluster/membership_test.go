package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// These tests run real memberlist instances on real sockets. Like pods, every
// member uses the same port on its own loopback IP (all of 127.0.0.0/8 is
// local on Linux).

var (
	gossipPortMu   sync.Mutex
	nextGossipPort = 17946
)

// freeGossipPort returns a port that is free for TCP and UDP on every ip.
func freeGossipPort(t *testing.T, ips ...string) int {
	t.Helper()
	gossipPortMu.Lock()
	defer gossipPortMu.Unlock()
	for range 500 {
		port := nextGossipPort
		nextGossipPort++
		if nextGossipPort > 60000 {
			nextGossipPort = 17946
		}
		if portFreeOn(port, ips) {
			return port
		}
	}
	t.Fatalf("no free gossip port on %v", ips)
	return 0
}

func portFreeOn(port int, ips []string) bool {
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	for _, ip := range ips {
		addr := net.JoinHostPort(ip, strconv.Itoa(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return false
		}
		closers = append(closers, l)
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return false
		}
		closers = append(closers, pc)
	}
	return true
}

// logRecorder is a slog handler that keeps messages, so tests can wait for
// "something was tried" without sleeping. GOSTY_TEST_LOG=1 also prints them.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	r.msgs = append(r.msgs, rec.Message)
	r.mu.Unlock()
	if os.Getenv("GOSTY_TEST_LOG") != "" {
		var b bytes.Buffer
		fmt.Fprintf(&b, "%s %s", rec.Level, rec.Message)
		rec.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true })
		fmt.Fprintln(os.Stderr, b.String())
	}
	return nil
}
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }
func (r *logRecorder) count(sub string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		if strings.Contains(m, sub) {
			n++
		}
	}
	return n
}

type testMember struct {
	*Membership
	logs *logRecorder
}

func testMeta(name string) MemberMeta {
	return MemberMeta{
		ID:       "id-" + name,
		Raft:     name + ".raft:7000",
		Internal: name + ".int:8081",
		HTTP:     name + ".http:8080",
		Slots:    len(name),
		Version:  "test",
	}
}

// startTestMember starts a Fast member named name on ip:port and runs its
// JoinLoop on join until the test ends.
func startTestMember(t *testing.T, name, ip string, port int, join []string, key []byte) testMember {
	t.Helper()
	rec := &logRecorder{}
	m, err := StartMembership(MembershipConfig{
		Name:      name,
		BindAddr:  ip,
		BindPort:  port,
		Join:      join,
		GossipKey: key,
		Meta:      testMeta(name),
		Logger:    slog.New(rec),
		Fast:      true,
	})
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.JoinLoop(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if err := m.Shutdown(); err != nil {
			t.Errorf("shutdown %s: %v", name, err)
		}
	})
	return testMember{m, rec}
}

func addr(ip string, port int) string { return net.JoinHostPort(ip, strconv.Itoa(port)) }

// waitFor polls cond until it returns nil or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, within, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func aliveNames(m *Membership) []string {
	var names []string
	for _, mem := range m.Alive() {
		names = append(names, mem.Name)
	}
	return names
}

func expectAlive(m *Membership, names ...string) func() error {
	return func() error {
		got := strings.Join(aliveNames(m), ",")
		if want := strings.Join(names, ","); got != want {
			return fmt.Errorf("%s sees alive [%s], want [%s]", m.cfg.Name, got, want)
		}
		return nil
	}
}

func expectState(m *Membership, name string, states ...MemberState) func() error {
	return func() error {
		mem, ok := m.Member(name)
		if !ok {
			return fmt.Errorf("%s does not know %s", m.cfg.Name, name)
		}
		for _, s := range states {
			if mem.State == s {
				return nil
			}
		}
		return fmt.Errorf("%s sees %s %s, want %v", m.cfg.Name, name, mem.State, states)
	}
}

func TestMembershipThreeMembers(t *testing.T) {
	ips := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}
	names := []string{"node-0", "node-1", "node-2"}
	port := freeGossipPort(t, ips...)
	var ms []testMember
	for i, ip := range ips {
		var join []string
		for j, other := range ips {
			if j != i {
				join = append(join, addr(other, port))
			}
		}
		join = append(join, addr(ip, port)) // its own address is skipped
		ms = append(ms, startTestMember(t, names[i], ip, port, join, nil))
	}
	for _, m := range ms {
		waitFor(t, 10*time.Second, "three alive", expectAlive(m.Membership, names...))
	}
	for i, m := range ms {
		if !m.Joined() {
			t.Errorf("%s: Joined() = false", names[i])
		}
		if l := m.Local(); l.Name != names[i] || l.Addr != addr(ips[i], port) || l.Meta != testMeta(names[i]) || l.State != StateAlive {
			t.Errorf("%s: Local() = %+v", names[i], l)
		}
		members := m.Members()
		if len(members) != 3 {
			t.Fatalf("%s: Members() = %+v", names[i], members)
		}
		for j, mem := range members {
			if mem.Name != names[j] || mem.Addr != addr(ips[j], port) || mem.Meta != testMeta(names[j]) ||
				mem.State != StateAlive || mem.Since.IsZero() {
				t.Errorf("%s sees %+v, want name %s addr %s meta %+v", names[i], mem, names[j], addr(ips[j], port), testMeta(names[j]))
			}
		}
		byID, ok := m.ByID("id-node-2")
		if !ok || byID.Name != "node-2" {
			t.Errorf("%s: ByID(id-node-2) = %+v, %v", names[i], byID, ok)
		}
		if _, ok := m.ByID("nope"); ok {
			t.Errorf("%s: ByID(nope) found something", names[i])
		}
		if _, ok := m.Member("nope"); ok {
			t.Errorf("%s: Member(nope) found something", names[i])
		}
	}
}

func TestMembershipJoinDNSName(t *testing.T) {
	port := freeGossipPort(t, "127.0.0.1", "127.0.0.2")
	a := startTestMember(t, "a", "127.0.0.1", port, nil, nil)
	b := startTestMember(t, "b", "127.0.0.2", port, []string{"localhost:" + strconv.Itoa(port)}, nil)
	waitFor(t, 10*time.Second, "b joins through localhost", expectAlive(b.Membership, "a", "b"))
	waitFor(t, 5*time.Second, "a sees b", expectAlive(a.Membership, "a", "b"))
	if !a.Joined() || !b.Joined() {
		t.Errorf("Joined: a %v b %v", a.Joined(), b.Joined())
	}
}

func TestMembershipUpdateMetaPropagates(t *testing.T) {
	port := freeGossipPort(t, "127.0.0.2", "127.0.0.3")
	a := startTestMember(t, "a", "127.0.0.2", port, nil, nil)
	b := startTestMember(t, "b", "127.0.0.3", port, []string{addr("127.0.0.2", port)}, nil)
	waitFor(t, 10*time.Second, "joined", expectAlive(a.Membership, "a", "b"))
	waitFor(t, 5*time.Second, "joined", expectAlive(b.Membership, "a", "b"))

	changed := b.Changed()
	if err := a.UpdateMeta(func(mm *MemberMeta) { mm.Slots = 7; mm.Leaving = true }); err != nil {
		t.Fatalf("UpdateMeta: %v", err)
	}
	if got := a.Local().Meta; got.Slots != 7 || !got.Leaving {
		t.Errorf("a.Local().Meta = %+v", got)
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("b.Changed() did not fire after a's update")
	}
	waitFor(t, 5*time.Second, "b sees a's new meta", func() error {
		mem, _ := b.Member("a")
		if mem.Meta.Slots != 7 || !mem.Meta.Leaving || mem.Meta.ID != "id-a" {
			return fmt.Errorf("b sees a as %+v", mem.Meta)
		}
		return nil
	})

	// Metadata over the gossip limit is refused and leaves the old one in place.
	if err := a.UpdateMeta(func(mm *MemberMeta) { mm.Version = strings.Repeat("x", 600) }); err == nil {
		t.Error("UpdateMeta accepted 600-byte metadata")
	}
	if got := a.Local().Meta; got.Version != "test" || got.Slots != 7 {
		t.Errorf("after a refused update a.Local().Meta = %+v", got)
	}
}

func TestMembershipLeaveAndFailure(t *testing.T) {
	ips := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}
	port := freeGossipPort(t, ips...)
	a := startTestMember(t, "a", ips[0], port, nil, nil)
	b := startTestMember(t, "b", ips[1], port, []string{addr(ips[0], port)}, nil)
	c := startTestMember(t, "c", ips[2], port, []string{addr(ips[0], port)}, nil)
	for _, m := range []testMember{a, b, c} {
		waitFor(t, 10*time.Second, "three alive", expectAlive(m.Membership, "a", "b", "c"))
	}

	changed := a.Changed()
	if err := b.Leave(3 * time.Second); err != nil {
		t.Fatalf("b.Leave: %v", err)
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("a.Changed() did not fire after b left")
	}
	waitFor(t, 5*time.Second, "a sees b left", expectState(a.Membership, "b", StateLeft))
	waitFor(t, 5*time.Second, "c sees b left", expectState(c.Membership, "b", StateLeft))
	if got, ok := a.ByID("id-b"); !ok || got.State != StateLeft || !got.Meta.Leaving {
		t.Errorf("a.ByID(id-b) = %+v, %v", got, ok)
	}
	if l := b.Local(); l.State != StateLeft || !l.Meta.Leaving {
		t.Errorf("b.Local() after Leave = %+v", l)
	}
	if err := b.Shutdown(); err != nil {
		t.Fatalf("b.Shutdown: %v", err)
	}
	if err := b.Leave(time.Second); err == nil {
		t.Error("Leave after Shutdown did not fail")
	}

	// c dies without a word: suspect, then dead.
	if err := c.Shutdown(); err != nil {
		t.Fatalf("c.Shutdown: %v", err)
	}
	waitFor(t, 10*time.Second, "a sees c fail", expectState(a.Membership, "c", StateDead))
	// a is the only prober left, so it saw c suspect on the way.
	if a.logs.count("member suspect") == 0 {
		t.Error("a never marked c suspect")
	}
	waitFor(t, time.Second, "only a alive", expectAlive(a.Membership, "a"))
	if got := len(a.Members()); got != 3 {
		t.Errorf("a keeps %d members, want 3 (dead and left stay listed)", got)
	}
	if mem, _ := a.Member("b"); mem.State != StateLeft {
		t.Errorf("b went from left to %s", mem.State)
	}
}

func TestMembershipGossipKey(t *testing.T) {
	ips := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}
	port := freeGossipPort(t, ips...)
	key := []byte("0123456789abcdef0123456789abcdef")
	other := []byte("fedcba9876543210fedcba9876543210")
	a := startTestMember(t, "a", ips[0], port, nil, key)
	b := startTestMember(t, "b", ips[1], port, []string{addr(ips[0], port)}, key)
	waitFor(t, 10*time.Second, "same key joins", expectAlive(b.Membership, "a", "b"))
	waitFor(t, 5*time.Second, "same key joins", expectAlive(a.Membership, "a", "b"))

	c := startTestMember(t, "c", ips[2], port, []string{addr(ips[0], port), addr(ips[1], port)}, other)
	// Asserting a negative: let c's JoinLoop fail a few rounds (about 3 s of
	// backoff), then check that nobody got in.
	waitFor(t, 8*time.Second, "c tries to join", func() error {
		if n := c.logs.count("join failed"); n < 4 {
			return fmt.Errorf("%d failed join rounds logged", n)
		}
		return nil
	})
	if c.Joined() {
		t.Errorf("c joined with the wrong key: %v", aliveNames(c.Membership))
	}
	if got := aliveNames(a.Membership); len(got) != 2 {
		t.Errorf("a sees %v", got)
	}
	if _, ok := a.Member("c"); ok {
		t.Error("a learned about c")
	}

	for _, n := range []int{1, 10, 33} {
		_, err := StartMembership(MembershipConfig{Name: "x", BindAddr: "127.0.0.2", BindPort: port, GossipKey: make([]byte, n), Fast: true})
		if err == nil || !strings.Contains(err.Error(), "gossip key") {
			t.Errorf("%d-byte key: err = %v", n, err)
		}
	}
}

func TestMembershipJoinLoopRetriesUntilPeerAppears(t *testing.T) {
	port := freeGossipPort(t, "127.0.0.2", "127.0.0.3")
	b := startTestMember(t, "b", "127.0.0.3", port, []string{addr("127.0.0.2", port)}, nil)
	waitFor(t, 5*time.Second, "b fails to join the absent a", func() error {
		if b.logs.count("join failed") == 0 {
			return fmt.Errorf("no failed join attempt yet")
		}
		return nil
	})
	if b.Joined() {
		t.Fatal("b joined with nobody there")
	}
	a := startTestMember(t, "a", "127.0.0.2", port, nil, nil)
	waitFor(t, 8*time.Second, "b joins a once it is up", expectAlive(b.Membership, "a", "b"))
	waitFor(t, 2*time.Second, "a sees b", expectAlive(a.Membership, "a", "b"))
	if !b.Joined() || !a.Joined() {
		t.Errorf("Joined: a %v b %v", a.Joined(), b.Joined())
	}
}

func TestMembershipConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  MembershipConfig
		want string
	}{
		{"no name", MembershipConfig{BindAddr: "127.0.0.2"}, "name"},
		{"bind not an IP", MembershipConfig{Name: "x", BindAddr: "example.com"}, "bind address"},
		{"bad advertise", MembershipConfig{Name: "x", BindAddr: "127.0.0.2", AdvertiseAddr: "0.0.0.0"}, "advertise"},
		{"bad port", MembershipConfig{Name: "x", BindAddr: "127.0.0.2", BindPort: 70000}, "port"},
		{"meta too big", MembershipConfig{Name: "x", BindAddr: "127.0.0.2", Meta: MemberMeta{Version: strings.Repeat("v", 600)}}, "limit"},
	} {
		_, err := StartMembership(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
}

func TestMembershipSplitJoinEntry(t *testing.T) {
	for _, tc := range []struct {
		in   string
		host string
		port int
		bad  bool
	}{
		{"10.0.0.1", "10.0.0.1", 7946, false},
		{"10.0.0.1:8000", "10.0.0.1", 8000, false},
		{"gosty-headless", "gosty-headless", 7946, false},
		{"gosty-0.gosty-headless.ns.svc:7000", "gosty-0.gosty-headless.ns.svc", 7000, false},
		{"::1", "::1", 7946, false},
		{"[::1]", "::1", 7946, false},
		{"[fd00::1]:9000", "fd00::1", 9000, false},
		{"host:notaport", "", 0, true},
		{":7946", "", 0, true},
		{"", "", 0, true},
	} {
		host, port, err := splitJoinEntry(tc.in, DefaultGossipPort)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: no error", tc.in)
			}
			continue
		}
		if err != nil || host != tc.host || port != tc.port {
			t.Errorf("%q: %q %d %v, want %q %d", tc.in, host, port, err, tc.host, tc.port)
		}
	}
}

func TestMembershipByIDPrefersAlive(t *testing.T) {
	now := time.Now()
	m := &Membership{members: map[string]*Member{
		"old":   {Name: "old", Meta: MemberMeta{ID: "x"}, State: StateDead, Since: now},
		"new":   {Name: "new", Meta: MemberMeta{ID: "x"}, State: StateAlive, Since: now.Add(-time.Hour)},
		"left":  {Name: "left", Meta: MemberMeta{ID: "y"}, State: StateLeft, Since: now.Add(-time.Minute)},
		"dead":  {Name: "dead", Meta: MemberMeta{ID: "y"}, State: StateDead, Since: now},
		"other": {Name: "other", Meta: MemberMeta{ID: "z"}, State: StateAlive, Since: now},
	}, changed: make(chan struct{})}
	m.shutdown = true // refresh must not touch the (absent) memberlist
	if got, _ := m.ByID("x"); got.Name != "new" {
		t.Errorf("ByID(x) = %s, want the alive one", got.Name)
	}
	if got, _ := m.ByID("y"); got.Name != "dead" {
		t.Errorf("ByID(y) = %s, want the most recent", got.Name)
	}
}

// TestMembershipJoinThroughDNSServer joins through a name that only a
// given DNS server knows (--dns-server), as pods resolve their headless
// Service through the cluster DNS.
func TestMembershipJoinThroughDNSServer(t *testing.T) {
	ips := []string{"127.0.69.201", "127.0.69.202"}
	port := freeGossipPort(t, ips...)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var asked []string
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		q := req.Question[0]
		mu.Lock()
		asked = append(asked, q.Name)
		mu.Unlock()
		switch {
		case q.Name != "peers.gosty.test.":
			m.Rcode = dns.RcodeNameError
		case q.Qtype == dns.TypeA:
			for _, ip := range ips {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA,
					Class: dns.ClassINET, Ttl: 5}, A: net.ParseIP(ip).To4()})
			}
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })

	if _, err := DNSResolver("no port:x"); err == nil {
		t.Error("DNSResolver accepted a bad address")
	}
	resolver, err := DNSResolver(pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	var ms []*Membership
	for i, name := range []string{"a", "b"} {
		m, err := StartMembership(MembershipConfig{Name: name, BindAddr: ips[i], BindPort: port,
			Join: []string{"peers.gosty.test"}, Resolver: resolver, Meta: testMeta(name),
			Logger: slog.New(&logRecorder{}), Fast: true})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); m.JoinLoop(ctx) }()
		t.Cleanup(func() { cancel(); <-done; _ = m.Shutdown() })
		ms = append(ms, m)
	}
	waitFor(t, 10*time.Second, "a and b join through peers.gosty.test", expectAlive(ms[0], "a", "b"))
	waitFor(t, 5*time.Second, "b sees a", expectAlive(ms[1], "a", "b"))
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(asked, "peers.gosty.test.") {
		t.Fatalf("the DNS server was not asked: %v", asked)
	}
}
