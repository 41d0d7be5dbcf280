package node

// Checking a Config (Validate) and what it exposes: the bind address a
// node listens on, whether other machines can reach it, and which keys it
// then needs.

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/gosty/gosty/node/egress"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/objstore"
)

// Validate checks the configuration. It is a flat list of checks, one per
// field or pair of fields, each with the message a person acts on; it
// collects them all so that one start shows every mistake: splitting it
// would only scatter the list.
func (c *Config) Validate() error {
	var errs []string
	if c.Name == "" || strings.ContainsAny(c.Name, "/\\ \t\n") || len(c.Name) > 128 {
		errs = append(errs, fmt.Sprintf("name %q must be 1-128 characters without spaces or slashes", c.Name))
	}
	if c.DataDir == "" {
		errs = append(errs, "data dir is required")
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Sprintf("http addr %q: %v", c.HTTPAddr, err))
	}
	if c.MetricsAddr != "" {
		if _, port, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			errs = append(errs, fmt.Sprintf("metrics addr %q: %v", c.MetricsAddr, err))
		} else if c.MetricsAddr == c.HTTPAddr && port != "0" {
			errs = append(errs, fmt.Sprintf("metrics addr %q is the http addr: leave it empty to serve /metrics there", c.MetricsAddr))
		}
	}
	if c.BindAddr != "" && net.ParseIP(c.BindAddr) == nil {
		errs = append(errs, fmt.Sprintf("bind addr %q is not an IP address", c.BindAddr))
	} else if missing := c.missingKeys(); len(missing) > 0 && !c.Insecure {
		them := "them"
		if len(missing) == 1 {
			them = "it"
		}
		errs = append(errs, fmt.Sprintf("%s, so peer traffic must be authenticated: give %s (without %s anyone who reaches the gossip, raft and internal ports can join the cluster, append to the job log and read every blob), or --insecure to run without %[3]s",
			c.exposure(), strings.Join(missing, " and "), them))
	}
	if set := btoi(c.TLSCertFile != "") + btoi(c.TLSKeyFile != "") + btoi(c.TLSCAFile != ""); set != 0 && set != 3 {
		errs = append(errs, "--tls-cert, --tls-key and --tls-ca go together: give all three or none")
	}
	if c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil {
		errs = append(errs, fmt.Sprintf("advertise addr %q is not an IP address", c.AdvertiseAddr))
	}
	for name, p := range map[string]int{"raft": c.RaftPort, "gossip": c.GossipPort, "internal": c.InternalPort} {
		if p < 0 || p > 65535 { // 0 = any free port (tests)
			errs = append(errs, fmt.Sprintf("%s port %d out of range", name, p))
		}
	}
	if c.DNSServer != "" {
		if _, err := cluster.DNSResolver(c.DNSServer); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if c.Replicas < 1 {
		errs = append(errs, "replicas must be at least 1")
	}
	if c.AckReplicas < 0 || c.AckReplicas > max(c.Replicas, 1) {
		errs = append(errs, fmt.Sprintf("ack replicas must be 1..replicas (%d), or 0 for the replication factor capped by the nodes alive; got %d",
			c.Replicas, c.AckReplicas))
	}
	if c.Voters < 1 || c.Voters%2 == 0 {
		errs = append(errs, fmt.Sprintf("voters must be odd and positive, got %d", c.Voters))
	}
	if c.DeadServerTimeout < 0 {
		errs = append(errs, fmt.Sprintf("dead server timeout must not be negative, got %s", c.DeadServerTimeout))
	}
	if c.Slots < 1 || c.Slots > 256 {
		errs = append(errs, fmt.Sprintf("slots must be 1..256, got %d", c.Slots))
	}
	if c.TaskQueue < 0 || c.TaskQueue > 64 {
		errs = append(errs, fmt.Sprintf("task queue must be 0..64, got %d", c.TaskQueue))
	}
	if c.MaxUploadBytes <= 0 {
		errs = append(errs, "max upload bytes must be positive")
	}
	if c.DiskReserve.Bytes < 0 || c.DiskReserve.Percent < 0 || c.DiskReserve.Percent >= 100 || c.RaftReserve < 0 {
		errs = append(errs, "disk and raft reserves must not be negative (and a percentage below 100)")
	}
	if c.UploadTTL < time.Minute {
		errs = append(errs, fmt.Sprintf("upload TTL must be at least 1m, got %s", c.UploadTTL))
	}
	if c.MaxConcurrentUploads < 1 || c.MaxConcurrentUploads > 1024 {
		errs = append(errs, fmt.Sprintf("max concurrent uploads must be 1..1024, got %d", c.MaxConcurrentUploads))
	}
	switch c.Playback {
	case PlaybackPublic:
	case PlaybackSigned:
		if c.PlaybackTTL < time.Minute {
			errs = append(errs, fmt.Sprintf("playback TTL %v is shorter than a minute", c.PlaybackTTL))
		}
		if c.PlaybackKeyFile == "" && c.ClusterKeyFile == "" {
			errs = append(errs, "signed playback needs a playback key file or a cluster key file to derive the key from")
		}
	default:
		errs = append(errs, fmt.Sprintf("playback %q must be %s or %s", c.Playback, PlaybackPublic, PlaybackSigned))
	}
	if c.HistoryJobs < 0 || c.HistoryAge < 0 {
		errs = append(errs, "history bounds must not be negative")
	}
	if c.ScrubInterval < 0 || c.ScrubRate < 0 {
		errs = append(errs, "scrub interval and rate must not be negative")
	}
	if c.Retention < 0 || c.GCGrace < 0 || c.GCInterval <= 0 {
		errs = append(errs, "retention and gc grace must not be negative, gc interval must be positive")
	}
	if c.Publish != "" {
		if _, err := objstore.ParseTarget(c.Publish); err != nil {
			errs = append(errs, "--publish: "+err.Error())
		}
	}
	if c.PublishAttempts < 0 {
		errs = append(errs, "publish attempts must not be negative")
	}
	if a, err := egress.Parse("--webhook-allow", c.WebhookAllow); err != nil {
		errs = append(errs, err.Error())
	} else if !a.Empty() && c.WebhookKeyFile == "" && c.ClusterKeyFile == "" {
		errs = append(errs, "webhooks need a webhook key file or a cluster key file to derive the signing key from")
	}
	if _, err := egress.Parse("--ingest-allow", c.IngestAllow); err != nil {
		errs = append(errs, err.Error())
	}
	if _, err := parseIngestS3(c.IngestS3); err != nil {
		errs = append(errs, err.Error())
	}
	if c.Watch != "" {
		if _, err := objstore.ParseTarget(c.Watch); err != nil {
			errs = append(errs, "--watch: "+err.Error())
		}
	}
	if _, err := parseJobOptions([]byte(c.WatchOptions)); err != nil {
		errs = append(errs, "--watch-options: "+err.Error())
	}
	if c.WatchInterval < 0 {
		errs = append(errs, "--watch-interval must not be negative")
	}
	ok := false
	for _, p := range x264Presets {
		ok = ok || p == c.Preset
	}
	if !ok {
		errs = append(errs, fmt.Sprintf("preset %q is not an x264 preset (%s)", c.Preset, strings.Join(x264Presets, ", ")))
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid config: %s", strings.Join(errs, "; "))
	}
	return nil
}

