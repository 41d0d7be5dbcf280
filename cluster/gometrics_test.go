package cluster

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	metrics "github.com/hashicorp/go-metrics/compat"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// key splits a dotted go-metrics key into the slice the libraries pass.
func key(dotted string) []string { return strings.Split(dotted, ".") }

var peerLabel = []metrics.Label{{Name: "peer_id", Value: "0d5c4a8e-4b7f-4a53-9d64-2f0f4f1e9c11"}}

// seriesValues gathers g into name{labels} → value; a histogram gives
// name_count and name_sum.
func seriesValues(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, lp := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
			}
			id := mf.GetName()
			if len(ls) > 0 {
				id += "{" + strings.Join(ls, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[id] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[id] = m.GetGauge().GetValue()
			case m.Histogram != nil:
				out[mf.GetName()+"_count"] = float64(m.GetHistogram().GetSampleCount())
				out[mf.GetName()+"_sum"] = m.GetHistogram().GetSampleSum()
			default:
				t.Fatalf("unexpected metric type for %s", id)
			}
		}
	}
	return out
}

// changes is after − before for every series that moved or appeared.
func changes(before, after map[string]float64) map[string]float64 {
	d := map[string]float64{}
	for id, v := range after {
		if old, ok := before[id]; !ok || old != v {
			d[id] = v - old
		}
	}
	return d
}

func sameChanges(got, want map[string]float64) bool {
	if len(got) != len(want) {
		return false
	}
	for id, w := range want {
		if g, ok := got[id]; !ok || math.Abs(g-w) > 1e-9 {
			return false
		}
	}
	return true
}

func newTestBridge(t *testing.T) (*metricsBridge, *prometheus.Registry) {
	t.Helper()
	b := newMetricsBridge()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(b)
	return b, reg
}

