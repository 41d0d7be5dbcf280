package dashboards

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
)

// The dashboard's identity: a fixed uid keeps links and provisioning stable
// across re-imports.
const (
	uid   = "gosty"
	title = "gosty"
)

// node narrows per-node series to the nodes picked in the instance
// variable. Cluster-wide series (jobs, queue, under-replicated blobs, the
// finished-jobs counter and the job duration histogram) are computed from
// the replicated job log, so every node reports the same value: they are
// never filtered by node and always aggregated with max, since a sum would
// count each job once per node.
const node = `instance=~"$instance"`

// goJob selects the Go and process collectors (and up) of gosty nodes only:
// go_* and process_* are exported by most targets a Prometheus scrapes, so
// the instance filter alone would mix in other jobs when "All" is picked.
// The README asks for the scrape job to be named gosty.
const goJob = `job="gosty",` + node

// raftState matches one value of gosty_raft_state{state} (lower case).
func raftState(state string) string {
	return fmt.Sprintf(`state="%s"`, state)
}

// Dashboard returns the dashboard as indented JSON with a trailing newline.
// The output depends only on this code, so gosty.json can be compared byte
// for byte.
func Dashboard() ([]byte, error) {
	b := dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Description("gosty transcoding cluster: jobs, queue, encoding, media transfer, Raft, gossip, HTTP and node resources. Source: github.com/gosty/gosty/dashboards.").
		Tags([]string{"gosty", "transcoding", "raft"}).
		Refresh("10s").
		Time("now-1h", "now").
		Timezone("browser").
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		WithVariable(datasourceVariable()).
		WithVariable(instanceVariable())

	for _, r := range rows() {
		if r.collapsed {
			// Grafana keeps the panels of a collapsed row inside the row
			// and only queries them when it is expanded: the detail rows
			// cost nothing until someone looks at them.
			rb := dashboard.NewRowBuilder(r.title)
			for _, p := range r.panels {
				rb.WithPanel(p)
			}
			b.WithRow(rb.Collapsed(true))
			continue
		}
		// An expanded row is a row panel followed by its panels at the top
		// level of the dashboard.
		b.WithRow(dashboard.NewRowBuilder(r.title))
		for _, p := range r.panels {
			b.WithPanel(p)
		}
	}

	d, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("dashboards: building the dashboard: %w", err)
	}
	numberPanels(&d)

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// PromQL is full of < > &; keep it readable in the JSON.
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil { // Encode ends with a newline
		return nil, fmt.Errorf("dashboards: encoding the dashboard: %w", err)
	}
	return buf.Bytes(), nil
}

// numberPanels gives every panel, row and nested panel a unique id in
// document order. The SDK leaves ids to Grafana, which would assign them on
// import; fixed ids keep the JSON stable and panel links (viewPanel=N)
// working.
func numberPanels(d *dashboard.Dashboard) {
	var id uint32
	next := func() uint32 { id++; return id }
	for i := range d.Panels {
		if p := d.Panels[i].Panel; p != nil {
			p.Id = ptr(next())
		}
		if r := d.Panels[i].RowPanel; r != nil {
			r.Id = next()
			for j := range r.Panels {
				r.Panels[j].Id = ptr(next())
			}
		}
	}
}

type row struct {
	title     string
	collapsed bool
	panels    []cog.Builder[dashboard.Panel]
}

// rows lists the dashboard top to bottom: what an operator asks first (is
// the cluster healthy, is work flowing) is open, the detail rows start
// collapsed.
func rows() []row {
	return []row{
		{"Cluster overview", false, clusterOverview()},
		{"Throughput and queue", false, throughputAndQueue()},
		{"Encode speed", false, encodeSpeed()},
		{"Transfer bytes", false, transferBytes()},
		{"Raft health", true, raftHealth()},
		{"Gossip", true, gossip()},
		{"HTTP", true, httpRow()},
		{"Node resources", true, nodeResources()},
	}
}

func datasourceVariable() *dashboard.DatasourceVariableBuilder {
	return dashboard.NewDatasourceVariableBuilder("datasource").
		Label("Data source").
		Type("prometheus")
}