// BindIP is the IP gossip, raft and the internal API listen on: BindAddr,
// or by default loopback for a lone node and every interface for one that
// joins peers.
func (c *Config) BindIP() string {
	switch {
	case c.BindAddr != "":
		return c.BindAddr
	case len(c.Join) > 0:
		return "0.0.0.0"
	default:
		return "127.0.0.1"
	}
}

// Exposed says whether other machines may reach the peer ports: the node
// joins peers (a --join that names only this node too: the cluster may
// grow, and the ports listen beyond loopback by default), or it binds a
// non-loopback address.
func (c *Config) Exposed() bool {
	ip := net.ParseIP(c.BindIP())
	return len(c.Join) > 0 || ip == nil || !ip.IsLoopback()
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// exposure says why the peer ports are exposed, for messages.
func (c *Config) exposure() string {
	if len(c.Join) > 0 {
		return "the node joins peers (--join)"
	}
	return fmt.Sprintf("the peer ports listen on %s, beyond loopback (--bind-addr)", c.BindIP())
}

// missingKeys names the key flags an exposed node lacks (nil for a node
// only this machine can reach).
func (c *Config) missingKeys() []string {
	if !c.Exposed() {
		return nil
	}
	var out []string
	// Operator certificates (--tls-cert/--tls-key/--tls-ca: all three,
	// checked in Validate), or both port keys as files, authenticate peers
	// without a cluster key.
	if c.ClusterKeyFile == "" && c.TLSCertFile == "" && (c.RaftKeyFile == "" || c.InternalKeyFile == "") {
		out = append(out, "--cluster-key-file")
	}
	if c.GossipKeyFile == "" {
		out = append(out, "--gossip-key-file")
	}
	return out
}