// TestBridgeTable emits each source key on a fresh sink and checks that
// exactly the target series moved, by exactly the expected amount.
func TestBridgeTable(t *testing.T) {
	hist := func(name string, seconds float64) map[string]float64 {
		return map[string]float64{name + "_count": 1, name + "_sum": seconds}
	}
	one := func(series string, v float64) map[string]float64 { return map[string]float64{series: v} }
	none := map[string]float64{}

	tests := []struct {
		name string
		emit func(s metrics.MetricSink)
		want map[string]float64
	}{
		// ms → s: 250 ms is 0.25 s.
		{"commit time", func(s metrics.MetricSink) { s.AddSample(key("raft.commitTime"), 250) },
			hist("gosty_raft_commit_duration_seconds", 0.25)},
		{"fsm apply", func(s metrics.MetricSink) { s.AddSample(key("raft.fsm.apply"), 1.5) },
			hist("gosty_raft_fsm_apply_duration_seconds", 0.0015)},
		{"append entries rpc, labelled", func(s metrics.MetricSink) {
			s.AddSampleWithLabels(key("raft.replication.appendEntries.rpc"), 4, peerLabel)
		}, hist("gosty_raft_append_entries_rpc_duration_seconds", 0.004)},
		{"heartbeat rpc, labelled", func(s metrics.MetricSink) {
			s.AddSampleWithLabels(key("raft.replication.heartbeat"), 2, peerLabel)
		}, hist("gosty_raft_heartbeat_rpc_duration_seconds", 0.002)},
		{"leader dispatch", func(s metrics.MetricSink) { s.AddSample(key("raft.leader.dispatchLog"), 10) },
			hist("gosty_raft_leader_dispatch_log_duration_seconds", 0.01)},
		{"snapshot create", func(s metrics.MetricSink) { s.AddSample(key("raft.snapshot.create"), 20) },
			hist("gosty_raft_snapshot_create_duration_seconds", 0.02)},
		{"snapshot persist", func(s metrics.MetricSink) { s.AddSample(key("raft.snapshot.persist"), 30) },
			hist("gosty_raft_snapshot_persist_duration_seconds", 0.03)},
		{"boltdb store logs", func(s metrics.MetricSink) { s.AddSample(key("raft.boltdb.storeLogs"), 8) },
			hist("gosty_raft_boltdb_store_logs_duration_seconds", 0.008)},
		{"became leader", func(s metrics.MetricSink) { s.IncrCounter(key("raft.state.leader"), 1) },
			one(`gosty_raft_state_transitions_total{to="leader"}`, 1)},
		{"became follower", func(s metrics.MetricSink) { s.IncrCounter(key("raft.state.follower"), 1) },
			one(`gosty_raft_state_transitions_total{to="follower"}`, 1)},
		{"became candidate", func(s metrics.MetricSink) { s.IncrCounter(key("raft.state.candidate"), 1) },
			one(`gosty_raft_state_transitions_total{to="candidate"}`, 1)},
		{"heartbeat timeout", func(s metrics.MetricSink) { s.IncrCounter(key("raft.transition.heartbeat_timeout"), 1) },
			one("gosty_raft_heartbeat_timeouts_total", 1)},
		{"leader lease timeout", func(s metrics.MetricSink) { s.IncrCounter(key("raft.transition.leader_lease_timeout"), 1) },
			one("gosty_raft_leader_lease_timeouts_total", 1)},
		// Saturation is a fraction, not a timing: no ms → s.
		{"main thread saturation", func(s metrics.MetricSink) { s.AddSample(key("raft.thread.main.saturation"), 0.75) },
			one(`gosty_raft_thread_saturation_ratio{thread="main"}`, 0.75)},
		{"fsm thread saturation", func(s metrics.MetricSink) { s.AddSample(key("raft.thread.fsm.saturation"), 0.5) },
			one(`gosty_raft_thread_saturation_ratio{thread="fsm"}`, 0.5)},
		{"probe", func(s metrics.MetricSink) {
			s.AddSampleWithLabels(key("memberlist.probeNode"), 3, nil)
		}, hist("gosty_gossip_probe_duration_seconds", 0.003)},
		{"gossip round", func(s metrics.MetricSink) { s.AddSampleWithLabels(key("memberlist.gossip"), 0.5, nil) },
			hist("gosty_gossip_round_duration_seconds", 0.0005)},
		{"alive message", func(s metrics.MetricSink) { s.IncrCounterWithLabels(key("memberlist.msg.alive"), 1, nil) },
			one(`gosty_gossip_messages_total{type="alive"}`, 1)},
		{"suspect message", func(s metrics.MetricSink) {
			// memberlist passes Config.MetricLabels; they are ignored.
			s.IncrCounterWithLabels(key("memberlist.msg.suspect"), 1, []metrics.Label{{Name: "cluster", Value: "x"}})
		}, one(`gosty_gossip_messages_total{type="suspect"}`, 1)},
		{"dead message", func(s metrics.MetricSink) { s.IncrCounterWithLabels(key("memberlist.msg.dead"), 1, nil) },
			one(`gosty_gossip_messages_total{type="dead"}`, 1)},
		{"udp sent", func(s metrics.MetricSink) { s.IncrCounterWithLabels(key("memberlist.udp.sent"), 1200, nil) },
			one(`gosty_gossip_sent_bytes_total{transport="udp"}`, 1200)},
		{"tcp sent", func(s metrics.MetricSink) { s.IncrCounterWithLabels(key("memberlist.tcp.sent"), 4096, nil) },
			one(`gosty_gossip_sent_bytes_total{transport="tcp"}`, 4096)},
		{"udp received", func(s metrics.MetricSink) { s.IncrCounterWithLabels(key("memberlist.udp.received"), 800, nil) },
			one(`gosty_gossip_received_bytes_total{transport="udp"}`, 800)},
		{"health score", func(s metrics.MetricSink) { s.SetGaugeWithLabels(key("memberlist.health.score"), 3, nil) },
			one("gosty_gossip_health_score", 3)},

		// Dropped: no series moves and none appears.
		{"legacy per-peer append entries rpc", func(s metrics.MetricSink) {
			s.AddSample(append(key("raft.replication.appendEntries.rpc"), peerLabel[0].Value), 4)
		}, none},
		{"legacy per-peer append entries logs", func(s metrics.MetricSink) {
			s.IncrCounter(append(key("raft.replication.appendEntries.logs"), peerLabel[0].Value), 3)
		}, none},
		{"legacy per-peer heartbeat", func(s metrics.MetricSink) {
			s.AddSample(append(key("raft.replication.heartbeat"), peerLabel[0].Value), 2)
		}, none},
		{"unmapped library key", func(s metrics.MetricSink) { s.AddSample(key("raft.boltdb.getLog"), 1) }, none},
		{"unknown key", func(s metrics.MetricSink) { s.IncrCounter(key("gosty.made.up"), 1) }, none},
		{"key on the wrong kind of call", func(s metrics.MetricSink) { s.SetGauge(key("raft.commitTime"), 250) }, none},
		{"key/value event", func(s metrics.MetricSink) { s.EmitKey(key("raft.commitTime"), 250) }, none},
		{"negative counter increment", func(s metrics.MetricSink) { s.IncrCounter(key("memberlist.udp.sent"), -5) }, none},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, reg := newTestBridge(t)
			before := seriesValues(t, reg)
			tt.emit(b)
			if got := changes(before, seriesValues(t, reg)); !sameChanges(got, tt.want) {
				t.Fatalf("changes %v, want %v", got, tt.want)
			}
		})
	}
}