func instanceVariable() *dashboard.QueryVariableBuilder {
	q := "label_values(gosty_task_slots, instance)"
	return dashboard.NewQueryVariableBuilder("instance").
		Label("Node").
		Description("gosty nodes (Prometheus instance label) shown in the per-node panels.").
		Datasource(datasourceRef()).
		Query(dashboard.StringOrMap{String: ptr(q)}).
		Definition(q).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc).
		Multi(true).
		IncludeAll(true).
		// ".*" instead of Grafana's list of every value: nodes that
		// joined after the page loaded are included too.
		AllValue(".*").
		Current(dashboard.VariableOption{
			Text:  dashboard.StringOrArrayOfString{ArrayOfString: []string{"All"}},
			Value: dashboard.StringOrArrayOfString{ArrayOfString: []string{"$__all"}},
		})
}

// datasourceRef points panels and queries at the datasource variable, so
// the dashboard works with whatever the Prometheus datasource is called.
func datasourceRef() common.DataSourceRef {
	return common.DataSourceRef{Type: ptr("prometheus"), Uid: ptr("${datasource}")}
}

// Cluster overview: one number each, answering "is the cluster healthy".

func clusterOverview() []cog.Builder[dashboard.Panel] {
	return []cog.Builder[dashboard.Panel]{
		single("Jobs by state",
			"Jobs in the replicated job log by state (gosty_jobs{state}). Every node computes it from its copy of the Raft FSM at scrape time and reports the same value, so the panel takes the max across nodes.",
			"short",
			q(`max by (state) (gosty_jobs)`, "{{state}}")).
			Span(8).Thresholds(neutral()),
		single("Queue depth",
			"Tasks waiting for a free slot (gosty_queue_depth). Cluster-wide, computed from the job log by every node; max across nodes.",
			"short",
			q(`max(gosty_queue_depth)`, "queued tasks")).
			Span(3).Thresholds(neutral()),
		single("Under-replicated blobs",
			"Sources and published outputs with fewer copies on alive nodes than --replicas (gosty_blobs_under_replicated). Cluster-wide, computed from the job log by every node; max across nodes. Anything above 0 for long means a node is gone and replication has not caught up.",
			"short",
			q(`max(gosty_blobs_under_replicated)`, "under-replicated")).
			Span(3).Thresholds(levels("green", step{1, "red"})),
		single("Raft leader",
			"Whether any node is the Raft leader: max of gosty_raft_state{state=\"leader\"} over all nodes (1 = a leader exists), and how many nodes report being leader (sum; more than 1 only briefly during an election). Each node reports its own state.",
			"short",
			q(`max(gosty_raft_state{`+raftState("leader")+`})`, "leader present"),
			q(`sum(gosty_raft_state{`+raftState("leader")+`})`, "nodes reporting leader")).
			Span(4).Thresholds(levels("red", step{1, "green"})),
		single("Members",
			"Gossip members by state (gosty_members{state}). Each node reports its own memberlist view; the panel shows the max across nodes, so one node seeing a member dead is enough to show it.",
			"short",
			q(`max by (state) (gosty_members)`, "{{state}}")).
			Span(3).Thresholds(neutral()),
		single("Nodes up",
			"gosty nodes Prometheus scraped successfully (up{job=\"gosty\"}), out of the nodes it scrapes. up is written by Prometheus for every scrape target.",
			"short",
			q(`sum(up{job="gosty"})`, "up"),
			q(`count(up{job="gosty"})`, "scraped")).
			Span(3).Thresholds(neutral()),
	}
}

// Throughput and queue: is work flowing through the cluster.

