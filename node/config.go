package node

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/gosty/gosty/cluster/retention"
	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/node/disk"
	"github.com/gosty/gosty/objstore"
)

// Playback modes.
const (
	PlaybackPublic = "public"
	PlaybackSigned = "signed"
)

// Default ports. They are fixed so that nodes on different loopback
// addresses (or pods) share them, like pods of a StatefulSet do.
const (
	DefaultGossipPort   = 7946
	DefaultRaftPort     = 7947
	DefaultInternalPort = 7948
)

// Config is everything a node is built from. DefaultConfig fills the
// defaults; Validate says what is wrong before anything starts.
type Config struct {
	Name     string // memberlist and task-assignee name; default hostname
	DataDir  string
	HTTPAddr string // public API, UI (and metrics without MetricsAddr)
	// MetricsAddr, when set, serves /metrics on an address of its own and
	// takes it off HTTPAddr, so that what exposes the public address (a
	// client Service, an Ingress) does not expose the metrics. "" = on
	// HTTPAddr.
	MetricsAddr string
	// BindAddr is the IP gossip, raft and the internal API listen on; ""
	// = loopback (127.0.0.1) for a lone node (no Join), every interface
	// (0.0.0.0) for one that joins peers (see BindIP).
	BindAddr      string
	AdvertiseAddr string // IP peers use to reach this node; default: BindAddr or a local address
	RaftPort      int
	GossipPort    int
	InternalPort  int
	// Join lists peers as host[:gossip port] or DNS names (all records).
	Join []string
	// DNSServer (host[:port]) resolves the DNS names in Join instead of
	// the system's name servers; "" = the system's resolver.
	DNSServer string
	// Bootstrap marks the one node that may form a new cluster (a
	// StatefulSet pod whose name ends in -0 is one by default).
	Bootstrap bool
	Replicas  int
	// AckReplicas is how many nodes (this one included) must hold an
	// upload's source, fsynced and verified, before the upload is
	// answered 201; fewer is 503 and no job. 0: the replication factor,
	// capped by the nodes alive (so a lone node, or a cluster that lost
	// nodes, still takes uploads with fewer copies).
	AckReplicas int
	Voters      int
	Slots       int // tasks this node runs at once
	// TaskQueue is how many tasks the leader may assign this node beyond
	// its slots: it pulls a queued encode's input while its current tasks
	// run and starts one the moment a slot frees, so a slot does not idle
	// through a commit round trip between tasks (0: no pipelining).
	TaskQueue int
	// EncoderThreads is passed to every x264 encoder as -threads; 0 = one
	// share of the cores per slot (cores/slots, at least 1), so parallel
	// tasks do not oversubscribe the CPU with x264's own frame threads.
	EncoderThreads int
	// APITokenFile holds the bearer tokens API calls need, reads included
	// (see PublicRead): one a line (several, so that they can be rotated),
	// blank lines and lines starting with # ignored. Empty = no token
	// required.
	APITokenFile string
	// PublicRead opens the API's reads to anyone although APITokenFile is
	// set: only state-changing calls need a token then.
	PublicRead bool
	// Playback is PlaybackPublic (files open to anyone with the job ID) or
	// PlaybackSigned (files need a signed, expiring URL or an API token).
	Playback string
	// PlaybackKeyFile holds the signing key (at least 16 bytes); empty =
	// derived from the cluster key, so that every node agrees.
	PlaybackKeyFile string
	// PlaybackTTL is how long the signed URLs in job JSON stay valid.
	PlaybackTTL time.Duration
	// MaxConcurrentUploads bounds the uploads this node takes at once
	// (429 with Retry-After beyond), and apart from them the URL sources
	// it fetches at once (ingest.go).
	MaxConcurrentUploads int
	// UploadTTL is how long an unfinished resumable (tus) upload is kept
	// after its last byte before it is deleted.
	UploadTTL time.Duration
	// ClusterKeyFile holds the cluster's secret. It never crosses the wire:
	// peers prove they hold it by a MAC bound to each TLS session (package
	// cluster/peerlink), and the keys of every purpose (raft, internal,
	// playback, webhook) are derived from it with HKDF.
	ClusterKeyFile string
	// TLSCertFile, TLSKeyFile and TLSCAFile (all three or none) are
	// operator certificates for raft and the internal API (cert-manager's
	// tls.crt, tls.key, ca.crt): peers then present them and verify each
	// other's chain against the CA. Without them peer TLS uses ephemeral
	// self-signed certificates and the cluster key authenticates.
	TLSCertFile string
	TLSKeyFile  string
	TLSCAFile   string
	// RaftKeyFile and InternalKeyFile, when set, hold the raft and internal
	// ports' keys (at least 16 bytes each) instead of the ones derived from
	// the cluster key: to rotate or scope one without the others. With
	// both, a node authenticates peers without a cluster key.
	RaftKeyFile     string
	InternalKeyFile string
	// GossipKeyFile holds a 16, 24 or 32 byte key (raw or base64) that
	// encrypts gossip.
	GossipKeyFile string
	// Insecure lets a node whose peer ports other machines can reach (it
	// joins peers, or binds a non-loopback address) run without
	// ClusterKeyFile or GossipKeyFile; without it such a node refuses to
	// start. With it, the node logs at ERROR level what is open and
	// GET /api/v1/cluster lists it.
	Insecure bool
	// MaxUploadBytes bounds an upload; a node caps it at start to what its
	// data volume could ever hold (its size less DiskReserve and
	// RaftReserve), and says so in the log.
	MaxUploadBytes int64
	// DiskReserve is the data volume's space that media never take (room
	// for running tasks' work files); RaftReserve is kept free on top of
	// it for the raft log and snapshots. An upload, a blob copy or a task
	// is admitted only while both stay free (see node/disk).
	DiskReserve disk.Reserve
	RaftReserve int64
	// Preset is the preset (by its x264 name) new jobs submitted here are
	// encoded with; x265 uses the name, SVT-AV1 a mapped number.
	Preset  string
	FFmpeg  string
	FFprobe string
	Version string
	// Transcoder, when set, is used instead of ffmpeg. Only benchmark
	// builds set it: cmd/gosty/synthetic.go (build tag gostysynthetic)
	// puts the synthetic encoder here; production builds leave it nil.
	Transcoder Transcoder
	// DebugAddr and DebugHandler, when both are set, serve DebugHandler on
	// DebugAddr for as long as the node runs (its listener opened in New,
	// its server started and stopped with Run's group). Only benchmark
	// builds set them (net/http/pprof, to profile the leader under load).
	DebugAddr    string
	DebugHandler http.Handler
	Logger       *slog.Logger

	// UnconfinedMedia runs ffmpeg and ffprobe without Landlock and the
	// seccomp socket filter (transcoder/confine); --confine-media=false,
	// for debugging. The zero value confines them.
	UnconfinedMedia bool

	// Scaler serves POST /api/v1/cluster/scale. nil = the StatefulSet this
	// node's pod belongs to when it runs in Kubernetes (see node/kube),
	// else none (the endpoint answers 501).
	Scaler httpapi.Scaler

	// WebhookAllow is where job callbacks may go: comma-separated
	// host[:port], ip[:port] or CIDR entries; empty = callbacks refused.
	WebhookAllow string
	// IngestAllow is where URL sources may be fetched from (ingest.go):
	// comma-separated host[:port], ip[:port] or CIDR, checked at every
	// dial (package egress); empty turns URL ingest off.
	IngestAllow string
	// IngestS3 lists the buckets s3://bucket/key sources may be read from
	// with the S3 settings below: comma-separated bucket names, "*" for
	// any the credentials reach; empty: s3:// sources refused
	// (ingest_s3.go).
	IngestS3 string
	// Watch is a prefix (s3://bucket/inbox/) whose new objects become
	// jobs, WatchOptions their options when no sidecar <key>.json has
	// them, WatchInterval the leader's poll period (0: 10 s, 500 ms with
	// Fast). See watch.go.
	Watch         string
	WatchOptions  string
	WatchInterval time.Duration
	// WebhookKeyFile holds the webhook HMAC key; default: derived from the
	// cluster key.
	WebhookKeyFile string

	// Publish is the publish target (s3://bucket/prefix/) of jobs
	// submitted here without a publish option ("": none); PublishExpire
	// the default of their publish_expire option. S3 says which
	// S3-compatible service the leader uploads to (credentials come from
	// the standard AWS chain, never from here); PublishAttempts bounds the
	// attempts per job (0: 6). See publish.go.
	Publish         string
	PublishExpire   bool
	S3              objstore.Config
	PublishAttempts int

	// Retention is the TTL of jobs submitted here without a ttl option
	// (0: kept forever).
	Retention time.Duration
	// HistoryJobs and HistoryAge bound how many finished jobs stay listed
	// and for how long after they finish (0: no bound of that kind); beyond
	// them the leader removes the oldest (job.forget), media and all.
	HistoryJobs int
	HistoryAge  time.Duration
	// HistoryInterval is how often the leader looks for jobs beyond the
	// history (0: a minute; tests shorten it).
	HistoryInterval time.Duration
	// ScrubInterval is how often every local blob is hashed again (0: never)
	// and ScrubRate how many bytes a second that may read.
	ScrubInterval time.Duration
	ScrubRate     int64

	// GCGrace is how old an unreferenced blob must be before it is
	// collected; GCInterval how often the collector runs (tests shorten
	// both).
	GCGrace    time.Duration
	GCInterval time.Duration
	// Fast shortens gossip failure detection and raft timeouts, for
	// loopback clusters and tests.
	Fast bool
	// Stabilize is how long a non-voter must be alive before promotion.
	Stabilize time.Duration
	// DeadServerTimeout is how long a raft server's node may be dead or
	// suspect in gossip (not leaving) before the leader removes it from
	// raft, a voter to be replaced by a healthy non-voter; 0: never. A
	// removed node that comes back joins again as a non-voter.
	DeadServerTimeout time.Duration
	// DrainTimeout bounds how long a stopping node waits for its running
	// tasks before handing them back; the whole drain (tasks, blob
	// hand-off, leadership transfer) must fit in Kubernetes'
	// terminationGracePeriodSeconds.
	DrainTimeout time.Duration
}