// TestBridgeSeriesExistUpFront: the dashboard's series are there, at zero,
// before any event, and every label value is preset.
func TestBridgeSeriesExistUpFront(t *testing.T) {
	b, reg := newTestBridge(t)
	got := seriesValues(t, reg)
	for _, id := range []string{
		"gosty_raft_commit_duration_seconds_count",
		"gosty_raft_fsm_apply_duration_seconds_count",
		"gosty_raft_append_entries_rpc_duration_seconds_count",
		`gosty_raft_state_transitions_total{to="leader"}`,
		`gosty_raft_state_transitions_total{to="follower"}`,
		`gosty_raft_state_transitions_total{to="candidate"}`,
		"gosty_gossip_probe_duration_seconds_count",
		`gosty_gossip_messages_total{type="alive"}`,
		`gosty_gossip_messages_total{type="suspect"}`,
		`gosty_gossip_messages_total{type="dead"}`,
	} {
		v, ok := got[id]
		if !ok {
			t.Errorf("%s missing before the first event", id)
		} else if v != 0 {
			t.Errorf("%s = %v before the first event", id, v)
		}
	}
	// 10 histograms, 3+1+1 raft counters, 2 saturation gauges, 3+2+1
	// gossip counters and the health gauge.
	if n := testutil.CollectAndCount(b); n != 24 {
		t.Errorf("bridge exports %d series, want 24", n)
	}
}

// recordingSink keeps the keys and labels go-metrics hands its sink.
type recordingSink struct {
	metrics.BlackholeSink
	got []string
}

func (r *recordingSink) record(kind string, key []string, labels []metrics.Label) {
	r.got = append(r.got, fmt.Sprintf("%s %s %v", kind, strings.Join(key, "|"), labels))
}
func (r *recordingSink) SetGaugeWithLabels(k []string, _ float32, l []metrics.Label) {
	r.record("gauge", k, l)
}
func (r *recordingSink) IncrCounterWithLabels(k []string, _ float32, l []metrics.Label) {
	r.record("counter", k, l)
}
func (r *recordingSink) AddSampleWithLabels(k []string, _ float32, l []metrics.Label) {
	r.record("sample", k, l)
}

// TestGoMetricsConfigPassesKeysVerbatim: with the bridge's config,
// go-metrics neither prefixes keys (service name, hostname, type) nor adds
// labels, so the table's keys are what the sink receives.
func TestGoMetricsConfigPassesKeysVerbatim(t *testing.T) {
	rec := &recordingSink{}
	m, err := metrics.New(goMetricsConfig(), rec)
	if err != nil {
		t.Fatal(err)
	}
	m.MeasureSince(key("raft.commitTime"), time.Now())
	m.IncrCounter(key("raft.state.leader"), 1)
	m.SetGauge(key("memberlist.health.score"), 1)
	m.MeasureSinceWithLabels(key("raft.replication.appendEntries.rpc"), time.Now(), peerLabel)
	want := []string{
		"sample raft|commitTime []",
		"counter raft|state|leader []",
		"gauge memberlist|health|score []",
		"sample raft|replication|appendEntries|rpc [{peer_id " + peerLabel[0].Value + "}]",
	}
	if !slices.Equal(rec.got, want) {
		t.Fatalf("sink received\n%s\nwant\n%s", strings.Join(rec.got, "\n"), strings.Join(want, "\n"))
	}
}

