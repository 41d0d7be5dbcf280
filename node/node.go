// Package node is the composition root: it builds one gosty node from a
// Config, starts its parts in order and stops them in reverse.
//
// Start order: data dir → blob store → transcoder → raft store (bootstrap a
// one-node cluster when asked and empty) → metrics → worker, scheduler and
// blob collector → HTTP. Stop order is the reverse, and readiness turns off
// first so that load balancers stop sending work before anything closes.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/oklog/run"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/transcoder"
)

// Node is one member of a gosty cluster.
type Node struct {
	cfg     Config
	logger  *slog.Logger
	blobs   *cluster.BlobStore
	tc      *transcoder.Transcoder
	store   *cluster.Store
	metrics *metrics
	pins    *pins
	worker  *worker
	sched   *cluster.Scheduler
	gc      *collector
	ln      net.Listener
	srv     *http.Server

	started  time.Time
	stopping atomic.Bool
}

// New builds a node and opens its files and listeners; Run starts it.
func New(cfg Config) (n *Node, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("node", cfg.Name)
	n = &Node{cfg: cfg, logger: logger, pins: newPins(), started: time.Now()}
	defer func() {
		if err != nil {
			n.close()
		}
	}()

	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if n.blobs, err = cluster.OpenBlobStore(cfg.DataDir); err != nil {
		return nil, err
	}
	threads := cfg.EncoderThreads
	if threads == 0 {
		threads = max(runtime.NumCPU()/cfg.Slots, 1)
	}
	if n.tc, err = transcoder.New(transcoder.Config{FFmpeg: cfg.FFmpeg, FFprobe: cfg.FFprobe, Logger: logger, Threads: threads}); err != nil {
		return nil, err
	}
	n.store, err = cluster.OpenStore(cluster.RaftConfig{
		NodeName:  cfg.Name,
		DataDir:   cfg.DataDir,
		BindAddr:  cfg.raftBind(),
		Advertise: cfg.raftAdvertise(),
		Bootstrap: cfg.Bootstrap || len(cfg.Join) == 0,
		Logger:    logger,
	})
	if err != nil {
		return nil, err
	}
	n.metrics = newMetrics(n.store.FSM(), cfg.Slots)
	n.worker = &worker{
		name: cfg.Name, fsm: n.store.FSM(), log: n.store, blobs: n.blobs, tc: n.tc,
		slots: cfg.Slots, logger: logger.With("component", "worker"), metrics: n.metrics,
		pins: n.pins, running: map[string]*taskRun{},
	}
	n.sched = cluster.NewScheduler(n.store, n, logger)
	n.gc = &collector{
		name: cfg.Name, fsm: n.store.FSM(), blobs: n.blobs, log: n.store, pins: n.pins,
		logger: logger.With("component", "gc"), grace: cfg.gcGrace, interval: 10 * time.Second,
	}

	token, err := readSecret(cfg.APITokenFile)
	if err != nil {
		return nil, fmt.Errorf("api token: %w", err)
	}
	svc := service{n}
	api, err := httpapi.New(httpapi.Config{
		Jobs: svc, Blobs: svc, Cluster: svc, Health: svc,
		Registry: n.metrics.reg, Logger: logger, MaxUploadBytes: cfg.MaxUploadBytes,
		APIToken: token, NodeName: cfg.Name,
	})
	if err != nil {
		return nil, err
	}
	if n.ln, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	n.srv = &http.Server{
		Handler:           api.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	return n, nil
}

// Workers lists the nodes that can take tasks: for now, this one.
func (n *Node) Workers() []cluster.Worker {
	if n.stopping.Load() {
		return nil
	}
	return []cluster.Worker{{Name: n.cfg.Name, Slots: n.cfg.Slots}}
}

// HTTPAddr is the address the public API listens on.
func (n *Node) HTTPAddr() string { return n.ln.Addr().String() }

// Run serves until ctx ends, then shuts down in reverse order.
func (n *Node) Run(ctx context.Context) error {
	defer n.close()
	wctx, stopWork := context.WithCancel(context.Background())
	defer stopWork()

	var g run.Group
	{ // The trigger: the caller's context.
		gctx, cancel := context.WithCancel(ctx)
		g.Add(func() error {
			<-gctx.Done()
			return nil
		}, func(error) { cancel() })
	}
	{ // Background parts; they stop together, after HTTP.
		done := make(chan struct{})
		g.Add(func() error {
			defer close(done)
			c := make(chan struct{}, 3)
			go func() { n.sched.Run(wctx); c <- struct{}{} }()
			go func() { n.worker.Run(wctx); c <- struct{}{} }()
			go func() { n.gc.Run(wctx); c <- struct{}{} }()
			for range 3 {
				<-c
			}
			return nil
		}, func(error) {
			stopWork()
			<-done
		})
	}
	{ // HTTP last in, first out: readiness flips off, then in-flight requests finish.
		g.Add(func() error {
			n.logger.Info("serving", "http", n.HTTPAddr(), "data_dir", n.cfg.DataDir, "slots", n.cfg.Slots)
			if err := n.srv.Serve(n.ln); !errors.Is(err, http.ErrServerClosed) {
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
	err := g.Run()
	n.logger.Info("stopped")
	return err
}

// close releases what New opened, in reverse order.
func (n *Node) close() {
	if n.ln != nil {
		n.ln.Close()
	}
	if n.store != nil {
		if err := n.store.Close(); err != nil {
			n.logger.Warn("closing raft", "err", err)
		}
		n.store = nil
	}
}

// readSecret reads a token or key from a file; "" means none configured.
func readSecret(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := string(b)
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r' || s[len(s)-1] == ' ') {
		s = s[:len(s)-1]
	}
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}