func throughputAndQueue() []cog.Builder[dashboard.Panel] {
	return []cog.Builder[dashboard.Panel]{
		graph("Jobs finished per minute by state",
			"Jobs that reached done, failed or canceled per minute (rate of gosty_jobs_finished_total{state} × 60). Counted from the replicated job log, so every node reports the same; max across nodes.",
			"short",
			q(`60 * max by (state) (rate(gosty_jobs_finished_total[$__rate_interval]))`, "{{state}}")).
			AxisLabel("jobs/min"),
		graph("Job duration p50 / p90",
			"Time from submit to done by codec (gosty_job_duration_seconds{codec} histogram). Recorded from the replicated job log, so every node has the same histogram: max by bucket across nodes, which equals any single node's.",
			"s",
			q(jobQuantile(0.5), "p50 {{codec}}"),
			q(jobQuantile(0.9), "p90 {{codec}}")),
		graph("Upload bytes rate",
			"Bytes received in uploads per second, per node (rate of gosty_upload_bytes_total). Each node counts the uploads it accepted.",
			"Bps",
			q(`sum by (instance) (rate(gosty_upload_bytes_total{`+node+`}[$__rate_interval]))`, "{{instance}}")),
		graph("Queue depth over time",
			"Tasks waiting for a free slot (gosty_queue_depth). Cluster-wide, computed from the job log by every node; max across nodes. A queue that grows while every slot is busy needs more nodes or slots.",
			"short",
			q(`max(gosty_queue_depth)`, "queued tasks")),
		graph("Tasks in flight vs slots per node",
			"Tasks each node is running (gosty_tasks_in_flight, solid) and the tasks it may run at once (gosty_task_slots, dashed). Each node reports its own.",
			"short",
			q(`sum by (instance) (gosty_tasks_in_flight{`+node+`})`, "{{instance}} in flight"),
			q(`sum by (instance) (gosty_task_slots{`+node+`})`, "{{instance}} slots")).
			Span(24).
			OverrideByQuery("B", []dashboard.DynamicConfigValue{dashed()}),
	}
}

func jobQuantile(quantile float64) string {
	return fmt.Sprintf(`histogram_quantile(%g, max by (le, codec) (rate(gosty_job_duration_seconds_bucket[$__rate_interval])))`, quantile)
}

// Encode speed: how fast the nodes turn chunks around.

func encodeSpeed() []cog.Builder[dashboard.Panel] {
	return []cog.Builder[dashboard.Panel]{
		graph("Chunk encode time p50 / p90 by codec",
			"Wall time to encode one chunk to every rendition (gosty_chunk_encode_seconds{codec} histogram). Each node records the chunks it encoded; buckets are summed over the selected nodes.",
			"s",
			q(histogramQuantile(0.5, "codec", "gosty_chunk_encode_seconds", node), "p50 {{codec}}"),
			q(histogramQuantile(0.9, "codec", "gosty_chunk_encode_seconds", node), "p90 {{codec}}")).
			Span(8),
		graph("Encode speed p50 by codec",
			"Media seconds encoded per wall second for one chunk, median by codec (gosty_encode_speed_ratio{codec} histogram; 1 = real time). Each node records the chunks it encoded; buckets are summed over the selected nodes.",
			"suffix:× real time",
			q(histogramQuantile(0.5, "codec", "gosty_encode_speed_ratio", node), "p50 {{codec}}")).
			Span(8),
		graph("Chunks encoded per minute by node",
			"Chunks each node finished encoding per minute (rate of gosty_chunk_encode_seconds_count × 60). Each node counts its own chunks.",
			"short",
			q(`60 * sum by (instance) (rate(gosty_chunk_encode_seconds_count{`+node+`}[$__rate_interval]))`, "{{instance}}")).
			Span(8).AxisLabel("chunks/min"),
	}
}

// Transfer bytes: media moved between nodes, which the design keeps to what
// tasks and durability need.

func transferBytes() []cog.Builder[dashboard.Panel] {
	return []cog.Builder[dashboard.Panel]{
		graph("Transfer rate by direction and reason",
			"Blob bytes per second moved between nodes over the internal API (rate of gosty_transfer_bytes_total{direction,reason}), summed over the selected nodes; out is drawn below zero. Both ends count a transfer (the sender as out, the receiver as in), so one direction alone is the cluster's traffic. reason: task (a worker pulls its inputs), replicate (reaching --replicas copies), serve (proxying a blob to a client), other.",
			"Bps",
			q(`sum by (direction, reason) (rate(gosty_transfer_bytes_total{`+node+`}[$__rate_interval]))`, "{{direction}} {{reason}}")).
			OverrideByRegexp("^out .*", []dashboard.DynamicConfigValue{negativeY()}),
		graph("Transfer rate per node",
			"Blob bytes per second each node sent (out, below zero) and received (in) over the internal API (rate of gosty_transfer_bytes_total{direction}). Each node counts its own transfers.",
			"Bps",
			q(`sum by (instance, direction) (rate(gosty_transfer_bytes_total{`+node+`}[$__rate_interval]))`, "{{instance}} {{direction}}")).
			OverrideByRegexp(".* out$", []dashboard.DynamicConfigValue{negativeY()}),
	}
}

