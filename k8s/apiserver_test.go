package k8s_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/node/kube"
)

// TestAPIServer applies the manifests and the deploy steps (deployDoc) to a
// real kube-apiserver, and scales the StatefulSet they create through
// POST /api/v1/cluster/scale with the ServiceAccount tokens of the shipped
// Role and of an account without it.
func TestAPIServer(t *testing.T) {
	if testing.Short() && !required() {
		t.Skip("starts etcd and kube-apiserver")
	}
	cp := startControlPlane(t)
	tr := newTree(t)
	steps := deployBlocks(t)
	for _, name := range []string{"keys", "apply", "extras", "scale"} {
		if steps[name] == "" {
			t.Fatalf("%s has no block marked <!-- k8s-test: %s -->", deployDoc, name)
		}
	}
	dirs := []string{"k8s", "k8s/servicemonitor", "k8s/ingress"}

	// The Prometheus operator's ServiceMonitor CRD, generated from its Go
	// types by `make kube-bins`, so that ServiceMonitors are validated
	// against the real schema.
	crd := filepath.Join(kubeBinDir(t), "crds", "monitoring.coreos.com_servicemonitors.yaml")
	if _, err := os.Stat(crd); err != nil {
		missing(t, "no ServiceMonitor CRD at %s", crd)
	}
	cp.kubectl(t, tr.dir, "apply", "--server-side", "-f", crd)
	cp.kubectl(t, tr.dir, "wait", "--for=condition=Established", "--timeout=60s",
		"customresourcedefinition/servicemonitors.monitoring.coreos.com")

	t.Run("deploy keys", func(t *testing.T) {
		cp.sh(t, tr.dir, steps["keys"])
		for _, k := range []string{"cluster-key", "gossip-key", "api-token"} {
			b, err := os.ReadFile(filepath.Join(tr.dir, "k8s", "secrets", k))
			if err != nil {
				t.Fatal(err)
			}
			if raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b))); err != nil || len(raw) != 32 {
				t.Fatalf("%s: want 32 random bytes in base64, got %q", k, b)
			}
		}
	})
	if t.Failed() {
		return
	}

	rendered := map[string][]object{}
	for _, d := range dirs {
		rendered[d] = splitObjects(t, tr.kustomize(t, cp.kubectlBin, d))
	}
	// The namespace exists for real first (with its Pod Security labels),
	// so that the dry runs of namespaced objects are checked against it.
	for _, o := range rendered["k8s"] {
		if o.Kind == "Namespace" {
			if _, errOut, err := cp.kubectlOut(t, tr.dir, o.JSON, "apply", "-f", "-"); err != nil {
				t.Fatalf("creating namespace %s: %v\n%s", o.Name, err, errOut)
			}
		}
	}

	t.Run("dry run, strict", func(t *testing.T) {
		for _, d := range dirs {
			out, errOut, err := cp.kubectlOut(t, tr.dir, nil, "apply", "-k", d, "--dry-run=server", "--validate=strict")
			if err != nil {
				t.Fatalf("kubectl apply -k %s --dry-run=server: %v\n%s%s", d, err, out, errOut)
			}
			// Warnings are Pod Security violations, deprecated APIs, unknown
			// fields in lenient places...: none is acceptable.
			if strings.TrimSpace(errOut) != "" {
				t.Errorf("kubectl apply -k %s: warnings:\n%s", d, errOut)
			}
			if n := strings.Count(out, "(server dry run)"); n != len(rendered[d]) {
				t.Errorf("%s: %d objects accepted of %d:\n%s", d, n, len(rendered[d]), out)
			}
		}
	})

	t.Run("strict validation bites", func(t *testing.T) {
		// The same check with an unknown field must fail: the dry run above
		// really validates every field.
		for _, o := range rendered["k8s"] {
			if o.Kind != "StatefulSet" {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal(o.JSON, &m); err != nil {
				t.Fatal(err)
			}
			m["spec"].(map[string]any)["replica"] = 3
			b, _ := json.Marshal(m)
			_, errOut, err := cp.kubectlOut(t, tr.dir, b, "apply", "-f", "-", "--dry-run=server", "--validate=strict")
			if err == nil || !strings.Contains(errOut, `unknown field "spec.replica"`) {
				t.Fatalf("an unknown field was not refused: %v\n%s", err, errOut)
			}
		}
	})

	t.Run("deploy apply", func(t *testing.T) {
		out := cp.sh(t, tr.dir, steps["apply"])
		out += cp.sh(t, tr.dir, steps["extras"])
		if strings.Contains(out, "Warning") {
			t.Errorf("warnings while applying:\n%s", out)
		}
		for _, d := range dirs {
			for _, o := range rendered[d] {
				args := []string{"get", strings.ToLower(o.Kind) + "." + strings.Split(o.APIVersion+"/", "/")[0], o.Name, "-o", "name"}
				if !strings.Contains(o.APIVersion, "/") {
					args[1] = strings.ToLower(o.Kind)
				}
				if o.Namespace != "" {
					args = append(args, "-n", o.Namespace)
				}
				cp.kubectl(t, tr.dir, args...)
			}
		}
		if got := cp.kubectl(t, tr.dir, "-n", "gosty", "get", "statefulset", "gosty", "-o", "jsonpath={.spec.replicas}"); got != "3" {
			t.Fatalf("replicas %q after apply, want 3", got)
		}
		// Applying again works and creates nothing new. (kubectl's client-side
		// apply still sends no-op patches for volumeClaimTemplates and the
		// PDB selector, which the server fills with defaults.)
		again := cp.sh(t, tr.dir, steps["apply"])
		for _, l := range strings.Split(strings.TrimSpace(again), "\n") {
			if !strings.HasSuffix(l, " unchanged") && !strings.HasSuffix(l, " configured") {
				t.Errorf("second apply: %s", l)
			}
		}
	})
	if t.Failed() {
		return
	}

	t.Run("scale with the shipped Role", func(t *testing.T) {
		tokenFile := filepath.Join(t.TempDir(), "token")
		writeFile(t, tokenFile, []byte(cp.kubectl(t, tr.dir, "-n", "gosty", "create", "token", "gosty", "--duration=10m")))
		sc, err := kube.New(kube.Config{Host: cp.URL, CAData: cp.CA, BearerTokenFile: tokenFile,
			Namespace: "gosty", StatefulSet: "gosty"})
		if err != nil {
			t.Fatal(err)
		}
		srv := newScaleAPI(t, sc)
		status, body := postScale(t, srv, `{"replicas": 4}`)
		if status != http.StatusAccepted || body != "{\"replicas\":4}\n" {
			t.Fatalf("POST /api/v1/cluster/scale: %d %s", status, body)
		}
		if got := cp.kubectl(t, tr.dir, "-n", "gosty", "get", "statefulset", "gosty", "-o", "jsonpath={.spec.replicas}"); got != "4" {
			t.Fatalf(".spec.replicas = %q after scaling to 4", got)
		}
		if spec, _, err := sc.Replicas(context.Background()); err != nil || spec != 4 {
			t.Fatalf("Replicas() = %d, %v", spec, err)
		}
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/cluster", nil)
		req.Header.Set("Authorization", "Bearer api-token") // reads need it too
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), `"scalable":true`) {
			t.Fatalf("GET /api/v1/cluster: %s", b)
		}
	})

	t.Run("scale without the Role", func(t *testing.T) {
		cp.kubectl(t, tr.dir, "-n", "gosty", "create", "serviceaccount", "no-role")
		token := strings.TrimSpace(cp.kubectl(t, tr.dir, "-n", "gosty", "create", "token", "no-role", "--duration=10m"))
		sc, err := kube.New(kube.Config{Host: cp.URL, CAData: cp.CA, BearerToken: token,
			Namespace: "gosty", StatefulSet: "gosty"})
		if err != nil {
			t.Fatal(err)
		}
		status, body := postScale(t, newScaleAPI(t, sc), `{"replicas": 7}`)
		if status != http.StatusForbidden {
			t.Fatalf("status %d, want 403: %s", status, body)
		}
		var e struct {
			Error struct{ Code, Message string }
		}
		if err := json.Unmarshal([]byte(body), &e); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		for _, want := range []string{`cannot patch resource "statefulsets/scale"`, "system:serviceaccount:gosty:no-role", "k8s/rbac.yaml"} {
			if e.Error.Code != "forbidden" || !strings.Contains(e.Error.Message, want) {
				t.Fatalf("error %q %q, want code forbidden and a message with %q", e.Error.Code, e.Error.Message, want)
			}
		}
		t.Logf("403: %s", e.Error.Message)
		if got := cp.kubectl(t, tr.dir, "-n", "gosty", "get", "statefulset", "gosty", "-o", "jsonpath={.spec.replicas}"); got != "4" {
			t.Fatalf(".spec.replicas = %q, want 4 still", got)
		}
	})

	t.Run("the Role grants exactly the scale", func(t *testing.T) {
		as := "--as=system:serviceaccount:gosty:gosty"
		for _, c := range []struct {
			want string
			args []string
		}{
			{"yes", []string{"patch", "statefulsets.apps/gosty", "--subresource=scale", "-n", "gosty"}},
			{"yes", []string{"get", "statefulsets.apps/gosty", "--subresource=scale", "-n", "gosty"}},
			{"no", []string{"update", "statefulsets.apps/gosty", "--subresource=scale", "-n", "gosty"}},
			{"no", []string{"patch", "statefulsets.apps/gosty", "-n", "gosty"}},
			{"no", []string{"get", "statefulsets.apps/gosty", "-n", "gosty"}},
			{"no", []string{"patch", "statefulsets.apps/other", "--subresource=scale", "-n", "gosty"}},
			{"no", []string{"patch", "statefulsets.apps/gosty", "--subresource=scale", "-n", "default"}},
			{"no", []string{"get", "secrets", "-n", "gosty"}},
			{"no", []string{"list", "pods", "-n", "gosty"}},
		} {
			out, errOut, err := cp.kubectlOut(t, tr.dir, nil, append([]string{"auth", "can-i", as}, c.args...)...)
			if got := strings.TrimSpace(out); got != c.want {
				t.Errorf("can-i %s: %q (%v %s), want %s", strings.Join(c.args, " "), got, err, errOut, c.want)
			}
		}
	})

	t.Run("deploy scale", func(t *testing.T) {
		cp.sh(t, tr.dir, steps["scale"])
		if got := cp.kubectl(t, tr.dir, "-n", "gosty", "get", "statefulset", "gosty", "-o", "jsonpath={.spec.replicas}"); got != "5" {
			t.Fatalf(".spec.replicas = %q after the deploy step's kubectl scale, want 5", got)
		}
	})
}