// TestInternalMetricsThroughGlobal goes through the real go-metrics global,
// as the libraries do, with the one collector in two registries.
func TestInternalMetricsThroughGlobal(t *testing.T) {
	c := InternalMetrics()
	if InternalMetrics() != c {
		t.Fatal("InternalMetrics returned a second collector")
	}
	reg1, reg2 := prometheus.NewPedanticRegistry(), prometheus.NewPedanticRegistry()
	reg1.MustRegister(c)
	reg2.MustRegister(c)

	// Other tests' nodes also report through the global, hence "at least".
	before := seriesValues(t, reg1)
	metrics.MeasureSince(key("raft.commitTime"), time.Now().Add(-250*time.Millisecond))
	metrics.AddSample(key("raft.fsm.apply"), 250)
	metrics.IncrCounter(key("raft.state.leader"), 1)
	metrics.MeasureSinceWithLabels(key("raft.replication.appendEntries.rpc"), time.Now(), peerLabel)
	metrics.MeasureSince(append(key("raft.replication.appendEntries.rpc"), peerLabel[0].Value), time.Now())
	metrics.IncrCounterWithLabels(key("memberlist.msg.suspect"), 1, nil)
	metrics.IncrCounter(key("gosty.made.up"), 1)

	for i, reg := range []*prometheus.Registry{reg1, reg2} {
		after := seriesValues(t, reg)
		if ids, want := slices.Sorted(maps.Keys(after)), slices.Sorted(maps.Keys(before)); !slices.Equal(ids, want) {
			t.Fatalf("registry %d: series changed from %v to %v", i+1, want, ids)
		}
		d := changes(before, after)
		atLeast := map[string]float64{
			"gosty_raft_commit_duration_seconds_count":             1,
			"gosty_raft_commit_duration_seconds_sum":               0.25,
			"gosty_raft_fsm_apply_duration_seconds_count":          1,
			"gosty_raft_fsm_apply_duration_seconds_sum":            0.25,
			"gosty_raft_append_entries_rpc_duration_seconds_count": 1,
			`gosty_raft_state_transitions_total{to="leader"}`:      1,
			`gosty_gossip_messages_total{type="suspect"}`:          1,
		}
		for id, min := range atLeast {
			if d[id] < min-1e-9 { // sums differ by float rounding
				t.Errorf("registry %d: %s moved by %v, want at least %v", i+1, id, d[id], min)
			}
		}
		// 250 ms measured is 0.25 s, not 250 s.
		if s := d["gosty_raft_commit_duration_seconds_sum"]; s > 10 {
			t.Errorf("registry %d: commit sum moved by %v s: milliseconds not converted", i+1, s)
		}
	}
}

// TestInternalMetricsFromRealRaftAndGossip runs a real one-node raft and
// two gossip members and waits for their own reports to show up.
func TestInternalMetricsFromRealRaftAndGossip(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(InternalMetrics())
	before := seriesValues(t, reg)
	moved := func(id string, min float64) func() error {
		return func() error {
			if d := seriesValues(t, reg)[id] - before[id]; d < min {
				return fmt.Errorf("%s moved by %v, want at least %v", id, d, min)
			}
			return nil
		}
	}

	s := openTestStore(t, t.TempDir())
	defer s.Close()
	ctx := context.Background()
	for _, id := range []string{"m1", "m2", "m3"} {
		if err := s.Propose(ctx, OpJobSubmit, SubmitJob{Job: testJob(id, false)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "raft leader transition", moved(`gosty_raft_state_transitions_total{to="leader"}`, 1))
	waitFor(t, 10*time.Second, "raft commits", moved("gosty_raft_commit_duration_seconds_count", 3))
	waitFor(t, 10*time.Second, "raft FSM applies", moved("gosty_raft_fsm_apply_duration_seconds_count", 3))
	waitFor(t, 10*time.Second, "raft log writes", moved("gosty_raft_boltdb_store_logs_duration_seconds_count", 1))

	ips := []string{"127.0.0.21", "127.0.0.22"}
	port := freeGossipPort(t, ips...)
	startTestMember(t, "gm-0", ips[0], port, []string{addr(ips[1], port)}, nil)
	startTestMember(t, "gm-1", ips[1], port, []string{addr(ips[0], port)}, nil)
	waitFor(t, 10*time.Second, "gossip alive messages", moved(`gosty_gossip_messages_total{type="alive"}`, 2))
	waitFor(t, 10*time.Second, "gossip probes", moved("gosty_gossip_probe_duration_seconds_count", 1))
	waitFor(t, 10*time.Second, "gossip rounds", moved("gosty_gossip_round_duration_seconds_count", 1))
	waitFor(t, 10*time.Second, "gossip udp bytes sent", moved(`gosty_gossip_sent_bytes_total{transport="udp"}`, 1))
	waitFor(t, 10*time.Second, "gossip udp bytes received", moved(`gosty_gossip_received_bytes_total{transport="udp"}`, 1))
	waitFor(t, 10*time.Second, "gossip tcp bytes sent (join push/pull)", moved(`gosty_gossip_sent_bytes_total{transport="tcp"}`, 1))
}

// exposition is the text a scrape of reg returns.
func exposition(t *testing.T, reg prometheus.Gatherer) []byte {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.PanicOnError}).
		ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.Bytes()
}

// TestInternalMetricsLint: the bridge's output passes client_golang's
// promlint and, where installed, `promtool check metrics`.
func TestInternalMetricsLint(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(InternalMetrics())
	text := exposition(t, reg)
	if !bytes.Contains(text, []byte("gosty_raft_commit_duration_seconds_bucket")) {
		t.Fatalf("scrape lacks the bridge's metrics:\n%s", text)
	}

	problems, err := promlint.New(bytes.NewReader(text)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (it comes with the prometheus package): skipping `promtool check metrics`")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(text)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}
