// Package egress is the one home of the rule for requests gosty makes to
// addresses outside the cluster (job webhooks, node/webhook.go, and URL
// ingest, node/ingest.go): an allow list (--webhook-allow,
// --ingest-allow) of host names, IPs and CIDR prefixes, checked on a URL
// up front (CheckURL) and again at dial time on the resolved IP of every
// connection (Dialer), so that a name that later resolves elsewhere (DNS
// rebinding) or a redirect to another host is refused.
//
// Decisions:
//   - An empty list allows nothing: the feature it guards is off.
//   - Special addresses (loopback, link-local including the cloud metadata
//     address 169.254.169.254, RFC 1918 and IPv6 ULA private ranges, CGNAT,
//     unspecified, multicast; Special) are refused even when a listed
//     prefix covers them, unless the entry that covers them lies wholly
//     inside special space: "0.0.0.0/0" opens the internet but not the
//     node's loopback or the metadata service, "10.0.0.0/8" or
//     "127.0.0.1" open exactly what they name.
//   - A listed host name is trusted with whatever it resolves to: naming
//     it is the operator's decision (e.g. an in-cluster store on a private
//     address). An unlisted name passes only if each address it resolves to
//     at dial time is allowed.
//   - No proxy is used: a proxy would dial on our behalf, unchecked.
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// AllowList is where requests may go: host names (optionally with a port),
// IP addresses (optionally with a port) and CIDR prefixes.
type AllowList struct {
	flag     string // the flag it came from, named in errors
	names    []hostPort
	ips      []ipPort
	prefixes []netip.Prefix
}

type hostPort struct {
	host string
	port string // "" = any
}

type ipPort struct {
	ip   netip.Addr
	port string
}

// Parse reads a comma-separated list of host[:port], ip[:port],
// [ipv6]:port or CIDR entries; flag (e.g. "--ingest-allow") is named in
// errors.
func Parse(flag, s string) (*AllowList, error) {
	a := &AllowList{flag: flag}
	for _, e := range strings.Split(s, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if p, err := netip.ParsePrefix(e); err == nil {
			a.prefixes = append(a.prefixes, p.Masked())
			continue
		}
		host, port := e, ""
		if h, p, err := net.SplitHostPort(e); err == nil {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				return nil, fmt.Errorf("%s: bad port in %q", flag, e)
			}
			host, port = h, p
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			a.ips = append(a.ips, ipPort{ip.Unmap(), port})
			continue
		}
		if host == "" || strings.ContainsAny(host, "/@ ") {
			return nil, fmt.Errorf("%s: bad entry %q (want host[:port], ip[:port] or CIDR)", flag, e)
		}
		a.names = append(a.names, hostPort{strings.ToLower(strings.TrimSuffix(host, ".")), port})
	}
	return a, nil
}

// Empty reports whether the list allows nothing.
func (a *AllowList) Empty() bool {
	return a == nil || len(a.names)+len(a.ips)+len(a.prefixes) == 0
}

// Flag is the flag the list came from.
func (a *AllowList) Flag() string { return a.flag }

// NameAllowed reports whether a host name (not an IP) is listed for port.
func (a *AllowList) NameAllowed(host, port string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, n := range a.names {
		if n.host == host && (n.port == "" || n.port == port) {
			return true
		}
	}
	return false
}

// IPAllowed reports whether an address is listed (as an IP or in a
// prefix), a special address only by an entry inside special space.
func (a *AllowList) IPAllowed(ip netip.Addr, port string) bool {
	ip = ip.Unmap()
	for _, e := range a.ips {
		if e.ip == ip && (e.port == "" || e.port == port) {
			return true
		}
	}
	sr, special := specialRange(ip)
	for _, p := range a.prefixes {
		if !p.Contains(ip) {
			continue
		}
		if !special || (sr.Bits() <= p.Bits() && sr.Contains(p.Addr())) {
			return true
		}
	}
	return false
}

// specials are the ranges refused unless listed from inside (see the
// package doc).
var specials = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
		"172.16.0.0/12", "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4",
		"::/128", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8", "64:ff9b::/96",
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

func specialRange(ip netip.Addr) (netip.Prefix, bool) {
	ip = ip.Unmap()
	for _, p := range specials {
		if p.Contains(ip) {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// Special reports whether ip is loopback, link-local (the metadata
// address included), private, shared, unspecified or multicast.
func Special(ip netip.Addr) bool {
	_, ok := specialRange(ip)
	return ok
}

// CheckURL validates an absolute http(s) URL and its destination against
// the list, resolving an unlisted name (its addresses must all be
// allowed). what names the URL in errors ("options: callback_url").
// The dial checks again: this only refuses early what is decidable now.
func (a *AllowList) CheckURL(ctx context.Context, what, raw string) (*url.URL, error) {
	if a.Empty() {
		return nil, fmt.Errorf("%s: off on this cluster (no %s)", what, a.flagName())
	}
	if len(raw) > 2048 {
		return nil, fmt.Errorf("%s is longer than 2048 characters", what)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", what, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%s: scheme must be http or https, not %q", what, u.Scheme)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%s: user info is not allowed", what)
	}
	if u.Host == "" || u.Fragment != "" || u.Opaque != "" {
		return nil, fmt.Errorf("%s: want an absolute URL without a fragment", what)
	}
	host, port := u.Hostname(), Port(u)
	if ip, err := netip.ParseAddr(host); err == nil {
		if a.IPAllowed(ip, port) {
			return u, nil
		}
	} else if a.NameAllowed(host, port) {
		return u, nil
	} else if len(a.prefixes) > 0 || len(a.ips) > 0 {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		ips, err := net.DefaultResolver.LookupNetIP(rctx, "ip", host)
		ok := err == nil && len(ips) > 0
		for _, ip := range ips {
			ok = ok && a.IPAllowed(ip, port)
		}
		if ok {
			return u, nil
		}
	}
	return nil, fmt.Errorf("%s: %s is not in %s", what, net.JoinHostPort(host, port), a.flagName())
}

func (a *AllowList) flagName() string {
	if a == nil || a.flag == "" {
		return "the allow list"
	}
	return a.flag
}

// Port is the URL's port, or its scheme's default.
func Port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

// DialContext returns a dial function for an http.Transport that connects
// only to addresses the list allows, checked on the resolved IP of every
// connection.
func (a *AllowList) DialContext(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		var ips []netip.Addr
		named := false
		if ip, err := netip.ParseAddr(host); err == nil {
			ips = []netip.Addr{ip}
		} else {
			named = a.NameAllowed(host, port)
			if ips, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host); err != nil {
				return nil, err
			}
		}
		var errs []error
		for _, ip := range ips {
			if !named && !a.IPAllowed(ip, port) {
				errs = append(errs, &RefusedError{Host: host, IP: ip, Flag: a.flagName()})
				continue
			}
			c, err := d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
			if err == nil {
				return c, nil
			}
			errs = append(errs, err)
		}
		if len(errs) == 0 {
			errs = append(errs, fmt.Errorf("%s: no address", host))
		}
		return nil, errors.Join(errs...)
	}
}

// RefusedError is a dial the allow list refused.
type RefusedError struct {
	Host string
	IP   netip.Addr
	Flag string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("%s (%s) is not in %s", e.Host, e.IP, e.Flag)
}
