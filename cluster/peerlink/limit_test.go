package peerlink

import (
	"fmt"
	"testing"
)

// TestLimiterForgetsSources: a source with nothing pending and no rate
// bucket is forgotten at once; with buckets, the sources remembered stay
// under maxTrackedIPs and a new one beyond it is refused, not added.
func TestLimiterForgetsSources(t *testing.T) {
	l := newLimiter(Limits{}.withDefaults())
	for i := range 3 * maxTrackedIPs {
		ip := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		if !l.admit(ip) {
			t.Fatalf("%s refused", ip)
		}
		l.release(ip)
	}
	if n := len(l.ips); n != 0 {
		t.Errorf("%d sources remembered after every handshake ended, want 0", n)
	}

	r := newLimiter(RaftLimits.withDefaults())
	for i := range maxTrackedIPs {
		ip := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		if !r.admit(ip) {
			t.Fatalf("%s refused", ip)
		}
		r.release(ip)
	}
	if r.admit("192.0.2.1") {
		t.Errorf("a new source was admitted beyond %d remembered ones", maxTrackedIPs)
	}
	if n := len(r.ips); n > maxTrackedIPs {
		t.Errorf("%d sources remembered, want at most %d", n, maxTrackedIPs)
	}
	if !r.admit("10.0.0.1") {
		t.Errorf("a remembered source was refused")
	}
}
