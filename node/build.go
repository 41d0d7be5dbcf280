package node

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/cluster/gc"
	"github.com/gosty/gosty/cluster/replica"
	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/node/disk"
	"github.com/gosty/gosty/node/egress"
	"github.com/gosty/gosty/node/kube"
	"github.com/gosty/gosty/node/webhook"
)

// The builders New runs, in start order. Each opens or builds one part
// from the config and the parts before it; New closes what they opened
// when a later one fails.

// openVolume opens the data dir: its disk space and reserves (node/disk,
// space.go), the blob store, and the transcoder that writes into it.
func (n *Node) openVolume() error {
	cfg := n.cfg
	var err error
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if n.space, err = disk.New(disk.Config{Dir: cfg.DataDir, Reserve: cfg.DiskReserve, RaftReserve: cfg.RaftReserve}); err != nil {
		return fmt.Errorf("data volume: %w", err)
	}
	if err := n.space.AttachBallast(filepath.Join(cfg.DataDir, "raft.ballast")); err != nil {
		return err
	}
	cfg.MaxUploadBytes = n.capUploads(cfg.MaxUploadBytes)
	n.cfg = cfg
	if n.blobs, err = cluster.OpenBlobStore(cfg.DataDir); err != nil {
		return err
	}
	n.blobs.SetSpace(n.space)
	threads := cfg.EncoderThreads
	if threads == 0 {
		threads = max(cores()/cfg.Slots, 1)
	}
	if n.tc, err = newTranscoder(cfg, n.logger, threads); err != nil {
		return err
	}
	return nil
}

// keys are the secrets a node reads at start (secrets.go).
type keys struct {
	tokens   []string // API tokens
	cluster  string   // the cluster key: peer links, and what the others derive from
	playback []byte   // signs playback URLs (nil: playback is not signed)
	webhook  []byte   // signs webhook deliveries
	gossip   []byte   // encrypts gossip (nil: not encrypted)
}

// readKeys reads the keys and the egress allow lists (webhooks, URL
// ingest).
func (n *Node) readKeys() (keys, error) {
	cfg := n.cfg
	var k keys
	var err error
	if k.tokens, err = readTokens(cfg.APITokenFile); err != nil {
		return k, fmt.Errorf("api token: %w", err)
	}
	if k.cluster, err = readSecret(cfg.ClusterKeyFile); err != nil {
		return k, fmt.Errorf("cluster key: %w", err)
	}
	if k.playback, err = playbackKey(cfg, k.cluster); err != nil {
		return k, fmt.Errorf("playback key: %w", err)
	}
	if n.webhookAllow, err = egress.Parse("--webhook-allow", cfg.WebhookAllow); err != nil {
		return k, err
	}
	if n.ingestAllow, err = egress.Parse("--ingest-allow", cfg.IngestAllow); err != nil {
		return k, err
	}
	if k.webhook, err = webhookKey(cfg, k.cluster); err != nil {
		return k, fmt.Errorf("webhook key: %w", err)
	}
	if k.gossip, err = readGossipKey(cfg.GossipKeyFile); err != nil {
		return k, fmt.Errorf("gossip key: %w", err)
	}
	return k, nil
}

// secureLinks builds the TLS links of raft and the internal API
// (peerlinks.go) and says, loudly, what peer traffic lacks.
func (n *Node) secureLinks(k keys) (peerLinks, error) {
	cfg, logger := n.cfg, n.logger
	links, err := newPeerLinks(cfg, k.cluster, logger)
	if err != nil {
		return links, err
	}
	n.insecure = insecurity(cfg, links.raft.Authenticated() && links.internal.Authenticated(), k.gossip != nil)
	if len(n.insecure) > 0 {
		// --insecure (Validate refuses an exposed node without keys
		// otherwise): said at ERROR level, and in GET /api/v1/cluster.
		logger.Error("INSECURE: --insecure and peer traffic is not authenticated; do not run this on a network you do not trust",
			"bind", cfg.BindIP(), "join", strings.Join(cfg.Join, ","), "open", strings.Join(n.insecure, "; "))
	} else if k.cluster != "" && k.gossip == nil {
		logger.Warn("gossip is neither encrypted nor authenticated: anyone who reaches the gossip port can join the member list; set --gossip-key-file")
	}
	return links, nil
}

