package dashboards

// The builders every row uses: PromQL helpers, time series and stat
// panels in the dashboard's one style, thresholds and overrides.

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// histogramQuantile is the usual quantile over a per-node histogram:
// bucket rates summed over the selected nodes, kept apart by "by" (a
// comma-separated label list, or empty for one series).
func histogramQuantile(quantile float64, by, metric, matchers string) string {
	if by != "" {
		by = ", " + by
	}
	return fmt.Sprintf(`histogram_quantile(%g, sum by (le%s) (rate(%s_bucket{%s}[$__rate_interval])))`,
		quantile, by, metric, matchers)
}

// query is one Prometheus target: an expression and its legend.
type query struct{ expr, legend string }

func q(expr, legend string) query { return query{expr, legend} }

// target builds the query as the i-th target of its panel (refId A, B, ...).
func (q query) target(i int) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().
		Datasource(datasourceRef()).
		RefId(string(rune('A' + i))).
		Expr(q.expr).
		LegendFormat(q.legend)
}

// graph is a time series panel half a row wide with a visible legend and a
// shared tooltip; callers adjust what differs.
func graph(title, description, unit string, queries ...query) *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(datasourceRef()).
		Unit(unit).
		Height(8).Span(12).
		LineWidth(1).
		FillOpacity(10).
		ShowPoints(common.VisibilityModeNever).
		Legend(common.NewVizLegendOptionsBuilder().
			ShowLegend(true).
			DisplayMode(common.LegendDisplayModeList).
			Placement(common.LegendPlacementBottom)).
		Tooltip(tooltip())
	for i, qu := range queries {
		p.WithTarget(qu.target(i))
	}
	return p
}

// single is a stat panel showing the latest value of each series.
func single(title, description, unit string, queries ...query) *stat.PanelBuilder {
	p := stat.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(datasourceRef()).
		Unit(unit).
		Height(5).Span(4).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Values(false)).
		Orientation(common.VizOrientationAuto).
		TextMode(common.BigValueTextModeValueAndName).
		ColorMode(common.BigValueColorModeValue).
		GraphMode(common.BigValueGraphModeArea).
		JustifyMode(common.BigValueJustifyModeAuto)
	for i, qu := range queries {
		p.WithTarget(qu.target(i))
	}
	return p
}

func tooltip() *common.VizTooltipOptionsBuilder {
	return common.NewVizTooltipOptionsBuilder().
		Mode(common.TooltipDisplayModeMulti).
		Sort(common.SortOrderDescending)
}

type step struct {
	value float64
	color string
}

// levels colours values from base upwards, changing colour at each step.
func levels(base string, steps ...step) *dashboard.ThresholdsConfigBuilder {
	ts := []dashboard.Threshold{{Value: nil, Color: base}} // nil is -Infinity
	for _, s := range steps {
		ts = append(ts, dashboard.Threshold{Value: ptr(s.value), Color: s.color})
	}
	return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(ts)
}

// neutral is for counts that are neither good nor bad.
func neutral() *dashboard.ThresholdsConfigBuilder { return levels("blue") }

func dashed() dashboard.DynamicConfigValue {
	return dashboard.DynamicConfigValue{
		Id:    "custom.lineStyle",
		Value: map[string]any{"fill": "dash", "dash": []int{10, 10}},
	}
}

func negativeY() dashboard.DynamicConfigValue {
	return dashboard.DynamicConfigValue{Id: "custom.transform", Value: "negative-Y"}
}

func ptr[T any](v T) *T { return &v }
