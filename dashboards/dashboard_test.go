package dashboards

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// Expected size of the dashboard; change together with dashboard.go.
const (
	wantPanels  = 40 // not counting the 8 rows
	wantTargets = 53
)

var wantRows = []string{
	"Cluster overview", "Throughput and queue", "Encode speed", "Transfer bytes",
	"Raft health", "Gossip", "HTTP", "Node resources",
}

// knownMetrics are the series gosty nodes export (DESIGN.md, Metrics), with
// up, which Prometheus adds for every target. Histograms are listed by
// their base name and also match with _bucket, _sum and _count.
var (
	knownMetrics = set(
		// per node
		"gosty_tasks_in_flight", "gosty_task_slots", "gosty_upload_bytes_total",
		"gosty_transfer_bytes_total",
		"gosty_raft_state", "gosty_raft_term", "gosty_raft_commit_index", "gosty_raft_applied_index",
		"gosty_raft_last_contact_seconds", "gosty_raft_voters", "gosty_raft_servers",
		"gosty_raft_healthy_voters", "gosty_raft_failure_tolerance",
		"gosty_members",
		"gosty_http_requests_total", "gosty_http_requests_in_flight",
		"gosty_data_volume_free_bytes", "gosty_data_volume_size_bytes", "gosty_data_volume_reserve_bytes", "gosty_blob_store_bytes",
		"gosty_raft_state_transitions_total", "gosty_gossip_messages_total",
		"go_goroutines", "go_memstats_heap_alloc_bytes",
		"process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "up",
		// cluster-wide
		"gosty_jobs", "gosty_queue_depth", "gosty_blobs_under_replicated", "gosty_jobs_finished_total",
	)
	knownHistograms = set(
		"gosty_chunk_encode_seconds", "gosty_encode_speed_ratio", "gosty_http_request_duration_seconds",
		"gosty_raft_commit_duration_seconds", "gosty_raft_fsm_apply_duration_seconds",
		"gosty_raft_append_entries_rpc_duration_seconds", "gosty_gossip_probe_duration_seconds",
		"gosty_job_duration_seconds",
	)
	// clusterWide series are computed from the replicated job log and
	// reported identically by every node.
	clusterWide = set(
		"gosty_jobs", "gosty_queue_depth", "gosty_blobs_under_replicated",
		"gosty_jobs_finished_total", "gosty_job_duration_seconds",
	)
)

func set(names ...string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

// baseMetric maps a histogram's _bucket/_sum/_count series to the
// histogram's name; other names are returned as they are.
func baseMetric(name string) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && knownHistograms[base] {
			return base
		}
	}
	return name
}

func known(name string) bool {
	return knownMetrics[name] || knownHistograms[baseMetric(name)]
}

var (
	promString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promMatchers = regexp.MustCompile(`\{[^}]*\}`)
	promRange    = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promKeywords = set("and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
		"group_right", "bool", "offset", "inf", "nan")
)

