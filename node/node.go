// Package node is the composition root: it builds one gosty node from a
// Config, starts its parts in order and stops them in reverse.
//
// Start order: data dir → its disk space (node/disk; see space.go) → blob
// store → transcoder → listeners (public and internal HTTP) → gossip
// membership → raft store (addresses resolved from
// gossip) → peers, forwarder → metrics → joiner (bootstrap or join) →
// scheduler, promoter, worker, replicator (cluster/replica), blob collector
// (cluster/gc) → public API →
// internal API (built after the public API, whose resumable uploads it
// serves to the peers that relay them). Stop order is the reverse, and
// readiness turns off first so that load balancers stop sending work
// before anything closes.
//
// The loops that keep the blobs and the jobs are not here: each lives
// under cluster with the data it owns (replication, the drain's hand-off
// and holder reconciliation in cluster/replica, collection in cluster/gc,
// expiry and the history bound in cluster/retention, leaving raft in
// cluster/leave.go), behind interfaces it declares. This package builds
// them (buildLoops), gives them its side of those interfaces (replicas.go)
// and starts them, so that what a loop does is read in one place
// and the composition root stays wiring.
//
// Safe defaults (Config.Validate, Config.BindIP): a lone node (no Join)
// listens for gossip, raft and the internal API on loopback only unless
// BindAddr says otherwise; a node other machines can reach (it joins peers,
// or binds beyond loopback) refuses to start without both the cluster key
// and the gossip key, unless Insecure is set, which is logged at ERROR
// level and listed in GET /api/v1/cluster ("insecure").
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/run"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/cluster/gc"
	"github.com/gosty/gosty/cluster/replica"
	"github.com/gosty/gosty/cluster/retention"
	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/node/disk"
	"github.com/gosty/gosty/node/egress"
	"github.com/gosty/gosty/node/webhook"
)

// Node is one member of a gosty cluster.
type Node struct {
	cfg    Config
	logger *slog.Logger
	blobs  *cluster.BlobStore
	space  *disk.Space // the data volume's free space and reserves
	diskMu sync.Mutex  // serialises gossiping the volume
	// noSpaceHold is how long the node holds itself full after a task ran
	// out of space (tests shorten it).
	noSpaceHold time.Duration
	tc          Transcoder
	members     *cluster.Membership
	store       *cluster.Store
	peers       *cluster.Peers
	log         *cluster.Forwarder
	metrics     *metrics
	pins        *gc.Pins
	joiner      *cluster.Joiner
	sched       *cluster.Scheduler

	progress  progressCache // the leader's view of running tasks, for followers
	ingest    *ingester     // URL ingests fetched here (ingest.go)
	watch     *watcher      // the --watch prefix, nil without (watch.go)
	promote   *cluster.Promoter
	worker    *worker
	repl      *replica.Replicator
	gc        *gc.Collector
	notify    *webhook.Notifier
	publish   *publisher
	upgrader  *cluster.Upgrader
	manifests *manifestCache
	check     *checker

	webhookAllow *egress.AllowList
	ingestAllow  *egress.AllowList
	// insecure says what peer traffic lacks on a node other machines can
	// reach (run with --insecure); nil otherwise. Fixed at start.
	insecure []string

	ln, iln   net.Listener
	srv, isrv *http.Server
	mln       net.Listener // --metrics-addr; nil: /metrics on the public port
	msrv      *http.Server
	dln       net.Listener // Config.DebugAddr (benchmark builds); nil: none
	dsrv      *http.Server
	front     *frontHandler // the public handler: "starting" until Run
	serveErr  chan error    // the public server's end
	api       *httpapi.API

	access []any // what the public API opens to whom, logged at start

	started  time.Time
	stopping atomic.Bool
	joined   atomic.Bool
}

// New builds a node and opens its files and listeners; Run starts it. The
// builders run in start order (build.go); a failed one closes what the
// earlier ones opened.
func New(cfg Config) (_ *Node, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("node", cfg.Name)
	n := &Node{cfg: cfg, logger: logger, pins: gc.NewPins(), started: time.Now(), noSpaceHold: defaultNoSpaceHold}
	defer func() {
		if err != nil {
			n.close()
		}
	}()
	if err := n.openVolume(); err != nil {
		return nil, err
	}
	keys, err := n.readKeys()
	if err != nil {
		return nil, err
	}
	links, err := n.secureLinks(keys)
	if err != nil {
		return nil, err
	}
	if err := n.listen(links); err != nil {
		return nil, err
	}
	addrs, err := n.openRaft(links)
	if err != nil {
		return nil, err
	}
	if err := n.startGossip(keys, addrs); err != nil {
		return nil, err
	}
	n.buildLoops(links, keys)
	if err := n.buildAPIs(keys); err != nil {
		return nil, err
	}
	return n, nil
}