// listen opens the listeners first: their real ports (0 in tests) go into
// gossip. The public one answers /healthz at once, while raft restores the
// job log (a large history takes seconds), and hands over to the API in
// Run.
func (n *Node) listen(links peerLinks) error {
	cfg := n.cfg
	var err error
	if n.ln, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	n.front = newFrontHandler()
	n.srv = newServer(n.front, n.logger)
	n.serveErr = make(chan error, 1)
	go func() { n.serveErr <- n.srv.Serve(n.ln) }()
	iln, err := net.Listen("tcp", cfg.bindHostPort(cfg.InternalPort))
	if err != nil {
		return fmt.Errorf("listen on internal port: %w", err)
	}
	// The internal API's server only ever sees connections that passed
	// TLS and the cluster key's exchange.
	n.iln = links.internal.Listen(iln)
	if cfg.MetricsAddr != "" {
		if n.mln, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			return fmt.Errorf("listen on metrics addr %s: %w", cfg.MetricsAddr, err)
		}
	}
	if cfg.DebugAddr != "" && cfg.DebugHandler != nil {
		if n.dln, err = net.Listen("tcp", cfg.DebugAddr); err != nil {
			return fmt.Errorf("debug listener: %w", err)
		}
		n.dsrv = &http.Server{Handler: cfg.DebugHandler, ErrorLog: slog.NewLogLogger(n.logger.Handler(), slog.LevelWarn)}
		n.logger.Warn("benchmark build: serving debug endpoints", "addr", n.dln.Addr().String())
	}
	return nil
}