// newScaleAPI serves the public API with the given Scaler (and stand-ins
// for the rest) behind an API token.
func newScaleAPI(t *testing.T, sc httpapi.Scaler) *httptest.Server {
	t.Helper()
	api, err := httpapi.New(httpapi.Config{
		Jobs: noJobs{}, Blobs: noJobs{}, Cluster: noJobs{}, Health: noJobs{},
		Registry: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		APIToken: "api-token", NodeName: "gosty-0", Scaler: sc,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func postScale(t *testing.T, srv *httptest.Server, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/cluster/scale", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer api-token")
	req.Header.Set("Content-Type", "application/json")
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// noJobs stands in for a node's job log, media, membership and health.
type noJobs struct{}

func (noJobs) Submit(context.Context, string, io.Reader, []byte) (cluster.Job, error) {
	return cluster.Job{}, errors.New("no jobs here")
}
func (noJobs) Job(string) (cluster.Job, bool)     { return cluster.Job{}, false }
func (noJobs) Summary(string) (cluster.Job, bool) { return cluster.Job{}, false }
func (noJobs) List(cluster.ListQuery) ([]cluster.Job, string, error) {
	return nil, "", nil
}
func (noJobs) Manifest(context.Context, cluster.Job) (*cluster.Manifest, error) {
	return nil, cluster.ErrNotFound
}
func (noJobs) ChangesSince(uint64) ([]string, uint64, bool) { return nil, 0, true }
func (noJobs) Progress(string) float64                      { return 0 }
func (noJobs) Cancel(context.Context, string) error         { return cluster.ErrNotFound }
func (noJobs) Changed() <-chan struct{}                     { return make(chan struct{}) }
func (noJobs) Status() any                                  { return map[string]string{"node": "gosty-0"} }
func (noJobs) Ready() error                                 { return nil }
func (noJobs) OpenBlob(context.Context, cluster.BlobRef, cluster.BlobRef) (io.ReadSeekCloser, error) {
	return nil, cluster.ErrNotFound
}
