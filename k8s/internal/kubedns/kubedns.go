// Package kubedns is a test-only cluster DNS: it answers the names
// Kubernetes' DNS specification gives Services from the API server's
// Services and EndpointSlices, like CoreDNS's kubernetes plugin, for the
// k8s/ tests (whose pods are local processes, see k8s/internal/kubelet).
//
//	<service>.<ns>.svc[.<domain>]         A: the ClusterIP, or for a headless
//	                                      Service every ready endpoint address
//	                                      (with publishNotReadyAddresses the
//	                                      EndpointSlice controller marks every
//	                                      pod's address ready)
//	<hostname>.<service>.<ns>.svc[...]    A: a headless Service's endpoint with
//	                                      that hostname (a StatefulSet pod)
//
// Addresses pass through the mapping given to Start (the test's pod
// network lives on loopback addresses, which EndpointSlices cannot hold;
// see kubelet.HostIP). Anything else is NXDOMAIN; AAAA and other types get an empty answer for
// names that exist. Answers are built from the informers' caches at query
// time with a TTL of 5 s (CoreDNS's default).
package kubedns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
)

// Server is a running DNS responder (UDP and TCP on one address).
type Server struct {
	Addr     string // host:port it answers on
	domain   string
	mapAddr  func(string) string
	services corelisters.ServiceLister
	slices   discoverylisters.EndpointSliceLister
	cancel   context.CancelFunc
	udp, tcp *dns.Server
	wg       sync.WaitGroup
	// Logf, when set before queries arrive, logs every answer.
	Logf func(format string, args ...any)
}

// Start serves on ip (port picked at random, the same for UDP and TCP)
// with the cluster domain (e.g. "cluster.local"); mapAddr (nil: none)
// turns an address of the API into the one to answer.
func Start(client kubernetes.Interface, ip, domain string, mapAddr func(string) string) (*Server, error) {
	if mapAddr == nil {
		mapAddr = func(s string) string { return s }
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := informers.NewSharedInformerFactory(client, 0)
	s := &Server{
		domain: strings.Trim(strings.ToLower(domain), "."), cancel: cancel, mapAddr: mapAddr,
		services: f.Core().V1().Services().Lister(),
		slices:   f.Discovery().V1().EndpointSlices().Lister(),
	}
	f.Start(ctx.Done())
	for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
		if !ok {
			cancel()
			return nil, fmt.Errorf("kubedns: %v cache did not sync", typ)
		}
	}
	var err error
	for range 10 {
		var pc net.PacketConn
		if pc, err = net.ListenPacket("udp", net.JoinHostPort(ip, "0")); err != nil {
			continue
		}
		var l net.Listener
		if l, err = net.Listen("tcp", pc.LocalAddr().String()); err != nil {
			pc.Close()
			continue
		}
		s.Addr = pc.LocalAddr().String()
		s.udp = &dns.Server{PacketConn: pc, Handler: s}
		s.tcp = &dns.Server{Listener: l, Handler: s}
		break
	}
	if s.udp == nil {
		cancel()
		return nil, fmt.Errorf("kubedns: listen: %w", err)
	}
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_ = srv.ActivateAndServe()
		}()
	}
	return s, nil
}

// Close stops serving.
func (s *Server) Close() {
	_ = s.udp.Shutdown()
	_ = s.tcp.Shutdown()
	s.wg.Wait()
	s.cancel()
}

// ServeDNS answers one query.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		_ = w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	ips, err := s.lookup(q.Name)
	switch {
	case errors.Is(err, errNoName):
		m.Rcode = dns.RcodeNameError
	case err != nil:
		m.Rcode = dns.RcodeServerFailure
	case q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY:
		for _, ip := range ips {
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5},
				A:   ip,
			})
		}
	}
	if s.Logf != nil {
		s.Logf("dns: %s %s → %s %v", dns.TypeToString[q.Qtype], q.Name, dns.RcodeToString[m.Rcode], ips)
	}
	_ = w.WriteMsg(m)
}

var errNoName = errors.New("no such name")

// lookup returns the A records of a name.
func (s *Server) lookup(name string) ([]net.IP, error) {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	name = strings.TrimSuffix(name, "."+s.domain)
	rest, ok := strings.CutSuffix(name, ".svc")
	if !ok {
		return nil, errNoName
	}
	parts := strings.Split(rest, ".")
	var host, svcName, ns string
	switch len(parts) {
	case 2:
		svcName, ns = parts[0], parts[1]
	case 3:
		host, svcName, ns = parts[0], parts[1], parts[2]
	default:
		return nil, errNoName
	}
	svc, err := s.services.Services(ns).Get(svcName)
	if err != nil {
		return nil, errNoName
	}
	headless := svc.Spec.ClusterIP == corev1.ClusterIPNone
	if !headless {
		if host != "" {
			return nil, errNoName
		}
		if ip := net.ParseIP(s.mapAddr(svc.Spec.ClusterIP)); ip != nil && ip.To4() != nil {
			return []net.IP{ip.To4()}, nil
		}
		return nil, nil
	}
	sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: svcName})
	slices, err := s.slices.EndpointSlices(ns).List(sel)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var ips []net.IP
	for _, sl := range slices {
		if sl.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		for _, ep := range sl.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			if host != "" && (ep.Hostname == nil || *ep.Hostname != host) {
				continue
			}
			for _, a := range ep.Addresses {
				a = s.mapAddr(a)
				if ip := net.ParseIP(a); ip != nil && ip.To4() != nil && !seen[a] {
					seen[a] = true
					ips = append(ips, ip.To4())
				}
			}
		}
	}
	if host != "" && len(ips) == 0 {
		return nil, errNoName
	}
	sort.Slice(ips, func(i, j int) bool { return ips[i].String() < ips[j].String() })
	return ips, nil
}
