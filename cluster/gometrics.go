package cluster

import (
	"fmt"
	"strings"
	"sync"

	metrics "github.com/hashicorp/go-metrics/compat"
	"github.com/prometheus/client_golang/prometheus"
)

// InternalMetrics installs the bridge as the process's go-metrics global
// (once) and returns the collector of its metrics. Register it on a node's
// registry: reg.MustRegister(cluster.InternalMetrics()).
//
// Raft (v1.7.3), raft-boltdb (v2.3.1) and memberlist (v0.6.0) report their
// internals through go-metrics (github.com/hashicorp/go-metrics/compat,
// which without build tags forwards to github.com/armon/go-metrics's
// process-wide global). The bridge is that global's sink: it turns an
// explicit table of known keys into Prometheus collectors and drops every
// other key.
//
// Why a table and not a generic translation: go-metrics names are camelCase
// ("raft.commitTime"), timings arrive as float32 milliseconds, and raft
// still emits legacy keys that embed a peer's server ID
// (raft.replication.appendEntries.rpc.<peerID>, .heartbeat.<peerID>). A
// generic bridge would export one metric name per peer ever seen, which is
// unbounded and fails `promtool check metrics`. The table keeps names
// snake_case with gosty_ and unit suffixes, timings in seconds, and labels
// bounded: no label carries a peer ID, node name or address, and every
// label value is fixed here, so all series exist (at zero) before the first
// event. Labels the libraries attach (raft's peer_id, memberlist's
// Config.MetricLabels) are ignored.
//
// The table, go-metrics key → metric (type). Timings (MeasureSince, in ms)
// become seconds; every key was checked against the library versions above.
//
//	raft.commitTime                        → gosty_raft_commit_duration_seconds (histogram)
//	raft.fsm.apply                         → gosty_raft_fsm_apply_duration_seconds (histogram)
//	raft.replication.appendEntries.rpc     → gosty_raft_append_entries_rpc_duration_seconds (histogram)
//	raft.replication.heartbeat             → gosty_raft_heartbeat_rpc_duration_seconds (histogram)
//	raft.leader.dispatchLog                → gosty_raft_leader_dispatch_log_duration_seconds (histogram)
//	raft.snapshot.create                   → gosty_raft_snapshot_create_duration_seconds (histogram)
//	raft.snapshot.persist                  → gosty_raft_snapshot_persist_duration_seconds (histogram)
//	raft.boltdb.storeLogs                  → gosty_raft_boltdb_store_logs_duration_seconds (histogram)
//	raft.state.{leader,follower,candidate} → gosty_raft_state_transitions_total{to} (counter)
//	raft.transition.heartbeat_timeout      → gosty_raft_heartbeat_timeouts_total (counter)
//	raft.transition.leader_lease_timeout   → gosty_raft_leader_lease_timeouts_total (counter)
//	raft.thread.{main,fsm}.saturation      → gosty_raft_thread_saturation_ratio{thread} (gauge; a 0..1 sample, not a timing)
//	memberlist.probeNode                   → gosty_gossip_probe_duration_seconds (histogram)
//	memberlist.gossip                      → gosty_gossip_round_duration_seconds (histogram)
//	memberlist.msg.{alive,suspect,dead}    → gosty_gossip_messages_total{type} (counter)
//	memberlist.{udp,tcp}.sent              → gosty_gossip_sent_bytes_total{transport} (counter)
//	memberlist.udp.received                → gosty_gossip_received_bytes_total{transport="udp"} (counter)
//	memberlist.health.score                → gosty_gossip_health_score (gauge)
//
// Raft emits the two raft.replication keys with a peer_id label, dropped
// here, and again under legacy per-peer keys, which match nothing.
// memberlist v0.6.0 counts no TCP bytes received, so received has only
// transport="udp".
//
// go-metrics has one global per process, so there is one bridge per
// process too, and the same collector may be registered on several
// registries. In a test process running several nodes, every node's
// /metrics therefore shows the process-wide totals (and the last gauge
// value any node set); production runs one node per process, where the
// numbers are that node's own.
func InternalMetrics() prometheus.Collector {
	internalOnce.Do(func() {
		internal = newMetricsBridge()
		if _, err := metrics.NewGlobal(goMetricsConfig(), internal); err != nil {
			// armon/go-metrics never fails here; an error would be a
			// library change, not a runtime condition.
			panic(fmt.Sprintf("cluster: installing the go-metrics bridge: %v", err))
		}
	})
	return internal
}

var (
	internalOnce sync.Once
	internal     *metricsBridge
)