// The history kept by default: a hundred thousand finished jobs, for 90
// days after they finish.
const (
	DefaultHistoryJobs = 100_000
	DefaultHistoryAge  = 90 * 24 * time.Hour
)

// ParseHistory reads --history: comma-separated bounds, a job count ("100000")
// and/or an age ("90d", "2160h"); "0" or "none" means no bound. It returns
// the count and the age (0 for a bound not given).
func ParseHistory(s string) (jobs int, age time.Duration, err error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" || s == "none" {
		return 0, 0, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if n, err := strconv.Atoi(part); err == nil && n > 0 {
			jobs = n
			continue
		}
		if d, ok := strings.CutSuffix(part, "d"); ok {
			if n, err := strconv.Atoi(d); err == nil && n > 0 {
				age = time.Duration(n) * 24 * time.Hour
				continue
			}
		}
		if d, err := time.ParseDuration(part); err == nil && d > 0 {
			age = d
			continue
		}
		return 0, 0, fmt.Errorf("history %q: want a job count, an age (90d, 2160h) or both, comma-separated", s)
	}
	return jobs, age, nil
}

// DefaultConfig returns a one-node configuration with data in ./data, the
// API on :8080 and the peer ports on loopback (BindAddr "": see BindIP).
func DefaultConfig() Config {
	host, _ := os.Hostname()
	if host == "" {
		host = "gosty"
	}
	return Config{
		Name:              host,
		DataDir:           "./data",
		HTTPAddr:          ":8080",
		RaftPort:          DefaultRaftPort,
		GossipPort:        DefaultGossipPort,
		InternalPort:      DefaultInternalPort,
		Stabilize:         10 * time.Second,
		DrainTimeout:      20 * time.Second,
		DeadServerTimeout: 5 * time.Minute,
		Replicas:          2,
		Voters:            3,
		HistoryJobs:       DefaultHistoryJobs,
		HistoryAge:        DefaultHistoryAge,
		ScrubInterval:     24 * time.Hour,
		ScrubRate:         32 << 20,
		Slots:             defaultSlots(),
		TaskQueue:         1,
		MaxUploadBytes:    64 << 30,
		DiskReserve:       mustReserve(disk.DefaultReserve),
		RaftReserve:       disk.DefaultRaftReserve,
		Preset:            "veryfast",
		Version:           "dev",
		GCGrace:           30 * time.Second,
		GCInterval:        10 * time.Second,
		Playback:          PlaybackPublic,
		PlaybackTTL:       6 * time.Hour,

		MaxConcurrentUploads: 4,
		UploadTTL:            24 * time.Hour,
	}
}