// Raft health: the replicated job log every other row depends on.

func raftHealth() []cog.Builder[dashboard.Panel] {
	// One number per node for the state timeline: the states are 0/1
	// series, so scaling each and taking the max per node leaves the
	// current state's code (shutdown or no data shows as 0).
	stateCode := `max by (instance) (` +
		`gosty_raft_state{` + node + `,` + raftState("leader") + `} * 3 or ` +
		`gosty_raft_state{` + node + `,` + raftState("candidate") + `} * 2 or ` +
		`gosty_raft_state{` + node + `,` + raftState("follower") + `})`
	return []cog.Builder[dashboard.Panel]{
		statetimeline.NewPanelBuilder().
			Title("Raft state per node").
			Description("Each node's Raft state over time (gosty_raft_state{state}, 1 for the current state). Each node reports its own state. Two leaders at once can only be a stale node that has not heard of the new term yet.").
			Datasource(datasourceRef()).
			WithTarget(q(stateCode, "{{instance}}").target(0)).
			Mappings([]dashboard.ValueMapping{raftStateNames()}).
			Thresholds(neutral()).
			ShowValue(common.VisibilityModeAuto).
			MergeValues(true).
			FillOpacity(80).
			Legend(common.NewVizLegendOptionsBuilder().ShowLegend(false).DisplayMode(common.LegendDisplayModeList).Placement(common.LegendPlacementBottom)).
			Tooltip(tooltip()).
			Height(8).Span(24),
		graph("Raft term",
			"Current Raft term per node (gosty_raft_term). Each node reports its own; a term that keeps rising means repeated elections.",
			"short",
			q(`gosty_raft_term{`+node+`}`, "{{instance}}")).
			Span(8),
		graph("Commit vs applied index",
			"Highest log index each node knows committed (gosty_raft_commit_index, solid) and has applied to its FSM (gosty_raft_applied_index, dashed). Each node reports its own.",
			"short",
			q(`gosty_raft_commit_index{`+node+`}`, "{{instance}} commit"),
			q(`gosty_raft_applied_index{`+node+`}`, "{{instance}} applied")).
			Span(8).
			OverrideByQuery("B", []dashboard.DynamicConfigValue{dashed()}),
		graph("Apply lag",
			"Log entries committed but not yet applied to the FSM, per node (gosty_raft_commit_index − gosty_raft_applied_index). Each node reports its own; a lag that keeps growing means the FSM cannot keep up.",
			"short",
			q(`gosty_raft_commit_index{`+node+`} - gosty_raft_applied_index{`+node+`}`, "{{instance}}")).
			Span(8),
		graph("Last contact with the leader",
			"Seconds since each follower last heard from the leader (gosty_raft_last_contact_seconds; 0 on the leader). Each node reports its own. The GostyRaftNoContact alert fires above 10 s.",
			"s",
			q(`gosty_raft_last_contact_seconds{`+node+`}`, "{{instance}}")).
			Span(8).
			Thresholds(levels("green", step{10, "red"})).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashed)),
		graph("Voters and servers",
			"Voters and all servers (voters and non-voters) in the Raft configuration (gosty_raft_voters, gosty_raft_servers): every node reports its copy of the replicated configuration; max across the selected nodes. Healthy voters (alive in gossip, not leaving, reached by raft's heartbeats) and the failure tolerance (how many more voters may fail before the quorum is lost) as the leader sees them (gosty_raft_healthy_voters, gosty_raft_failure_tolerance).",
			"short",
			q(`max(gosty_raft_voters{`+node+`})`, "voters"),
			q(`max(gosty_raft_servers{`+node+`})`, "servers"),
			q(`max(gosty_raft_healthy_voters{`+node+`} and on (instance) (gosty_raft_state{`+node+`,state="leader"} == 1))`, "healthy voters"),
			q(`max(gosty_raft_failure_tolerance{`+node+`} and on (instance) (gosty_raft_state{`+node+`,state="leader"} == 1))`, "failure tolerance")).
			Span(8),
		graph("Raft latency p99",
			"99th percentile of Raft commit time on the leader (gosty_raft_commit_duration_seconds), FSM apply time on every node (gosty_raft_fsm_apply_duration_seconds) and AppendEntries RPC time on the leader (gosty_raft_append_entries_rpc_duration_seconds). Bridged from hashicorp/raft's internal metrics by each node; buckets summed over the selected nodes.",
			"s",
			q(histogramQuantile(0.99, "", "gosty_raft_commit_duration_seconds", node), "commit"),
			q(histogramQuantile(0.99, "", "gosty_raft_fsm_apply_duration_seconds", node), "FSM apply"),
			q(histogramQuantile(0.99, "", "gosty_raft_append_entries_rpc_duration_seconds", node), "append entries RPC")).
			Span(8),
		graph("State transitions",
			"Raft state changes per node and target state (increase of gosty_raft_state_transitions_total{to}), bridged from hashicorp/raft by each node. Bursts mean elections; a node flapping to candidate has lost contact with the leader.",
			"short",
			q(`sum by (instance, to) (increase(gosty_raft_state_transitions_total{`+node+`}[$__rate_interval]))`, "{{instance}} → {{to}}")).
			Span(24).
			DrawStyle(common.GraphDrawStyleBars),
	}
}

