package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gosty/gosty/dashboards"
	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/node/nodetest"
)

// TestDashboardAgainstPrometheus runs Debian's Prometheus against a real
// three-node cluster while a job runs, then asks it every query of every
// panel in dashboards/*.json: each must parse and return at least one
// series. The alert rules load into the same Prometheus and evaluate
// cleanly, and every node's /metrics passes `promtool check metrics`.
func TestDashboardAgainstPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node processes, ffmpeg and Prometheus")
	}
	promBin, promtool := prometheusBinaries(t)
	rulesFile, err := filepath.Abs("../../dashboards/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	panels, err := filepath.Glob("../../dashboards/*.json")
	if err != nil || len(panels) == 0 {
		t.Fatalf("no dashboards found (%v)", err)
	}

	c := e2e.FastCluster(t, 26, 3, "--slots", "1", "--replicas", "2", "--preset", "ultrafast")
	c.StartAll(t, 3)
	v := c.Agree(t, []int{0, 1, 2}, 3, 3)
	var targets []string
	for i := range 3 {
		targets = append(targets, strings.TrimPrefix(c.HTTP(i), "http://"))
	}
	prom := startPrometheus(t, promBin, targets, rulesFile)
	prom.waitSeries(t, `up{job="gosty"} == 1`, 3, time.Minute)

	follower := c.Follower(v)
	src := filepath.Join(t.TempDir(), "clip.mp4")
	nodetest.AVClip(t, src, "640x360", 12)
	id := e2e.Upload(t, c.HTTP(follower), src, `{"chunk_seconds":2}`)
	e2e.WaitDone(t, 4*time.Minute, "", id, c.HTTP(follower))
	// The finished job is in every node's scrape before panels are asked.
	prom.waitSeries(t, `gosty_jobs_finished_total{state="done"} >= 1`, 3, time.Minute)

	for _, file := range panels {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		queries, err := dashboards.Targets(b)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(queries) == 0 {
			t.Fatalf("%s: no panel queries", file)
		}
		for _, q := range queries {
			expr := dashboards.Expand(q.Expr, "1m")
			name := fmt.Sprintf("%s: panel %q target %s", filepath.Base(file), q.Panel, q.RefID)
			if err := prom.expectSeries(expr, 30*time.Second); err != nil {
				t.Errorf("%s: %s: %v", name, expr, err)
			}
		}
		t.Logf("%s: %d panel queries answered", filepath.Base(file), len(queries))
	}

	prom.checkRules(t, rulesFile)

	for i := range 3 {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(e2e.Metrics(t, c.HTTP(i)))
		if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("promtool check metrics on %s: %v\n%s", c.Name(i), err, out)
		}
	}
}

// prometheusBinaries finds prometheus and promtool; without them the test
// is skipped, unless GOSTY_REQUIRE_PROMETHEUS=1 (CI) makes that a failure.
func prometheusBinaries(t *testing.T) (string, string) {
	t.Helper()
	prom, err1 := exec.LookPath("prometheus")
	tool, err2 := exec.LookPath("promtool")
	if err1 != nil || err2 != nil {
		msg := "prometheus and promtool are not installed (Debian: apt-get install prometheus)"
		if os.Getenv("GOSTY_REQUIRE_PROMETHEUS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return prom, tool
}

type prometheus struct {
	base string
}

// startPrometheus runs Prometheus on loopback with a temporary data
// directory, scraping targets every second as job "gosty" and loading the
// rules file; it is stopped when the test ends.
func startPrometheus(t *testing.T, bin string, targets []string, rulesFile string) *prometheus {
	t.Helper()
	dir := t.TempDir()
	quoted := make([]string, len(targets))
	for i, tg := range targets {
		quoted[i] = fmt.Sprintf("%q", tg)
	}
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - %q
scrape_configs:
  - job_name: gosty
    static_configs:
      - targets: [%s]
`, rulesFile, strings.Join(quoted, ", "))
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", nodetest.FreePort(t))
	var out e2e.Buffer
	cmd := exec.Command(bin, "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("---- prometheus ----\n%s", e2e.Tail(out.String(), 20000))
		}
	})
	p := &prometheus{base: "http://" + addr}
	nodetest.WaitFor(t, time.Minute, "prometheus ready", func() bool {
		select {
		case <-exited:
			t.Fatalf("prometheus exited: %s", out.String())
		default:
		}
		resp, err := http.Get(p.base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

// query runs an instant query; a PromQL error comes back as an error, an
// answer as the number of series.
func (p *prometheus) query(expr string) (int, error) {
	resp, err := http.PostForm(p.base+"/api/v1/query", url.Values{"query": {expr}})
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string            `json:"resultType"`
			Result     []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, fmt.Errorf("decode answer (%s): %w", resp.Status, err)
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("%s: %s", resp.Status, r.Error)
	}
	if r.Data.ResultType == "scalar" {
		return 1, nil
	}
	return len(r.Data.Result), nil
}

var errNoSeries = errors.New("no series")

// expectSeries polls until expr returns at least one series. A query that
// does not parse fails at once.
func (p *prometheus) expectSeries(expr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		n, err := p.query(expr)
		if err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w after %s", errNoSeries, d)
		}
		time.Sleep(time.Second) // one scrape interval
	}
}

func (p *prometheus) waitSeries(t *testing.T, expr string, want int, d time.Duration) {
	t.Helper()
	nodetest.WaitFor(t, d, fmt.Sprintf("%d series of %s", want, expr), func() bool {
		n, err := p.query(expr)
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return n >= want
	})
}

// checkRules asserts that every alert in the rules file is loaded and has
// been evaluated without error.
func (p *prometheus) checkRules(t *testing.T, rulesFile string) {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, m := range regexp.MustCompile(`(?m)^\s*-?\s*alert:\s*(\S+)`).FindAllSubmatch(b, -1) {
		want = append(want, string(m[1]))
	}
	if len(want) == 0 {
		t.Fatalf("%s: no alerts", rulesFile)
	}
	type rule struct {
		Name           string    `json:"name"`
		Health         string    `json:"health"`
		LastError      string    `json:"lastError"`
		LastEvaluation time.Time `json:"lastEvaluation"`
	}
	var loaded map[string]rule
	nodetest.WaitFor(t, 30*time.Second, "every alert rule evaluated", func() bool {
		var r struct {
			Data struct {
				Groups []struct {
					Rules []rule `json:"rules"`
				} `json:"groups"`
			} `json:"data"`
		}
		if err := e2e.GetJSON(p.base+"/api/v1/rules", &r); err != nil {
			return false
		}
		loaded = map[string]rule{}
		for _, g := range r.Data.Groups {
			for _, rl := range g.Rules {
				loaded[rl.Name] = rl
			}
		}
		for _, name := range want {
			if rl, ok := loaded[name]; !ok || rl.LastEvaluation.IsZero() || rl.LastEvaluation.Year() < 2000 {
				return false
			}
		}
		return true
	})
	for _, name := range want {
		if rl := loaded[name]; rl.Health != "ok" {
			t.Errorf("alert %s: health %q: %s", name, rl.Health, rl.LastError)
		}
	}
	if len(loaded) < len(want) {
		t.Errorf("loaded rules %v, want %v", slices.Sorted(maps.Keys(loaded)), want)
	}
}
