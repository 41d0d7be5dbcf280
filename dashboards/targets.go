package dashboards

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// Target is one Prometheus query of a dashboard panel.
type Target struct {
	Panel string // the panel's title
	RefID string // the query's refId (A, B, ...), as Grafana would assign it when missing
	Expr  string // PromQL, still holding Grafana variables; see Expand
}

// The parts of Grafana's dashboard JSON that Targets reads. Everything else
// is ignored, so any schema version decodes.
type (
	jsonDashboard struct {
		Panels []jsonPanel `json:"panels"`
		// Rows is the layout before schema version 16: panels lived in
		// dashboard.rows[].panels.
		Rows []jsonPanel `json:"rows"`
		// Dashboard is set when the file is Grafana's export or API
		// envelope {"dashboard": {...}, "meta": {...}}.
		Dashboard *jsonDashboard `json:"dashboard"`
	}
	jsonPanel struct {
		Title      string          `json:"title"`
		Datasource json.RawMessage `json:"datasource"`
		Targets    []jsonTarget    `json:"targets"`
		// Panels holds the panels of a collapsed row.
		Panels []jsonPanel `json:"panels"`
	}
	jsonTarget struct {
		RefID      string          `json:"refId"`
		Expr       string          `json:"expr"`
		Datasource json.RawMessage `json:"datasource"`
	}
)

// Targets returns every Prometheus query in a Grafana dashboard, in
// document order: top-level panels, rows, and the panels nested in
// collapsed rows (and in the rows of old, pre-16 schemas). A query counts
// when it has a non-empty expr and its datasource (its own, else its
// panel's) is not known to be something other than Prometheus: Loki
// queries also have an expr, but they are not PromQL.
func Targets(dashboardJSON []byte) ([]Target, error) {
	var d jsonDashboard
	dec := json.NewDecoder(bytes.NewReader(dashboardJSON))
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("dashboards: decoding dashboard JSON: %w", err)
	}
	if d.Panels == nil && d.Rows == nil && d.Dashboard != nil {
		d = *d.Dashboard
	}
	var out []Target
	var walk func(panels []jsonPanel)
	walk = func(panels []jsonPanel) {
		for _, p := range panels {
			out = append(out, panelTargets(p)...)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	walk(d.Rows)
	return out, nil
}

func panelTargets(p jsonPanel) []Target {
	panelType := datasourceType(p.Datasource)
	if panelType == "datasource" {
		// "-- Mixed --": each query names its own datasource.
		panelType = ""
	}
	used := map[string]bool{}
	for _, t := range p.Targets {
		used[t.RefID] = true
	}
	var out []Target
	for _, t := range p.Targets {
		refID := t.RefID
		if refID == "" {
			refID = nextRefID(used)
			used[refID] = true
		}
		if strings.TrimSpace(t.Expr) == "" {
			continue
		}
		typ := datasourceType(t.Datasource)
		if typ == "" {
			typ = panelType
		}
		if typ != "" && typ != "prometheus" {
			continue
		}
		out = append(out, Target{Panel: p.Title, RefID: refID, Expr: t.Expr})
	}
	return out
}

// datasourceType is the plugin type of a datasource reference, or "" when
// the reference does not say: it is missing, null, a variable, or a bare
// name (the form before Grafana 8.3).
func datasourceType(raw json.RawMessage) string {
	var ref struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(raw, &ref) != nil {
		return ""
	}
	return ref.Type
}

// nextRefID is the first of A…Z, then AA, AB, … not in used, the way
// Grafana names a query that has no refId.
func nextRefID(used map[string]bool) string {
	for n := 0; ; n++ {
		id := ""
		for i := n; ; i = i/26 - 1 {
			id = string(rune('A'+i%26)) + id
			if i < 26 {
				break
			}
		}
		if !used[id] {
			return id
		}
	}
}

// varRef matches Grafana's variable syntaxes: $name, ${name},
// ${name:format}, ${name.field}, [[name]] and [[name:format]].
var varRef = regexp.MustCompile(`\$(\w+)|\$\{(\w+)(?:\.[^:}]+)?(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]`)

// Expand replaces the Grafana variables in a query so that Prometheus can
// run it outside Grafana:
//
//   - $__rate_interval, $__interval and $__range become rateInterval
//     (a Prometheus duration such as "1m");
//   - $__rate_interval_ms, $__interval_ms and $__range_ms become it in
//     milliseconds and $__range_s in seconds (left as they are when
//     rateInterval is not a valid duration);
//   - any other variable ($instance, ${instance}, $datasource, ...)
//     becomes ".*", the "All" value: dashboards use them in regex label
//     matchers (instance=~"$instance").
//
// Other names starting with __ (Grafana built-ins such as $__from) and
// numeric names ($1, regex group references in label_replace) are left
// alone, as Grafana leaves names it does not know.
func Expand(expr string, rateInterval string) string {
	var ms int64 = -1
	if d, err := model.ParseDuration(rateInterval); err == nil {
		ms = time.Duration(d).Milliseconds()
	}
	return varRef.ReplaceAllStringFunc(expr, func(ref string) string {
		m := varRef.FindStringSubmatch(ref)
		name := m[1] + m[2] + m[3]
		switch name {
		case "__rate_interval", "__interval", "__range":
			return rateInterval
		case "__rate_interval_ms", "__interval_ms", "__range_ms":
			if ms >= 0 {
				return strconv.FormatInt(ms, 10)
			}
			return ref
		case "__range_s":
			if ms >= 0 {
				return strconv.FormatInt(ms/1000, 10)
			}
			return ref
		}
		if strings.HasPrefix(name, "__") || isDigits(name) {
			return ref
		}
		return ".*"
	})
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}