// metricNames returns the metric names a PromQL expression selects: the
// identifiers left once strings, label matchers, range windows and
// grouping label lists are removed, that are not functions, keywords or
// numbers. Enough for the expressions of a dashboard, not a parser.
func metricNames(expr string) []string {
	s := promString.ReplaceAllString(expr, `""`)
	s = promMatchers.ReplaceAllString(s, " ")
	s = promRange.ReplaceAllString(s, " ")
	s = promGrouping.ReplaceAllString(s, " ")
	var names []string
	for _, loc := range promIdent.FindAllStringIndex(s, -1) {
		name := s[loc[0]:loc[1]]
		if loc[0] > 0 && strings.ContainsAny(s[loc[0]-1:loc[0]], "0123456789.") {
			continue // the exponent of a number (1e3) or a duration unit
		}
		if call := strings.HasPrefix(strings.TrimLeft(s[loc[1]:], " \t\n"), "("); call {
			continue // a function or an aggregation
		}
		if promKeywords[strings.ToLower(name)] {
			continue
		}
		names = append(names, name)
	}
	return names
}

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`up`, []string{"up"}},
		{`max by (state) (gosty_jobs)`, []string{"gosty_jobs"}},
		{`sum by (le, codec) (rate(x_bucket{codec="h264",a=~"b|c"}[5m]))`, []string{"x_bucket"}},
		{`a - on(instance) group_left(state) b{state="x y"} * 1e3 offset 5m`, []string{"a", "b"}},
		{`label_replace(m, "dst", "$1", "src", "(.*)")`, []string{"m"}},
		{`sum without (job) (rate(c[1m])) > bool 0 and ignoring (x) d`, []string{"c", "d"}},
		{`vector(1) or absent(nope{job="gosty"})`, []string{"nope"}},
	} {
		if got := metricNames(tc.expr); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("metricNames(%q) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}

func TestGeneratedFileIsCurrent(t *testing.T) {
	want, err := Dashboard()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("gosty.json")
	if err != nil {
		t.Fatalf("%v: run `go generate ./dashboards` and commit gosty.json", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("gosty.json differs from Dashboard(): run `go generate ./dashboards` and commit gosty.json")
	}
	again, err := Dashboard()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, want) {
		t.Fatal("Dashboard() is not deterministic")
	}
	if !bytes.HasSuffix(want, []byte("}\n")) {
		t.Error("dashboard JSON does not end with a newline")
	}
}

// The dashboard as Grafana reads it: only what the tests check.
type (
	gDashboard struct {
		UID           string   `json:"uid"`
		Title         string   `json:"title"`
		Tags          []string `json:"tags"`
		Refresh       string   `json:"refresh"`
		SchemaVersion int      `json:"schemaVersion"`
		Time          struct {
			From string `json:"from"`
			To   string `json:"to"`
		} `json:"time"`
		Templating struct {
			List []gVariable `json:"list"`
		} `json:"templating"`
		Panels []gPanel `json:"panels"`
	}
	gVariable struct {
		Type       string          `json:"type"`
		Name       string          `json:"name"`
		Query      any             `json:"query"`
		Datasource *gDatasource    `json:"datasource"`
		Multi      bool            `json:"multi"`
		IncludeAll bool            `json:"includeAll"`
		AllValue   string          `json:"allValue"`
		Current    json.RawMessage `json:"current"`
	}
	gPanel struct {
		ID          int          `json:"id"`
		Type        string       `json:"type"`
		Title       string       `json:"title"`
		Description string       `json:"description"`
		Collapsed   bool         `json:"collapsed"`
		Datasource  *gDatasource `json:"datasource"`
		GridPos     struct{ X, Y, W, H int }
		Targets     []struct {
			RefID      string       `json:"refId"`
			Expr       string       `json:"expr"`
			Datasource *gDatasource `json:"datasource"`
		} `json:"targets"`
		Panels []gPanel `json:"panels"`
	}
	gDatasource struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	}
)

func loadDashboard(t *testing.T) (gDashboard, []byte) {
	t.Helper()
	b, err := Dashboard()
	if err != nil {
		t.Fatal(err)
	}
	var d gDashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d, b
}

// rowsAndPanels splits the dashboard into its rows (in order) and the
// panels under each, whether the row is expanded or collapsed.
func rowsAndPanels(d gDashboard) (rows []gPanel, panels map[string][]gPanel) {
	panels = map[string][]gPanel{}
	current := ""
	for _, p := range d.Panels {
		if p.Type == "row" {
			rows = append(rows, p)
			current = p.Title
			panels[current] = append(panels[current], p.Panels...)
			continue
		}
		panels[current] = append(panels[current], p)
	}
	return rows, panels
}

func TestDashboardSettings(t *testing.T) {
	d, _ := loadDashboard(t)
	if d.UID != "gosty" || d.Title != "gosty" {
		t.Errorf("uid, title = %q, %q; want gosty, gosty", d.UID, d.Title)
	}
	if len(d.Tags) == 0 {
		t.Error("no tags")
	}
	if d.Refresh != "10s" || d.Time.From != "now-1h" || d.Time.To != "now" {
		t.Errorf("refresh %q, time %q..%q; want 10s, now-1h..now", d.Refresh, d.Time.From, d.Time.To)
	}
	// The schema version the SDK emits: one current Grafana imports
	// without migrating panels away.
	if d.SchemaVersion < 39 {
		t.Errorf("schemaVersion %d, want the SDK's current one", d.SchemaVersion)
	}

	vars := map[string]gVariable{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	if len(vars) != 2 {
		t.Errorf("variables %v, want datasource and instance", vars)
	}
	ds := vars["datasource"]
	if ds.Type != "datasource" || ds.Query != "prometheus" {
		t.Errorf("datasource variable = %+v, want type datasource, query prometheus", ds)
	}
	in := vars["instance"]
	if in.Type != "query" || in.Query != "label_values(gosty_task_slots, instance)" ||
		!in.Multi || !in.IncludeAll || in.AllValue != ".*" {
		t.Errorf("instance variable = %+v", in)
	}
	if in.Datasource == nil || in.Datasource.UID != "${datasource}" {
		t.Errorf("instance variable datasource = %+v, want ${datasource}", in.Datasource)
	}
}

func TestDashboardPanels(t *testing.T) {
	d, _ := loadDashboard(t)
	rows, panels := rowsAndPanels(d)
	var titles []string
	for _, r := range rows {
		titles = append(titles, r.Title)
	}
	if !reflect.DeepEqual(titles, wantRows) {
		t.Errorf("rows %q, want %q", titles, wantRows)
	}
	if len(panels[""]) != 0 {
		t.Errorf("%d panels above the first row", len(panels[""]))
	}

	ids := map[int]string{}
	seenTitle := map[string]bool{}
	count := 0
	for _, r := range rows {
		if ids[r.ID] != "" || r.ID == 0 {
			t.Errorf("row %q: id %d is zero or taken by %q", r.Title, r.ID, ids[r.ID])
		}
		ids[r.ID] = r.Title
		if r.Collapsed == (len(r.Panels) == 0) {
			t.Errorf("row %q: collapsed %v with %d nested panels", r.Title, r.Collapsed, len(r.Panels))
		}
		if len(panels[r.Title]) == 0 {
			t.Errorf("row %q has no panels", r.Title)
		}
		for _, p := range panels[r.Title] {
			count++
			name := r.Title + " / " + p.Title
			if p.ID == 0 || ids[p.ID] != "" {
				t.Errorf("%s: id %d is zero or taken by %q", name, p.ID, ids[p.ID])
			}
			ids[p.ID] = name
			if p.Title == "" || seenTitle[p.Title] {
				t.Errorf("%s: title empty or not unique", name)
			}
			seenTitle[p.Title] = true
			if p.Description == "" {
				t.Errorf("%s: no description", name)
			}
			if p.GridPos.W == 0 || p.GridPos.H == 0 || p.GridPos.X+p.GridPos.W > 24 {
				t.Errorf("%s: gridPos %+v outside the 24 columns", name, p.GridPos)
			}
			if p.Datasource == nil || p.Datasource.UID != "${datasource}" || p.Datasource.Type != "prometheus" {
				t.Errorf("%s: datasource %+v, want the ${datasource} variable", name, p.Datasource)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: no targets", name)
			}
			for _, tg := range p.Targets {
				if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
					t.Errorf("%s %s: datasource %+v, want the ${datasource} variable", name, tg.RefID, tg.Datasource)
				}
				if tg.RefID == "" || tg.Expr == "" {
					t.Errorf("%s: target without refId or expr: %+v", name, tg)
				}
			}
		}
	}
	if count != wantPanels {
		t.Errorf("%d panels, want %d", count, wantPanels)
	}
}

var rangeWindow = regexp.MustCompile(`\[([^\]]*)\]`)

// clusterSummary panels summarise per-node series over the whole cluster,
// whatever nodes are picked.
var clusterSummary = set("Raft leader", "Members", "Nodes up")

func TestDashboardQueries(t *testing.T) {
	_, b := loadDashboard(t)
	targets, err := Targets(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(targets) != wantTargets {
		t.Errorf("Targets found %d queries, want %d", len(targets), wantTargets)
	}
	used := map[string]bool{}
	for _, tg := range targets {
		name := tg.Panel + " " + tg.RefID
		names := metricNames(tg.Expr)
		if len(names) == 0 {
			t.Errorf("%s: no metric found in %q", name, tg.Expr)
		}
		cluster := false
		for _, n := range names {
			if !known(n) {
				t.Errorf("%s: unknown metric %q in %q", name, n, tg.Expr)
			}
			used[baseMetric(n)] = true
			cluster = cluster || clusterWide[baseMetric(n)]
		}
		// Every node reports the same job-level value: summing would
		// count it once per node.
		if cluster && (!strings.Contains(tg.Expr, "max") || strings.Contains(tg.Expr, "sum")) {
			t.Errorf("%s: cluster-wide series must be aggregated with max, not sum: %q", name, tg.Expr)
		}
		// Per-node series follow the instance picker, except in the
		// cluster summaries of the overview row.
		if !cluster && !clusterSummary[tg.Panel] && !strings.Contains(tg.Expr, `instance=~"$instance"`) {
			t.Errorf("%s: per-node query does not filter by $instance: %q", name, tg.Expr)
		}
		for _, w := range rangeWindow.FindAllStringSubmatch(tg.Expr, -1) {
			if w[1] != "$__rate_interval" {
				t.Errorf("%s: range [%s], want [$__rate_interval]: %q", name, w[1], tg.Expr)
			}
		}
	}
	// Every metric the nodes export has a panel.
	var unused []string
	for n := range knownMetrics {
		if !used[n] {
			unused = append(unused, n)
		}
	}
	for n := range knownHistograms {
		if !used[n] {
			unused = append(unused, n)
		}
	}
	sort.Strings(unused)
	if len(unused) > 0 {
		t.Errorf("metrics without a panel: %q", unused)
	}
}

func TestTargets(t *testing.T) {
	for _, tc := range []struct {
		name string
		json string
		want []Target
	}{
		{
			name: "top-level panels and expanded rows",
			json: `{"panels": [
				{"type": "row", "title": "r", "collapsed": false, "panels": []},
				{"type": "timeseries", "title": "p1", "targets": [
					{"refId": "A", "expr": "up"},
					{"refId": "B", "expr": "rate(x_total[$__rate_interval])"}]},
				{"type": "text", "title": "notes"}]}`,
			want: []Target{{"p1", "A", "up"}, {"p1", "B", "rate(x_total[$__rate_interval])"}},
		},
		{
			name: "panels nested in a collapsed row",
			json: `{"panels": [
				{"type": "stat", "title": "top", "targets": [{"refId": "A", "expr": "a"}]},
				{"type": "row", "title": "hidden", "collapsed": true, "panels": [
					{"type": "timeseries", "title": "inner1", "targets": [{"refId": "A", "expr": "b"}]},
					{"type": "timeseries", "title": "inner2", "targets": [{"refId": "Z", "expr": "c"}]}]},
				{"type": "timeseries", "title": "after", "targets": [{"refId": "A", "expr": "d"}]}]}`,
			want: []Target{{"top", "A", "a"}, {"inner1", "A", "b"}, {"inner2", "Z", "c"}, {"after", "A", "d"}},
		},
		{
			name: "rows of schema before 16",
			json: `{"rows": [{"title": "old", "panels": [
				{"type": "graph", "title": "g", "datasource": "Prometheus", "targets": [{"refId": "A", "expr": "e"}]}]}]}`,
			want: []Target{{"g", "A", "e"}},
		},
		{
			name: "export envelope",
			json: `{"meta": {}, "dashboard": {"panels": [{"title": "p", "targets": [{"refId": "A", "expr": "f"}]}]}}`,
			want: []Target{{"p", "A", "f"}},
		},
		{
			name: "other datasources and empty queries are skipped",
			json: `{"panels": [
				{"title": "logs", "datasource": {"type": "loki", "uid": "l"}, "targets": [{"refId": "A", "expr": "{app=\"x\"}"}]},
				{"title": "mixed", "datasource": {"type": "datasource", "uid": "-- Mixed --"}, "targets": [
					{"refId": "A", "expr": "{app=\"x\"}", "datasource": {"type": "loki", "uid": "l"}},
					{"refId": "B", "expr": "g", "datasource": {"type": "prometheus", "uid": "p"}},
					{"refId": "C", "expr": "h"},
					{"refId": "D", "expr": "  "}]},
				{"title": "by variable", "datasource": {"type": "prometheus", "uid": "${datasource}"}, "targets": [
					{"refId": "A", "expr": "i", "datasource": {"uid": "${datasource}"}}]}]}`,
			want: []Target{{"mixed", "B", "g"}, {"mixed", "C", "h"}, {"by variable", "A", "i"}},
		},
		{
			name: "missing refIds are named like Grafana does",
			json: `{"panels": [{"title": "p", "targets": [{"expr": "a"}, {"refId": "A", "expr": "b"}, {"expr": "c"}]}]}`,
			want: []Target{{"p", "B", "a"}, {"p", "A", "b"}, {"p", "C", "c"}},
		},
		{
			name: "no panels",
			json: `{"title": "empty"}`,
			want: nil,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Targets([]byte(tc.json))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Targets = %+v\nwant      %+v", got, tc.want)
			}
		})
	}
	if _, err := Targets([]byte(`{"panels": [`)); err == nil {
		t.Error("Targets accepted broken JSON")
	}
}