// Server limits, the same on the public and the internal port. ReadTimeout
// bounds reading a whole request; uploads and blob pushes, which may take
// much longer, move their own read deadline while bytes flow
// (httpapi.Config.UploadIdleTimeout) instead of being cut by it. Responses
// have no write timeout: downloads and event streams are long, and the
// handlers that stream clear any deadline.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = time.Minute
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
)

func newServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// joinWatchPeriod is how often a member checks that it hears from a
// leader (cluster.Joiner.Watch): a few election timeouts.
func joinWatchPeriod(fast bool) time.Duration {
	if fast {
		return 2 * time.Second
	}
	return 5 * time.Second
}

func fastOr(fast bool, d time.Duration) time.Duration {
	if fast {
		return d
	}
	return 0 // raft's defaults
}

// publicAddr is the public API address peers and clients are shown: the
// listener's own IP, or the advertised one when it listens on every
// interface (":8080" in a pod).
func publicAddr(ln net.Addr, adv string) string {
	host, port, _ := net.SplitHostPort(ln.String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = adv
	}
	return net.JoinHostPort(host, port)
}

func portOf(a net.Addr) string {
	_, p, _ := net.SplitHostPort(a.String())
	return p
}

// HTTPAddr is the address the public API listens on.
func (n *Node) HTTPAddr() string { return n.ln.Addr().String() }

// MetricsAddr is the address /metrics is served on: its own
// (--metrics-addr) or the public one.
func (n *Node) MetricsAddr() string {
	if n.mln != nil {
		return n.mln.Addr().String()
	}
	return n.HTTPAddr()
}