// goMetricsConfig makes go-metrics hand the sink the libraries' keys
// verbatim: no service name or hostname prefixed to keys, no host or
// service labels added, and no runtime-stats goroutine (the Go collector
// on the node's registry covers that). Timers stay in milliseconds.
func goMetricsConfig() *metrics.Config {
	c := metrics.DefaultConfig("")
	c.ServiceName = ""
	c.HostName = ""
	c.EnableHostname = false
	c.EnableHostnameLabel = false
	c.EnableServiceLabel = false
	c.EnableRuntimeMetrics = false
	c.EnableTypePrefix = false
	return c
}

// Bucket layouts, in seconds.
var (
	// Log commit, FSM apply, disk writes and RPCs between nodes: sub-ms on
	// a quiet LAN, seconds when a disk or the network stalls.
	raftBuckets = prometheus.ExponentialBucketsRange(0.0005, 5, 15)
	// Snapshots write the whole FSM; it is small (metadata only).
	snapshotBuckets = prometheus.ExponentialBucketsRange(0.001, 30, 14)
	// A probe waits up to ProbeTimeout for an ack, then for indirect acks.
	probeBuckets = prometheus.ExponentialBucketsRange(0.001, 5, 14)
	// A gossip round only hands packets to the transport.
	gossipRoundBuckets = prometheus.ExponentialBucketsRange(0.0001, 1, 13)
)

// timings are the table's histogram rows: go-metrics key, metric, help
// and buckets.
var timings = []struct {
	key, name, help string
	buckets         []float64
}{
	{"raft.commitTime", "gosty_raft_commit_duration_seconds",
		"Time from the leader dispatching a raft log entry to its commit (leader only).", raftBuckets},
	{"raft.fsm.apply", "gosty_raft_fsm_apply_duration_seconds",
		"Time to apply one committed raft log entry to the FSM.", raftBuckets},
	{"raft.replication.appendEntries.rpc", "gosty_raft_append_entries_rpc_duration_seconds",
		"Duration of AppendEntries RPCs from the leader to its followers (all peers together).", raftBuckets},
	{"raft.replication.heartbeat", "gosty_raft_heartbeat_rpc_duration_seconds",
		"Duration of successful heartbeat RPCs from the leader to its followers (all peers together).", raftBuckets},
	{"raft.leader.dispatchLog", "gosty_raft_leader_dispatch_log_duration_seconds",
		"Time for the leader to write a batch of new log entries to disk and hand them to replication.", raftBuckets},
	{"raft.snapshot.create", "gosty_raft_snapshot_create_duration_seconds",
		"Time to create a raft snapshot in the snapshot store.", snapshotBuckets},
	{"raft.snapshot.persist", "gosty_raft_snapshot_persist_duration_seconds",
		"Time to write the FSM into a raft snapshot.", snapshotBuckets},
	{"raft.boltdb.storeLogs", "gosty_raft_boltdb_store_logs_duration_seconds",
		"Time to write a batch of raft log entries to BoltDB (including fsync).", raftBuckets},
	{"memberlist.probeNode", "gosty_gossip_probe_duration_seconds",
		"Duration of one gossip failure-detection probe of a member, including indirect probes.", probeBuckets},
	{"memberlist.gossip", "gosty_gossip_round_duration_seconds",
		"Duration of one gossip round (sending queued broadcasts to a few members).", gossipRoundBuckets},
}

// metricsBridge is the go-metrics sink (armon's MetricSink) and the
// Prometheus collector of what it translates. Its routes are keyed by the
// dot-joined go-metrics key, one map per kind of call, so a key only
// counts when it arrives the way the table expects. The maps are written
// once in newMetricsBridge and only read afterwards, so the sink needs no
// lock (the collectors have their own).
type metricsBridge struct {
	samples    map[string]func(float32) // AddSample, MeasureSince
	counters   map[string]func(float32) // IncrCounter
	gauges     map[string]func(float32) // SetGauge
	collectors []prometheus.Collector
}

var _ metrics.MetricSink = (*metricsBridge)(nil)
var _ prometheus.Collector = (*metricsBridge)(nil)

