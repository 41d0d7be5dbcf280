// Package dashboards builds gosty's Grafana dashboard and reads Prometheus
// queries back out of dashboard JSON.
//
// Dashboard is the single source of the dashboard: gosty.json next to this
// file is its output, committed so that it can be imported into Grafana
// without a Go toolchain. After changing dashboard.go run
//
//	go generate ./dashboards
//
// and commit gosty.json; a test fails when the two differ.
//
// Targets and Expand exist for tests that run every panel query through a
// real Prometheus: Targets walks any dashboard JSON (rows, collapsed rows
// and their nested panels) and returns each Prometheus expression, Expand
// replaces the Grafana variables in one so that Prometheus can parse it.
//
// The alerting rules live in alerts.yml (with promtool unit tests in
// alerts_test.yml); README.md documents import, scraping and every panel.
package dashboards

//go:generate go run ./gen