// openRaft opens the raft store. Raft needs the membership to resolve
// peers' addresses, and the membership's metadata needs raft's address:
// the raft listener is opened first with an address book that gossip fills
// in (startGossip).
func (n *Node) openRaft(links peerLinks) (*addressBook, error) {
	cfg := n.cfg
	id, err := cluster.LocalServerID(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	addrs := &addressBook{}
	n.store, err = cluster.OpenStore(cluster.RaftConfig{
		NodeName:         cfg.Name,
		DataDir:          cfg.DataDir,
		BindAddr:         cfg.bindHostPort(cfg.RaftPort),
		Advertise:        net.JoinHostPort(cfg.advertiseIP(), strconv.Itoa(cfg.RaftPort)),
		Bootstrap:        len(cfg.Join) == 0,
		AddressProvider:  addrs,
		Link:             links.raft,
		Logger:           n.logger,
		HeartbeatTimeout: fastOr(cfg.Fast, 500*time.Millisecond),
		ElectionTimeout:  fastOr(cfg.Fast, 500*time.Millisecond),
	})
	if err != nil {
		return nil, err
	}
	if n.store.ID() != id {
		return nil, fmt.Errorf("raft id changed under us: %s vs %s", n.store.ID(), id)
	}
	return addrs, nil
}

// startGossip joins the member list with this node's metadata (its
// addresses, slots, versions and disk) and points the raft address book at
// it.
func (n *Node) startGossip(k keys, addrs *addressBook) error {
	cfg := n.cfg
	adv := cfg.advertiseIP()
	var resolver *net.Resolver
	var err error
	if cfg.DNSServer != "" {
		if resolver, err = cluster.DNSResolver(cfg.DNSServer); err != nil {
			return err
		}
	}
	n.members, err = cluster.StartMembership(cluster.MembershipConfig{
		Name:          cfg.Name,
		BindAddr:      cfg.BindIP(),
		BindPort:      cfg.GossipPort,
		AdvertiseAddr: adv,
		Join:          cfg.Join,
		Resolver:      resolver,
		GossipKey:     k.gossip,
		Fast:          cfg.Fast,
		Logger:        n.logger,
		Meta: cluster.MemberMeta{
			ID:       n.store.ID(),
			Raft:     n.store.Addr(),
			Internal: net.JoinHostPort(adv, portOf(n.iln.Addr())),
			HTTP:     publicAddr(n.ln.Addr(), adv),
			Slots:    cfg.Slots,
			Queue:    cfg.TaskQueue,
			Version:  cfg.Version,
			Log:      cluster.CommandVersion,
			Disk:     n.diskMeta(),
		},
	})
	if err != nil {
		return err
	}
	addrs.set(n.members)
	return nil
}

// buildLoops builds the parts Run starts: metrics, the peer client and
// the forwarder, joining and promotion, the worker and the scheduler, and
// the loops that keep the blobs and the jobs (replication, collection,
// webhooks, ingest, the bucket watch, publishing, log upgrades).
func (n *Node) buildLoops(links peerLinks, k keys) {
	cfg, logger := n.cfg, n.logger
	n.metrics = newMetrics(n.store.FSM(), cfg, n.space)
	n.metrics.reg.MustRegister(clusterCollector{n}, links.rejected)
	n.peers = cluster.NewPeers(cluster.PeerConfig{Link: links.internal, Blobs: n.blobs, Registry: n.metrics.reg,
		Logger: logger, BindAddr: cfg.BindIP(), OnAbsent: n.holderLacks})
	n.check = newChecker(n, logger.With("component", "check"))
	n.log = &cluster.Forwarder{Store: n.store, Members: n.members, Peers: n.peers}
	n.joiner = &cluster.Joiner{
		Store: n.store, Members: n.members, Peers: n.peers, Name: cfg.Name,
		Bootstrapper: cfg.Bootstrap || cluster.IsBootstrapOrdinal(cfg.Name),
		Settle:       10 * time.Second, Logger: logger,
	}
	n.promote = &cluster.Promoter{Store: n.store, Members: n.members, Voters: cfg.Voters,
		Stabilize: cfg.Stabilize, DeadTimeout: cfg.DeadServerTimeout, Interval: time.Second,
		Logger: logger.With("component", "promoter")}
	n.worker = &worker{
		name: cfg.Name, id: n.store.ID(), fsm: n.store.FSM(), log: n.log, blobs: n.blobs, tc: n.tc, fetch: n.fetch,
		slots: cfg.Slots, queue: cfg.TaskQueue, logger: logger.With("component", "worker"), metrics: n.metrics,
		pins: n.pins, running: map[string]*taskRun{}, full: n.space.Full, outOfSpace: n.taskOutOfSpace,
		freeSlots: n.freeSlots, // chunkplan.go
	}
	n.sched = cluster.NewScheduler(n.store, n, logger)
	n.sched.PlanSeconds = n.metrics.planSeconds
	if cfg.Fast {
		n.sched.LeaseBase, n.sched.LeasePerMediaSecond = 4*time.Second, time.Second/2
	}
	n.manifests = newManifestCache(n.openBlob, maxManifestFiles)
	n.repl = replica.New(replica.Config{Name: cfg.Name, Replicas: cfg.Replicas, FSM: n.store.FSM(), Nodes: replicaNodes{n},
		Logger: logger.With("component", "replicator"), Interval: 2 * time.Second})
	n.notify = webhook.New(n.store, n.log, n.webhookAllow, k.webhook, logger)
	n.ingest = newIngester(n, logger)
	n.watch = newWatcher(n, logger)
	n.publish = newPublisher(n, logger) // publish.go
	n.gc = &gc.Collector{
		Name: cfg.Name, FSM: n.store.FSM(), Blobs: n.blobs, Pins: n.pins, Manifests: n.manifests,
		Logger: logger.With("component", "gc"), Grace: cfg.GCGrace, Interval: cfg.GCInterval,
		Lost: n.check.disown,
	}
	n.store.FSM().OnBlobs(func(ev cluster.BlobEvents) {
		n.pins.OnBlobs(ev)
		n.repl.OnBlobs(ev)
		n.gc.OnBlobs(ev)
	})
	n.metrics.reg.MustRegister(&stateCollector{fsm: n.store.FSM(), under: n.repl.UnderReplicated, held: n.blobs.Bytes})
	n.upgrader = &cluster.Upgrader{Store: n.store, Members: n.members, Interval: time.Second,
		Logger: logger.With("component", "upgrader")}
}

// buildAPIs builds the public API (with a scaler when the node runs in
// Kubernetes) and then the internal one, which serves, among peer routes,
// the uploads held here that other nodes relay.
func (n *Node) buildAPIs(k keys) error {
	cfg, logger := n.cfg, n.logger
	scaler := cfg.Scaler
	if scaler == nil {
		switch s, err := kube.InCluster(cfg.Name); {
		case err != nil:
			logger.Warn("in Kubernetes, but scaling from the API is off", "err", err)
		case s != nil:
			logger.Info("scaling from the API patches the StatefulSet", "statefulset", s.Target())
			scaler = s
		}
	}
	svc := service{n}
	api, err := httpapi.New(httpapi.Config{
		Jobs: svc, Blobs: svc, Cluster: svc, Health: svc, Live: svc,
		Registry: n.metrics.reg, Logger: logger, MaxUploadBytes: cfg.MaxUploadBytes,
		APITokens: k.tokens, PublicRead: cfg.PublicRead, SeparateMetrics: n.mln != nil, NodeName: cfg.Name, Scaler: scaler,
		PlaybackKey: k.playback, PlaybackTTL: cfg.PlaybackTTL, MaxConcurrentUploads: cfg.MaxConcurrentUploads,
		UploadDir: filepath.Join(cfg.DataDir, "uploads"), UploadTTL: cfg.UploadTTL, UploadRelay: svc,
		Space: n.space,
	})
	if err != nil {
		return err
	}
	n.api = api
	if n.mln != nil {
		n.msrv = newServer(metricsMux(api.MetricsHandler()), logger)
	}
	n.access = accessSummary(cfg, len(k.tokens) > 0, n.MetricsAddr())
	if cfg.PublicRead && len(k.tokens) == 0 {
		logger.Warn("--public-read without --api-token-file changes nothing: the whole API is open")
	}
	internal, err := httpapi.NewInternal(httpapi.InternalConfig{
		Blobs: peerBlobs{n.blobs, n.check}, Raft: raftPeer{n}, Uploads: api,
		Registry: n.metrics.reg, Logger: logger, NodeName: cfg.Name, HoldStreamed: n.pins.HoldFor(ackHold),
	})
	if err != nil {
		return err
	}
	n.isrv = newServer(internal.Handler(), logger)
	return nil
}
