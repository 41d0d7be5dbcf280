package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/gosty/gosty/node"
	"github.com/gosty/gosty/node/disk"
)

// runNode is `gosty node`: its flags (each with its environment variable,
// node.Config's fields one by one, which is why it is long) and the node's
// run until a signal.
func runNode(ctx context.Context, args []string) error {
	cfg := node.DefaultConfig()
	fs := flag.NewFlagSet("gosty node", flag.ContinueOnError)
	var join, logLevel string
	fs.StringVar(&cfg.Name, "name", cfg.Name, "node name (default: host name, the pod name in a StatefulSet)")
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "where the job log and media live")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", cfg.HTTPAddr, "public API and UI address (and /metrics without --metrics-addr)")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "address that serves /metrics alone, which then leaves --http-addr (default: /metrics on --http-addr)")
	fs.StringVar(&cfg.BindAddr, "bind-addr", cfg.BindAddr, "IP for gossip, raft and internal traffic (default: 127.0.0.1 without --join, 0.0.0.0 with it)")
	fs.StringVar(&cfg.AdvertiseAddr, "advertise-addr", cfg.AdvertiseAddr, "IP peers reach this node on (default: bind address, or loopback for a lone node)")
	fs.IntVar(&cfg.RaftPort, "raft-port", cfg.RaftPort, "raft port")
	fs.IntVar(&cfg.GossipPort, "gossip-port", cfg.GossipPort, "gossip port (TCP and UDP)")
	fs.IntVar(&cfg.InternalPort, "internal-port", cfg.InternalPort, "internal (peer) HTTP port")
	fs.StringVar(&cfg.ClusterKeyFile, "cluster-key-file", "", "file with the cluster secret: peers prove they hold it on raft and internal TLS connections (it never crosses the wire); playback and webhook keys derive from it")
	fs.StringVar(&cfg.TLSCertFile, "tls-cert", "", "PEM certificate for raft and internal TLS (with --tls-key and --tls-ca: peers verify each other's certificates against the CA; default: ephemeral self-signed, authenticated by the cluster key)")
	fs.StringVar(&cfg.TLSKeyFile, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&cfg.TLSCAFile, "tls-ca", "", "PEM CA bundle peers' certificates must chain to")
	fs.StringVar(&cfg.RaftKeyFile, "raft-key-file", "", "file with the raft port's key (at least 16 bytes; default: derived from the cluster key)")
	fs.StringVar(&cfg.InternalKeyFile, "internal-key-file", "", "file with the internal port's key (at least 16 bytes; default: derived from the cluster key)")
	fs.StringVar(&cfg.GossipKeyFile, "gossip-key-file", "", "file with a 16/24/32-byte gossip encryption key (raw or base64)")
	fs.BoolVar(&cfg.Insecure, "insecure", false, "run a node that joins peers (or binds beyond loopback) without --cluster-key-file or --gossip-key-file: its peer traffic is then open to anyone who reaches it (logged at ERROR level)")
	fs.BoolVar(&cfg.Fast, "fast", cfg.Fast, "quick failure detection (loopback clusters and tests)")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", cfg.DrainTimeout, "on SIGTERM, how long to let running tasks finish before handing them back")
	fs.DurationVar(&cfg.Stabilize, "stabilize", cfg.Stabilize, "how long a new node must be alive before it is promoted to voter")
	fs.DurationVar(&cfg.DeadServerTimeout, "dead-server-timeout", cfg.DeadServerTimeout, "how long a node may be dead before the leader removes it from raft, replacing a voter with a healthy non-voter (0: never)")
	fs.StringVar(&join, "join", "", "comma-separated host[:port] or DNS names of peers")
	fs.StringVar(&cfg.DNSServer, "dns-server", "", "DNS server (host[:port]) that resolves the --join names (default: the system's resolver)")
	fs.BoolVar(&cfg.Bootstrap, "bootstrap", cfg.Bootstrap, "may form a new cluster")
	fs.IntVar(&cfg.Replicas, "replicas", cfg.Replicas, "copies kept of every source and output")
	fs.IntVar(&cfg.AckReplicas, "ack-replicas", cfg.AckReplicas, "nodes that must hold an upload (fsynced) before it is answered 201, 1..replicas (0: the replication factor, capped by the nodes alive)")
	fs.IntVar(&cfg.Voters, "voters", cfg.Voters, "raft voters the cluster aims for (odd)")
	fs.IntVar(&cfg.Slots, "slots", cfg.Slots, "tasks this node runs at once")
	fs.IntVar(&cfg.TaskQueue, "task-queue", cfg.TaskQueue, "tasks this node holds beyond its slots, pulling their input ahead (0: no pipelining)")
	fs.IntVar(&cfg.EncoderThreads, "encoder-threads", cfg.EncoderThreads, "x264 threads per encoder (0: cores/slots)")
	fs.StringVar(&cfg.APITokenFile, "api-token-file", "", "file with the bearer tokens API calls need, reads included unless --public-read (one a line)")
	fs.BoolVar(&cfg.PublicRead, "public-read", false, "with --api-token-file, let anyone read the API (jobs, events, cluster; files under public playback): only writes need a token")
	fs.Int64Var(&cfg.MaxUploadBytes, "max-upload-bytes", cfg.MaxUploadBytes, "largest accepted upload (capped at start to the data volume's size less the reserves)")
	diskReserve := fs.String("disk-reserve", disk.DefaultReserve, "free space on the data volume that media never take: a size (2GiB), a percentage (5%) or both, comma-separated (the smaller applies); uploads, blob copies and tasks that do not fit get 507 or wait")
	raftReserve := fs.String("raft-reserve", disk.FormatSize(disk.DefaultRaftReserve), "free space kept on top of --disk-reserve for the raft log and snapshots")
	fs.IntVar(&cfg.MaxConcurrentUploads, "max-concurrent-uploads", cfg.MaxConcurrentUploads, "uploads this node takes at once, and apart from them URL sources it fetches at once (429 beyond)")
	fs.DurationVar(&cfg.UploadTTL, "upload-ttl", cfg.UploadTTL, "how long an unfinished resumable upload is kept after its last byte")
	fs.StringVar(&cfg.Playback, "playback", cfg.Playback, "public (output files open to anyone with the job ID) or signed (files need a signed, expiring URL)")
	fs.StringVar(&cfg.PlaybackKeyFile, "playback-key-file", "", "file with the key playback URLs are signed with (default: derived from the cluster key)")
	fs.DurationVar(&cfg.PlaybackTTL, "playback-ttl", cfg.PlaybackTTL, "how long signed playback URLs in job JSON stay valid")
	fs.StringVar(&cfg.WebhookAllow, "webhook-allow", "", "comma-separated host[:port], ip[:port] or CIDR job callbacks may go to (empty: callback_url refused)")
	fs.StringVar(&cfg.IngestAllow, "ingest-allow", "", "comma-separated host[:port], ip[:port] or CIDR URL sources may be fetched from, checked at every connection and redirect; loopback, link-local and private addresses only when listed from inside their range (empty: URL ingest off)")
	fs.StringVar(&cfg.WebhookKeyFile, "webhook-key-file", "", "file with the HMAC key webhook deliveries are signed with (default: derived from the cluster key)")
	fs.StringVar(&cfg.Publish, "publish", "", "upload the files of jobs submitted here to this S3 target once done, s3://bucket/prefix/ (a job's publish option overrides it; empty: none)")
	fs.BoolVar(&cfg.PublishExpire, "publish-expire", false, "default of the publish_expire option: delete a job's published copies when it expires")
	fs.StringVar(&cfg.Watch, "watch", "", "an S3 prefix, s3://bucket/inbox/, whose new objects become jobs once each (the leader polls it; options from a sidecar <key>.json or --watch-options; a finished job's object moves to inbox/done/ or inbox/failed/); read with the --s3-* settings")
	fs.StringVar(&cfg.WatchOptions, "watch-options", "", `job options (JSON) of watched objects without a sidecar, e.g. {"renditions":["720p"]}`)
	fs.DurationVar(&cfg.WatchInterval, "watch-interval", 0, "how often the leader lists the --watch prefix (default 10s)")
	fs.StringVar(&cfg.IngestS3, "ingest-s3", "", "comma-separated buckets s3://bucket/key sources may be read from with the --s3-* settings and the AWS credential chain (\"*\": any bucket the credentials reach; empty: s3:// sources off); not subject to --ingest-allow")
	fs.StringVar(&cfg.S3.Endpoint, "s3-endpoint", "", "URL of an S3-compatible service to publish to and read s3:// sources from (empty: AWS); credentials come from the standard AWS chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, web identity)")
	fs.StringVar(&cfg.S3.Region, "s3-region", "", "S3 region (empty: AWS_REGION, else us-east-1)")
	fs.BoolVar(&cfg.S3.PathStyle, "s3-path-style", false, "address buckets by path (http://endpoint/bucket/key), as most S3-compatible stores want")
	fs.DurationVar(&cfg.Retention, "retention", 0, "how long finished jobs' media are kept when a job gives no ttl (0: forever)")
	history := fs.String("history", "100000,90d", "how many finished jobs stay listed and for how long: a count, an age (90d, 2160h) or both, comma-separated; older ones are removed with their media (none: keep all)")
	fs.DurationVar(&cfg.ScrubInterval, "scrub-interval", cfg.ScrubInterval, "how often every stored blob is hashed again, to find damaged copies (0: never)")
	fs.Int64Var(&cfg.ScrubRate, "scrub-rate", cfg.ScrubRate, "bytes a second the scrub may read")
	fs.DurationVar(&cfg.GCGrace, "gc-grace", cfg.GCGrace, "how old an unreferenced blob must be before it is deleted")
	fs.DurationVar(&cfg.GCInterval, "gc-interval", cfg.GCInterval, "how often unreferenced blobs are looked for")
	fs.StringVar(&cfg.Preset, "preset", cfg.Preset, "speed preset (x264 names) for jobs submitted to this node; x265 takes the same names, SVT-AV1 a mapped number (veryfast = 10)")
	fs.StringVar(&cfg.FFmpeg, "ffmpeg", "", "ffmpeg binary (default: from PATH)")
	fs.StringVar(&cfg.FFprobe, "ffprobe", "", "ffprobe binary (default: from PATH)")
	confineMedia := fs.Bool("confine-media", true, "run ffmpeg and ffprobe under Landlock and a socket filter: they read only their inputs and the system's libraries, write only their work directory, open no socket (false: unconfined, for debugging)")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	var err error
	if err = fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("node: unexpected arguments %q", fs.Args())
	}
	if err := envDefaults(fs); err != nil {
		return err
	}
	if cfg.HistoryJobs, cfg.HistoryAge, err = node.ParseHistory(*history); err != nil {
		return fmt.Errorf("--history: %w", err)
	}
	if cfg.DiskReserve, err = disk.ParseReserve(*diskReserve); err != nil {
		return fmt.Errorf("--disk-reserve: %w", err)
	}
	if cfg.RaftReserve, err = disk.ParseSize(*raftReserve); err != nil {
		return fmt.Errorf("--raft-reserve: %w", err)
	}
	for _, j := range strings.Split(join, ",") {
		if j = strings.TrimSpace(j); j != "" {
			cfg.Join = append(cfg.Join, j)
		}
	}
	cfg.UnconfinedMedia = !*confineMedia
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg.Version = version
	if err := benchBuild(&cfg); err != nil {
		return err
	}

	n, err := node.New(cfg)
	if err != nil {
		return err
	}
	return n.Run(ctx)
}