// Run serves until ctx ends, then shuts down in reverse order. It is long
// on purpose, like Prometheus's main: one run-group actor (start,
// interrupt) per part, in start order, so that reading it top to bottom is
// reading the order the parts start in and the reverse they stop in.
func (n *Node) Run(ctx context.Context) error {
	defer n.close()
	wctx, stopWork := context.WithCancel(context.Background())
	defer stopWork()

	var g run.Group
	// oklog/run interrupts actors in the order they were added: that order
	// is the shutdown order. Readiness flips off and the public API stops
	// first; the node then drains (hands back or finishes its tasks, makes
	// sure its blobs have copies elsewhere, gives up leadership); background
	// parts stop; the internal API, which peers pull blobs from during the
	// drain, stops last.
	{ // The trigger: the caller's context.
		gctx, cancel := context.WithCancel(ctx)
		g.Add(func() error {
			<-gctx.Done()
			return nil
		}, func(error) { cancel() })
	}
	{ // Public HTTP (serving since New; the API takes over now).
		g.Add(func() error {
			n.front.set(n.api.Handler())
			n.logger.Info("serving", "http", n.HTTPAddr(), "internal", n.iln.Addr().String(),
				"bind", n.cfg.BindIP(), "data_dir", n.cfg.DataDir, "slots", n.cfg.Slots, "join", strings.Join(n.cfg.Join, ","))
			n.logger.Info("public API access", n.access...)
			if err := <-n.serveErr; !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("http: %w", err)
			}
			return nil
		}, func(error) {
			n.stopping.Store(true)
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := n.srv.Shutdown(sctx); err != nil {
				n.srv.Close()
			}
		})
	}
	{ // The drain.
		dctx, cancel := context.WithCancel(context.Background())
		g.Add(func() error {
			<-dctx.Done()
			return nil
		}, func(error) {
			n.drain(wctx)
			cancel()
		})
	}
	{ // Background parts.
		done := make(chan struct{})
		g.Add(func() error {
			defer close(done)
			var wg sync.WaitGroup
			start := func(f func(context.Context)) {
				wg.Add(1)
				go func() { defer wg.Done(); f(wctx) }()
			}
			start(n.members.JoinLoop)
			joined := make(chan struct{})
			start(func(ctx context.Context) {
				if err := n.joiner.Run(ctx); err != nil {
					return
				}
				n.joined.Store(true)
				close(joined)
				n.logger.Info("in the cluster", "raft_id", n.store.ID())
				// Record which name this raft ID runs under (the bootstrapper
				// never asked to join, and names outlive restarts). Bounded:
				// a node the leader has just removed would wait for ever to
				// apply the entry; it joins again (Watch), and the leader
				// records its name then.
				pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
				if err := n.log.Propose(pctx, cluster.OpNodeJoin, cluster.NodeJoin{ID: n.store.ID(), Name: n.cfg.Name}); err != nil {
					n.logger.Warn("registering the node name", "err", err)
				}
				replica.Reconcile(ctx, n.cfg.Name, n.store.FSM(), localBlobs{n.blobs, n}, n.log, n.check.logger)
			})
			start(func(ctx context.Context) {
				select {
				case <-ctx.Done():
					return
				case <-joined:
				}
				n.joiner.Watch(ctx, joinWatchPeriod(n.cfg.Fast))
			})
			start(n.sched.Run)
			start(n.promote.Run)
			start(n.worker.Run)
			start(n.heartbeats)
			start(n.watchDisk)
			start(n.repl.Run)
			start(n.gc.Run)
			start(n.api.RunUploadSweeper)
			start(func(ctx context.Context) { retention.Expire(ctx, n.store, n.logger) })
			start(func(ctx context.Context) { retention.Forget(ctx, n.store, n.cfg.history(), n.logger) })
			start(n.compactLoop)
			start(n.upgrader.Run)
			start(n.publish.Run)
			start(func(ctx context.Context) { n.check.scrub(ctx, n.cfg.ScrubInterval, n.cfg.ScrubRate) })
			if !n.webhookAllow.Empty() {
				start(n.notify.Run)
			}
			start(n.ingest.Run)
			if n.watch != nil {
				start(n.watch.Run)
			}
			wg.Wait()
			return nil
		}, func(error) {
			stopWork()
			<-done
		})
	}
	if n.msrv != nil { // Metrics, scraped until the very end of the drain.
		serveHTTP(&g, "metrics", n.msrv, n.mln, true)
	}
	if n.dsrv != nil { // Debug endpoints (benchmark builds), as long as the node runs.
		serveHTTP(&g, "debug", n.dsrv, n.dln, false)
	}
	// Internal API.
	serveHTTP(&g, "internal", n.isrv, n.iln, true)
	err := g.Run()
	// A snapshot now makes the next start replay little of the log.
	start := time.Now()
	if serr := n.store.Snapshot(); serr != nil {
		n.logger.Warn("snapshot at stop failed", "err", serr)
	} else {
		n.logger.Info("snapshot taken at stop", "seconds", time.Since(start).Seconds())
	}
	n.logger.Info("stopped")
	return err
}

// serveHTTP serves srv on ln as an actor of g, named what in its error.
// At the interrupt a graceful server lets requests in flight finish (5 s
// at most) before it is closed; another is closed at once.
func serveHTTP(g *run.Group, what string, srv *http.Server, ln net.Listener, graceful bool) {
	g.Add(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("%s http: %w", what, err)
		}
		return nil
	}, func(error) {
		if !graceful {
			srv.Close()
			return
		}
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
	})
}

// close releases what New opened, in reverse order.
func (n *Node) close() {
	if n.members != nil {
		if err := n.members.Leave(2 * time.Second); err != nil {
			n.logger.Debug("leaving gossip", "err", err)
		}
		n.members.Shutdown()
		n.members = nil
	}
	if n.store != nil {
		if err := n.store.Close(); err != nil {
			n.logger.Warn("closing raft", "err", err)
		}
		n.store = nil
	}
	if n.iln != nil {
		n.iln.Close()
	}
	if n.msrv != nil {
		n.msrv.Close() // closes n.mln once served
	}
	if n.mln != nil {
		n.mln.Close()
	}
	if n.dsrv != nil {
		n.dsrv.Close() // closes n.dln once served
	}
	if n.dln != nil {
		n.dln.Close()
	}
	if n.srv != nil {
		n.srv.Close() // closes n.ln
	} else if n.ln != nil {
		n.ln.Close()
	}
}

// GossipAddr is the host:port this node gossips on (others --join it).
func (n *Node) GossipAddr() string { return n.members.Local().Addr }
