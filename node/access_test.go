package node

import (
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/node/nodetest"
)

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestClosedReadsAndMetricsAddr: with API tokens, reads need one (unless
// PublicRead), the probes stay open, and with MetricsAddr /metrics is
// served there alone and not on the public address. The start log says
// what is open.
func TestClosedReadsAndMetricsAddr(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("# rotated\nold-tok\nnew-tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, publicRead := range []bool{false, true} {
		logs := &e2e.Buffer{}
		n := startNode(t, filepath.Join(dir, "data", map[bool]string{false: "closed", true: "public"}[publicRead]), func(c *Config) {
			c.APITokenFile = tokens
			c.PublicRead = publicRead
			c.MetricsAddr = "127.0.0.1:0"
			c.Logger = slog.New(slog.NewJSONHandler(io.MultiWriter(logs, testWriter{t}), nil))
		})
		reads := map[bool]string{false: `"reads":"API token"`, true: `"reads":"open to anyone (--public-read)"`}[publicRead]
		nodetest.WaitFor(t, 10*time.Second, "the access line in the log", func() bool {
			return strings.Contains(logs.String(), `"msg":"public API access"`)
		})
		for _, want := range []string{`"writes":"API token"`, reads, `"metrics":"` + n.MetricsAddr() + `"`, `"files":`} {
			if line := logs.String(); !strings.Contains(line, want) {
				t.Errorf("the start log lacks %s", want)
			}
		}
		if n.MetricsAddr() == n.HTTPAddr() {
			t.Fatalf("metrics on the public address %s", n.HTTPAddr())
		}
		for _, path := range []string{"/healthz", "/readyz", "/"} {
			if code, b := get(t, n.base+path, ""); code != http.StatusOK {
				t.Errorf("GET %s anonymous: %d %.200s", path, code, b)
			}
		}
		for _, path := range []string{"/api/v1/jobs", "/api/v1/cluster"} {
			code, b := get(t, n.base+path, "")
			if want := map[bool]int{false: http.StatusUnauthorized, true: http.StatusOK}[publicRead]; code != want {
				t.Errorf("public read %v: GET %s anonymous: %d, want %d: %.200s", publicRead, path, code, want, b)
			}
			if code, b := get(t, n.base+path, "new-tok"); code != http.StatusOK {
				t.Errorf("GET %s with a token: %d %.200s", path, code, b)
			}
		}
		if code, b := get(t, n.base+"/metrics", "old-tok"); code != http.StatusNotFound || !strings.Contains(b, `"not_found"`) {
			t.Errorf("public /metrics: %d %.200s", code, b)
		}
		if code, b := get(t, "http://"+n.MetricsAddr()+"/metrics", ""); code != http.StatusOK || !strings.Contains(b, "gosty_http_requests_total") {
			t.Errorf("/metrics on the metrics address: %d %.200s", code, b)
		}
		if code, b := get(t, "http://"+n.MetricsAddr()+"/api/v1/jobs", "old-tok"); code != http.StatusNotFound || !strings.Contains(b, `"not_found"`) {
			t.Errorf("the API on the metrics address: %d %.200s", code, b)
		}
		n.stop()
	}
}

func TestMetricsAddrValidated(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"9090", "metrics addr"},
		{":8080", "is the http addr"},
		{":9090", ""},
		{"", ""},
	} {
		c := DefaultConfig()
		c.Name, c.DataDir, c.MetricsAddr = "n1", t.TempDir(), tc.addr
		err := c.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.addr, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: %v, want %q", tc.addr, err, tc.want)
		}
	}
}
