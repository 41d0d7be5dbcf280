package peerlink

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limits bound a listener's handshakes in progress (all, and per source IP)
// and, when Rate > 0, how fast one source IP may start new ones.
type Limits struct {
	Pending int        // handshakes in progress in all (default 256)
	PerIP   int        // in progress from one IP (default 32)
	Rate    rate.Limit // new handshakes a second from one IP; 0 = unlimited
	Burst   int        // with Rate (default 2 × Rate, at least 1)
}

// RaftLimits suit the raft port: raft keeps a few long-lived connections
// per peer, so a source opening many is not a peer.
var RaftLimits = Limits{Pending: 64, PerIP: 8, Rate: 10, Burst: 20}

func (l Limits) withDefaults() Limits {
	if l.Pending <= 0 {
		l.Pending = 256
	}
	if l.PerIP <= 0 {
		l.PerIP = 32
	}
	if l.Rate > 0 && l.Burst <= 0 {
		l.Burst = max(int(2*l.Rate), 1)
	}
	return l
}

type ipState struct {
	pending int
	bucket  *rate.Limiter
	seen    time.Time
}

// maxTrackedIPs bounds the sources a limiter remembers. A source is
// forgotten as soon as it has nothing pending and no rate bucket to keep
// (the internal port), or once idle for a minute (a bucket is full again
// by then); beyond the bound a new source is refused until some are.
const maxTrackedIPs = 4096

// limiter admits handshakes under Limits.
type limiter struct {
	lim       Limits
	mu        sync.Mutex
	pending   int
	ips       map[string]*ipState
	lastPrune time.Time
}

func newLimiter(lim Limits) *limiter { return &limiter{lim: lim, ips: map[string]*ipState{}} }

// admit reserves a slot for a handshake from ip; false refuses it.
func (l *limiter) admit(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	st := l.ips[ip]
	if st == nil {
		if len(l.ips) >= maxTrackedIPs && now.Sub(l.lastPrune) > time.Second {
			// At most once a second, so that a flood of sources does not
			// make every handshake walk the map.
			l.prune(now)
			l.lastPrune = now
		}
		if len(l.ips) >= maxTrackedIPs {
			return false
		}
		st = &ipState{}
		if l.lim.Rate > 0 {
			st.bucket = rate.NewLimiter(l.lim.Rate, l.lim.Burst)
		}
		l.ips[ip] = st
	}
	st.seen = now
	if l.pending >= l.lim.Pending || st.pending >= l.lim.PerIP {
		l.forgetIdle(ip, st)
		return false
	}
	if st.bucket != nil && !st.bucket.AllowN(now, 1) {
		return false
	}
	l.pending++
	st.pending++
	return true
}

// release frees ip's slot.
func (l *limiter) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending--
	if st := l.ips[ip]; st != nil {
		st.pending--
		l.forgetIdle(ip, st)
	}
}

// forgetIdle drops ip when nothing of it needs keeping: no handshake in
// progress and no rate bucket.
func (l *limiter) forgetIdle(ip string, st *ipState) {
	if st.pending == 0 && st.bucket == nil {
		delete(l.ips, ip)
	}
}

// prune forgets idle sources (their buckets are full again by then).
func (l *limiter) prune(now time.Time) {
	for ip, st := range l.ips {
		if st.pending == 0 && now.Sub(st.seen) > time.Minute {
			delete(l.ips, ip)
		}
	}
}

// logLimiter lets one warning a second through (a burst of 5) and counts
// the ones it holds back.
type logLimiter struct {
	mu         sync.Mutex
	r          *rate.Limiter
	suppressed int
}

func newLogLimiter() *logLimiter { return &logLimiter{r: rate.NewLimiter(1, 5)} }

// allow reports whether to log now, and how many were suppressed since
// the last one logged.
func (l *logLimiter) allow() (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.r.Allow() {
		l.suppressed++
		return 0, false
	}
	n := l.suppressed
	l.suppressed = 0
	return n, true
}