func TestNextRefID(t *testing.T) {
	used := map[string]bool{}
	var got []string
	for range 28 {
		id := nextRefID(used)
		used[id] = true
		got = append(got, id)
	}
	if got[0] != "A" || got[25] != "Z" || got[26] != "AA" || got[27] != "AB" {
		t.Errorf("refIds %q", got)
	}
}

func TestExpand(t *testing.T) {
	for _, tc := range []struct {
		expr, interval, want string
	}{
		{`rate(x[$__rate_interval])`, "1m", `rate(x[1m])`},
		{`rate(x[${__rate_interval}])`, "30s", `rate(x[30s])`},
		{`increase(x[$__range]) / $__interval`, "5m", `increase(x[5m]) / 5m`},
		{`x{instance=~"$instance"}`, "1m", `x{instance=~".*"}`},
		{`x{instance=~"${instance}",node=~"[[node]]",c=~"${codec:regex}",d=~"[[d:pipe]]"}`, "1m",
			`x{instance=~".*",node=~".*",c=~".*",d=~".*"}`},
		{`x{uid="$datasource"}`, "1m", `x{uid=".*"}`},
		{`x / $__interval_ms + $__range_s + $__rate_interval_ms`, "1m30s", `x / 90000 + 90 + 90000`},
		{`x / $__range_ms`, "not a duration", `x / $__range_ms`},
		{`label_replace(x, "dst", "$1", "src", "(.*)") @ $__to`, "1m", `label_replace(x, "dst", "$1", "src", "(.*)") @ $__to`},
		{`sum(rate(x_total[5m]))`, "1m", `sum(rate(x_total[5m]))`},
	} {
		if got := Expand(tc.expr, tc.interval); got != tc.want {
			t.Errorf("Expand(%q, %q) = %q, want %q", tc.expr, tc.interval, got, tc.want)
		}
	}
}

