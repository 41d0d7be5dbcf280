package dashboards

import (
	"os"
	"os/exec"
	"regexp"
	"testing"
)

// needPromtool returns promtool's path, or skips: CI installs Prometheus
// (Debian's prometheus package), a dev machine may not have it.
func needPromtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not on PATH (install Prometheus, e.g. apt-get install prometheus); skipping the Prometheus checks")
	}
	return path
}

func runPromtool(t *testing.T, promtool string, args ...string) {
	t.Helper()
	out, err := exec.Command(promtool, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %v: %v\n%s", args, err, out)
	}
}

func TestAlertRulesCheck(t *testing.T) {
	runPromtool(t, needPromtool(t), "check", "rules", "alerts.yml")
}

// alerts_test.yml has promtool unit tests for every alert, firing and not.
func TestAlertRulesUnitTests(t *testing.T) {
	runPromtool(t, needPromtool(t), "test", "rules", "alerts_test.yml")
}

// The rules may only use series the nodes export. A scan for prefixed
// names over the whole file is enough: comments and annotations name
// metrics too, and they must not name ones that do not exist either.
func TestAlertRulesUseKnownMetrics(t *testing.T) {
	b, err := os.ReadFile("alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`\b(?:gosty|go|process)_[a-zA-Z0-9_]+`).FindAllString(string(b), -1)
	if len(names) == 0 {
		t.Fatal("no metric names found in alerts.yml")
	}
	for _, n := range names {
		if !known(n) {
			t.Errorf("alerts.yml uses unknown metric %q", n)
		}
	}
}