func mustReserve(s string) disk.Reserve {
	r, err := disk.ParseReserve(s)
	if err != nil {
		panic(err)
	}
	return r
}

// defaultSlots runs one task per core: each x264 run is itself threaded, so
// more slots only add contention, and fewer leave cores idle while a task
// waits on I/O.
func defaultSlots() int {
	n := cores()
	if n > 16 {
		n = 16
	}
	return max(n, 1)
}

// cores is the CPU this process may use: GOMAXPROCS, which Go sets from
// the cgroup CPU limit in a container (a pod's limits.cpu) where NumCPU
// would count every core of the host.
func cores() int { return max(runtime.GOMAXPROCS(0), 1) }

var x264Presets = []string{"ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"}

// advertiseIP is the address peers (and, in a one-node cluster, the node
// itself) dial: the configured one, the bind address if it is specific,
// loopback for a lone node, else the host's first non-loopback IPv4 (in a
// pod, set --advertise-addr from the downward API's POD_IP instead).
func (c *Config) advertiseIP() string {
	if c.AdvertiseAddr != "" {
		return c.AdvertiseAddr
	}
	if ip := net.ParseIP(c.BindIP()); ip != nil && !ip.IsUnspecified() {
		return c.BindIP()
	}
	if len(c.Join) == 0 {
		return "127.0.0.1"
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
				return n.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

func (c *Config) bindHostPort(port int) string {
	return net.JoinHostPort(c.BindIP(), strconv.Itoa(port))
}

func (c *Config) raftAdvertise() string {
	return net.JoinHostPort(c.advertiseIP(), strconv.Itoa(c.RaftPort))
}

// history is the --history bound as the leader's retention loop takes it.
func (c Config) history() retention.History {
	return retention.History{Jobs: c.HistoryJobs, Age: c.HistoryAge, Interval: c.HistoryInterval}
}
