package cluster

// Joining (Membership.JoinLoop): resolving the --join entries (DNS names
// to every address, a headless Service's pods) and joining them with
// backoff, and again every 30s to heal partitions and find new pods.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"time"
)

// ---- joining -------------------------------------------------------------

// JoinLoop resolves cfg.Join and joins, retrying with jittered backoff
// (200ms doubling to 5s) while this node knows no other alive member, and
// re-resolving every 30s once it does, joining addresses that are not alive
// members yet (heals partitions, finds scaled-up pods). DNS names resolve to
// all their A/AAAA records. It returns when ctx ends (immediately after
// nothing, even when cfg.Join is empty, so it can sit in a run group).
func (m *Membership) JoinLoop(ctx context.Context) {
	if len(m.cfg.Join) == 0 {
		<-ctx.Done()
		return
	}
	backoff := joinBackoffStart
	failures := 0
	for {
		if m.isShutdown() {
			<-ctx.Done()
			return
		}
		wasAlone := m.othersAlive() == 0
		n, err := m.joinOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		switch {
		case err != nil:
			failures++
			lvl := slog.LevelWarn
			if failures > joinLoudFailures {
				lvl = slog.LevelDebug
			}
			m.log.Log(ctx, lvl, "gossip: join failed, will retry", "join", m.cfg.Join, "attempt", failures, "err", err)
		case n > 0:
			if wasAlone {
				m.log.Info("gossip: joined", "contacted", n, "members", m.othersAlive()+1)
			} else {
				m.log.Debug("gossip: re-joined", "contacted", n)
			}
			failures = 0
		}

		var wait time.Duration
		if m.othersAlive() > 0 {
			backoff = joinBackoffStart
			wait = joinResolveEvery
		} else {
			wait = jitter(backoff)
			backoff = min(backoff*2, joinBackoffCap)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func jitter(d time.Duration) time.Duration {
	// ±25%
	return d*3/4 + rand.N(d/2+1)
}

func (m *Membership) othersAlive() int {
	m.mu.Lock()
	shut := m.shutdown
	m.mu.Unlock()
	if shut {
		return 0
	}
	n := 0
	for _, node := range m.list.Members() {
		if node.Name != m.cfg.Name { // Members() holds alive and suspect nodes
			n++
		}
	}
	return n
}

// joinOnce resolves the join entries and contacts every address that is
// neither ourselves nor an alive member. It returns how many it reached; the
// error is non-nil when there was something to contact and nothing answered.
func (m *Membership) joinOnce(ctx context.Context) (int, error) {
	m.mu.Lock()
	stop := m.left || m.shutdown
	m.mu.Unlock()
	if stop {
		return 0, nil
	}
	addrs, resolveErr := m.resolveJoin(ctx)

	skip := map[string]bool{
		m.list.LocalNode().Address():                           true,
		net.JoinHostPort(m.cfg.BindAddr, strconv.Itoa(m.port)): true,
	}
	for _, n := range m.list.Members() { // not dead or left
		skip[n.Address()] = true
	}
	var targets []string
	for _, a := range addrs {
		if !skip[a] {
			targets = append(targets, a)
		}
	}
	if len(targets) == 0 {
		if len(addrs) == 0 && resolveErr != nil {
			return 0, resolveErr
		}
		return 0, nil // everyone we know of is already a member (or it is only us)
	}
	reached := 0
	var errs []error
	for _, a := range targets {
		if ctx.Err() != nil || m.isShutdown() {
			break
		}
		if _, err := m.list.Join([]string{a}); err != nil {
			errs = append(errs, flattenMulti(err))
			continue
		}
		reached++
	}
	if reached > 0 {
		return reached, nil
	}
	if resolveErr != nil {
		errs = append(errs, resolveErr)
	}
	return 0, joinErrs(errs)
}

// joinErrs is errors.Join on one line, for logs.
func joinErrs(errs []error) error {
	var msgs []string
	for _, e := range errs {
		if e != nil {
			msgs = append(msgs, strings.ReplaceAll(e.Error(), "\n", "; "))
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return errors.New(strings.Join(msgs, "; "))
}

// flattenMulti unwraps go-multierror's multi-line "1 error occurred" form.
func flattenMulti(err error) error {
	var me interface{ WrappedErrors() []error }
	if errors.As(err, &me) {
		if errs := me.WrappedErrors(); len(errs) > 0 {
			return errors.Join(errs...)
		}
	}
	return err
}

// resolveJoin turns the join entries into unique ip:port strings.
func (m *Membership) resolveJoin(ctx context.Context) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	var errs []error
	add := func(ip net.IP, port int) {
		a := net.JoinHostPort(ip.String(), strconv.Itoa(port))
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	for _, entry := range m.cfg.Join {
		host, port, err := splitJoinEntry(entry, m.port)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ip := net.ParseIP(host); ip != nil {
			add(ip, port)
			continue
		}
		resolver := m.cfg.Resolver
		if resolver == nil {
			resolver = net.DefaultResolver
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ips, err := resolver.LookupIPAddr(rctx, host)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("resolve %s: %w", host, err))
			continue
		}
		for _, ip := range ips {
			add(ip.IP, port)
		}
	}
	return out, joinErrs(errs)
}

// DNSResolver returns a resolver that sends every query to server
// (host:port; port 53 when left out) instead of the name servers in
// /etc/resolv.conf, whose search domains and options still apply. It
// serves --dns-server: a node whose host resolver does not know its peers'
// names (the k8s/ tests' pods, which share the host's resolv.conf).
func DNSResolver(server string) (*net.Resolver, error) {
	addr := server
	if _, _, err := net.SplitHostPort(server); err != nil {
		addr = net.JoinHostPort(strings.Trim(server, "[]"), "53")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return nil, fmt.Errorf("dns server %q: want host[:port]", server)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return nil, fmt.Errorf("dns server %q: bad port", server)
	}
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}, nil
}

// splitJoinEntry parses "host", "host:port", "ip", "[v6]:port" or a bare IPv6.
func splitJoinEntry(entry string, defPort int) (string, int, error) {
	entry = strings.TrimSpace(entry)
	if entry == "" {
		return "", 0, errors.New("empty join entry")
	}
	if ip := net.ParseIP(strings.Trim(entry, "[]")); ip != nil {
		return ip.String(), defPort, nil
	}
	host, ps, err := net.SplitHostPort(entry)
	if err != nil {
		if strings.Contains(err.Error(), "missing port") {
			return entry, defPort, nil
		}
		return "", 0, fmt.Errorf("join entry %q: %w", entry, err)
	}
	p, err := strconv.Atoi(ps)
	if err != nil || p <= 0 || p > 65535 {
		return "", 0, fmt.Errorf("join entry %q: bad port", entry)
	}
	if host == "" {
		return "", 0, fmt.Errorf("join entry %q: missing host", entry)
	}
	return host, p, nil
}