func newMetricsBridge() *metricsBridge {
	b := &metricsBridge{
		samples:  map[string]func(float32){},
		counters: map[string]func(float32){},
		gauges:   map[string]func(float32){},
	}

	for _, t := range timings {
		b.samples[t.key] = b.timing(t.name, t.help, t.buckets)
	}

	// raft
	b.counterVec("raft.state.*", "gosty_raft_state_transitions_total",
		"Times this process's raft entered a state, by state entered.", "to", "leader", "follower", "candidate")
	b.counters["raft.transition.heartbeat_timeout"] = b.counter("gosty_raft_heartbeat_timeouts_total",
		"Times a follower heard nothing from a leader within the heartbeat timeout and started an election.")
	b.counters["raft.transition.leader_lease_timeout"] = b.counter("gosty_raft_leader_lease_timeouts_total",
		"Times a leader lost contact with a quorum within the lease timeout and stepped down.")
	// Saturation arrives as a sample (at most once a second) but is a
	// fraction of time busy, not a timing: it is kept as a gauge, unconverted.
	b.gaugeVec(b.samples, "raft.thread.*.saturation", "gosty_raft_thread_saturation_ratio",
		"Fraction of time raft's main or FSM goroutine was busy over its last report interval (0..1).", "thread", "main", "fsm")

	// memberlist
	b.counterVec("memberlist.msg.*", "gosty_gossip_messages_total",
		"Gossip alive, suspect and dead messages processed, by type.", "type", "alive", "suspect", "dead")
	b.counterVec("memberlist.*.sent", "gosty_gossip_sent_bytes_total",
		"Bytes of gossip sent, by transport (udp packets, tcp streams).", "transport", "udp", "tcp")
	b.counterVec("memberlist.*.received", "gosty_gossip_received_bytes_total",
		"Bytes of gossip received, by transport (memberlist counts udp only).", "transport", "udp")
	b.gauges["memberlist.health.score"] = b.gauge("gosty_gossip_health_score",
		"Memberlist's local health awareness score: 0 is healthy, higher means this node is slow to answer probes.")

	return b
}

// timing returns a route observing a millisecond sample, in seconds, on a
// new histogram.
func (b *metricsBridge) timing(name, help string, buckets []float64) func(float32) {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
	b.collectors = append(b.collectors, h)
	return func(ms float32) { h.Observe(float64(ms) / 1000) }
}

func (b *metricsBridge) counter(name, help string) func(float32) {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	b.collectors = append(b.collectors, c)
	return addTo(c)
}

// counterVec creates a counter vector with its only label preset to
// values, and routes key, its "*" replaced by a value, to that value's
// counter.
func (b *metricsBridge) counterVec(key, name, help, label string, values ...string) {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{label})
	b.collectors = append(b.collectors, v)
	for _, val := range values {
		b.counters[strings.Replace(key, "*", val, 1)] = addTo(v.WithLabelValues(val))
	}
}

func (b *metricsBridge) gauge(name, help string) func(float32) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	b.collectors = append(b.collectors, g)
	return func(val float32) { g.Set(float64(val)) }
}

// gaugeVec is counterVec for gauges; the routes go into routes, as the
// kind of call a gauge arrives by varies.
func (b *metricsBridge) gaugeVec(routes map[string]func(float32), key, name, help, label string, values ...string) {
	v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, []string{label})
	b.collectors = append(b.collectors, v)
	for _, val := range values {
		g := v.WithLabelValues(val)
		routes[strings.Replace(key, "*", val, 1)] = func(x float32) { g.Set(float64(x)) }
	}
}

// addTo adds positive increments only: Counter.Add panics on a negative
// one, and a panic here would happen on raft's or memberlist's goroutine.
func addTo(c prometheus.Counter) func(float32) {
	return func(val float32) {
		if val > 0 {
			c.Add(float64(val))
		}
	}
}

func route(routes map[string]func(float32), key []string, val float32) {
	if f, ok := routes[strings.Join(key, ".")]; ok {
		f(val)
	}
}

// The sink. Labelled and unlabelled calls take the same route: the table
// maps no library label (see the file comment).

func (b *metricsBridge) SetGauge(key []string, val float32) { route(b.gauges, key, val) }
func (b *metricsBridge) SetGaugeWithLabels(key []string, val float32, _ []metrics.Label) {
	route(b.gauges, key, val)
}
func (b *metricsBridge) IncrCounter(key []string, val float32) { route(b.counters, key, val) }
func (b *metricsBridge) IncrCounterWithLabels(key []string, val float32, _ []metrics.Label) {
	route(b.counters, key, val)
}
func (b *metricsBridge) AddSample(key []string, val float32) { route(b.samples, key, val) }
func (b *metricsBridge) AddSampleWithLabels(key []string, val float32, _ []metrics.Label) {
	route(b.samples, key, val)
}

// EmitKey carries one-off key/value events; none of them is in the table.
func (b *metricsBridge) EmitKey([]string, float32) {}

// The collector: it delegates to the histograms, counters and gauges the
// table created, so registries see real descriptors and can check names.

func (b *metricsBridge) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range b.collectors {
		c.Describe(ch)
	}
}

func (b *metricsBridge) Collect(ch chan<- prometheus.Metric) {
	for _, c := range b.collectors {
		c.Collect(ch)
	}
}