// Every dashboard query, expanded, must be a valid PromQL expression for
// the Prometheus the project tests against. promtool check rules parses
// them with that Prometheus's parser.
func TestDashboardQueriesParse(t *testing.T) {
	promtool := needPromtool(t)
	_, b := loadDashboard(t)
	targets, err := Targets(b)
	if err != nil {
		t.Fatal(err)
	}
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, tg := range targets {
		expr, err := json.Marshal(Expand(tg.Expr, "1m")) // a JSON string is a YAML string
		if err != nil {
			t.Fatal(err)
		}
		rules.WriteString("      - record: dashboard:query" + string(rune('a'+i/26)) + string(rune('a'+i%26)) + "\n")
		rules.WriteString("        expr: " + string(expr) + "\n")
	}
	file := t.TempDir() + "/dashboard-rules.yml"
	if err := os.WriteFile(file, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	runPromtool(t, promtool, "check", "rules", file)
}

// The README's panel table shows every query; keep it in step with the
// dashboard (a | in a query is escaped as \| inside the table).
func TestReadmeListsEveryQuery(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, b := loadDashboard(t)
	targets, err := Targets(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range targets {
		cell := "`" + strings.ReplaceAll(tg.Expr, "|", `\|`) + "`"
		if !bytes.Contains(readme, []byte("| "+tg.Panel+" |")) || !bytes.Contains(readme, []byte(cell)) {
			t.Errorf("README.md panel table lacks %q / %s", tg.Panel, cell)
		}
	}
}