func raftStateNames() dashboard.ValueMapping {
	name := func(text, color string, index int32) dashboard.ValueMappingResult {
		return dashboard.ValueMappingResult{Text: ptr(text), Color: ptr(color), Index: ptr(index)}
	}
	return dashboard.ValueMapping{ValueMap: &dashboard.ValueMap{
		Type: dashboard.MappingTypeValueToText,
		Options: map[string]dashboard.ValueMappingResult{
			"0": name("shutdown / unknown", "red", 0),
			"1": name("follower", "blue", 1),
			"2": name("candidate", "orange", 2),
			"3": name("leader", "green", 3),
		},
	}}
}

// Gossip: memberlist, which finds nodes and tells the cluster who is alive.

func gossip() []cog.Builder[dashboard.Panel] {
	return []cog.Builder[dashboard.Panel]{
		graph("Members by state per node",
			"Cluster members by gossip state as each node sees them (gosty_members{state}). Each node reports its own memberlist view; nodes disagreeing for long points at a network partition.",
			"short",
			q(`gosty_members{`+node+`}`, "{{instance}}: {{state}}")).
			Span(8),
		graph("Gossip probe latency",
			"Time for a memberlist failure-detector probe of another node, p50 and p99 (gosty_gossip_probe_duration_seconds histogram), bridged from memberlist by each node; buckets summed over the selected nodes.",
			"s",
			q(histogramQuantile(0.5, "", "gosty_gossip_probe_duration_seconds", node), "p50"),
			q(histogramQuantile(0.99, "", "gosty_gossip_probe_duration_seconds", node), "p99")).
			Span(8),
		graph("Gossip messages by type",
			"Gossip messages per second by type (rate of gosty_gossip_messages_total{type}: alive, suspect, dead), bridged from memberlist by each node and summed over the selected nodes. Suspect and dead messages mean nodes are failing probes.",
			"short",
			q(`sum by (type) (rate(gosty_gossip_messages_total{`+node+`}[$__rate_interval]))`, "{{type}}")).
			Span(8).AxisLabel("msg/s"),
	}
}

// HTTP: the public and internal API of every node.

func httpRow() []cog.Builder[dashboard.Panel] {
	return []cog.Builder[dashboard.Panel]{
		graph("Request rate by route and code",
			"HTTP requests per second by gin route template and status code (rate of gosty_http_requests_total{route,method,code}). Each node counts the requests it served; summed over the selected nodes.",
			"reqps",
			q(`sum by (route, code) (rate(gosty_http_requests_total{`+node+`}[$__rate_interval]))`, "{{route}} {{code}}")).
			Span(12),
		graph("Server error ratio by route",
			"Share of requests answered with a 5xx status, by route (gosty_http_requests_total{code=~\"5..\"} over all requests). Each node counts the requests it served; summed over the selected nodes.",
			"percentunit",
			// "or … * 0" keeps routes without errors on the graph at 0
			// instead of dropping them (and the panel going blank).
			q(`(sum by (route) (rate(gosty_http_requests_total{`+node+`,code=~"5.."}[$__rate_interval])) or 0 * sum by (route) (rate(gosty_http_requests_total{`+node+`}[$__rate_interval]))) / sum by (route) (rate(gosty_http_requests_total{`+node+`}[$__rate_interval]))`, "{{route}}")).
			Span(12),
		graph("Latency p90 by route",
			"90th percentile time to serve a request by route (gosty_http_request_duration_seconds{route,method} histogram). Each node records the requests it served; buckets summed over the selected nodes. Server-sent event streams (routes ending in /events) are left out: they count their whole life.",
			"s",
			q(histogramQuantile(0.9, "route", "gosty_http_request_duration_seconds", node+`,route!~".*/events"`), "{{route}}")).
			Span(12),
		graph("Requests in flight",
			"HTTP requests each node is serving right now, event streams included (gosty_http_requests_in_flight). Each node reports its own.",
			"short",
			q(`gosty_http_requests_in_flight{`+node+`}`, "{{instance}}")).
			Span(12),
	}
}

// Node resources: the process and its data volume.

func nodeResources() []cog.Builder[dashboard.Panel] {
	return []cog.Builder[dashboard.Panel]{
		graph("Process CPU",
			"CPU seconds per second used by each gosty process, ffmpeg children not included (rate of process_cpu_seconds_total from the Go process collector). Each node reports its own.",
			"short",
			q(`rate(process_cpu_seconds_total{`+goJob+`}[$__rate_interval])`, "{{instance}}")).
			Span(8).AxisLabel("cores"),
		graph("Resident memory",
			"Resident set size of each gosty process (process_resident_memory_bytes from the Go process collector). Each node reports its own.",
			"bytes",
			q(`process_resident_memory_bytes{`+goJob+`}`, "{{instance}}")).
			Span(8),
		graph("Go heap in use",
			"Bytes of allocated heap objects in each gosty process (go_memstats_heap_alloc_bytes from the Go collector). Each node reports its own.",
			"bytes",
			q(`go_memstats_heap_alloc_bytes{`+goJob+`}`, "{{instance}}")).
			Span(8),
		graph("Goroutines",
			"Goroutines in each gosty process (go_goroutines from the Go collector). Each node reports its own; steady growth is a leak.",
			"short",
			q(`go_goroutines{`+goJob+`}`, "{{instance}}")).
			Span(8),
		graph("Open file descriptors",
			"File descriptors each gosty process holds open (process_open_fds from the Go process collector). Each node reports its own.",
			"short",
			q(`process_open_fds{`+goJob+`}`, "{{instance}}")).
			Span(8),
		graph("Blob store size",
			"Bytes of content-addressed blobs (sources, chunks, outputs) each node holds in its data dir (gosty_blob_store_bytes). Each node reports its own.",
			"bytes",
			q(`gosty_blob_store_bytes{`+node+`}`, "{{instance}}")).
			Span(8),
		graph("Data volume free and size",
			"Free bytes (solid) and total size (dashed) of the filesystem holding each node's data dir (gosty_data_volume_free_bytes, gosty_data_volume_size_bytes, from statfs). Each node reports its own.",
			"bytes",
			q(`gosty_data_volume_free_bytes{`+node+`}`, "{{instance}} free"),
			q(`gosty_data_volume_size_bytes{`+node+`}`, "{{instance}} size")).
			Span(12).
			OverrideByQuery("B", []dashboard.DynamicConfigValue{dashed()}),
		graph("Room for media",
			"Free bytes on each node's data volume above the reserves it keeps (gosty_data_volume_free_bytes - gosty_data_volume_reserve_bytes: --disk-reserve plus --raft-reserve). At or below zero the node refuses uploads and blob copies (507 insufficient_storage) and gets no new task; the raft reserve keeps room for the job log. Each node reports its own.",
			"bytes",
			q(`gosty_data_volume_free_bytes{`+node+`} - gosty_data_volume_reserve_bytes{`+node+`}`, "{{instance}}")).
			Span(12).
			Thresholds(levels("red", step{0, "green"})).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeLineAndArea)),
		graph("Data volume free %",
			"Share of each node's data volume still free (gosty_data_volume_free_bytes / gosty_data_volume_size_bytes). Each node reports its own; a full volume stops uploads, tasks and replication on that node.",
			"percentunit",
			q(`gosty_data_volume_free_bytes{`+node+`} / gosty_data_volume_size_bytes{`+node+`}`, "{{instance}}")).
			Span(12).Min(0).Max(1).
			Thresholds(levels("red", step{0.1, "orange"}, step{0.2, "green"})).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashed)),
	}
}
