package k8s_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/node/nodetest"
)

// controlPlane is an etcd and a kube-apiserver on loopback, on free ports,
// with data in a temp dir; both die with the test (t.Cleanup, and
// Pdeathsig should the test binary itself be killed).
type controlPlane struct {
	URL        string // https://127.0.0.1:port
	CA         []byte // PEM bundle that verifies the serving certificate
	AdminToken string // system:masters (static token file)
	Kubeconfig string // for kubectl, as admin
	kubectlBin string
	dir        string
}

// process is a child that is stopped on cleanup and whose output is kept.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *e2e.Buffer
	done chan struct{}
}

func start(t *testing.T, name string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	out := &e2e.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &process{name: name, cmd: cmd, out: out, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s output (tail):\n%s", name, out.Tail(6000))
		}
	})
	return p
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitHTTP polls url until it answers 200 or the process dies.
func waitHTTP(t *testing.T, p *process, client *http.Client, url, token string, timeout time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && !p.exited() {
		req, _ := http.NewRequest("GET", url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

// startControlPlane starts etcd and kube-apiserver, or skips (fails under
// GOSTY_REQUIRE_KUBE=1) when a piece is missing. Ports are picked at run
// time; a start that loses a port race is tried again.
func startControlPlane(t *testing.T) *controlPlane {
	t.Helper()
	etcd := lookPath(t, "etcd")
	kubectl := lookPath(t, "kubectl")
	apiserver := filepath.Join(kubeBinDir(t), "kube-apiserver")
	if _, err := os.Stat(apiserver); err != nil {
		missing(t, "no kube-apiserver in %s", filepath.Dir(apiserver))
	}
	dir := t.TempDir()
	cp := &controlPlane{kubectlBin: kubectl, dir: dir}

	// Service account token signing key; the static admin token.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	writeFile(t, filepath.Join(dir, "sa.key"), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	writeFile(t, filepath.Join(dir, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	tok := make([]byte, 16)
	_, _ = rand.Read(tok)
	cp.AdminToken = hex.EncodeToString(tok)
	writeFile(t, filepath.Join(dir, "tokens.csv"), []byte(cp.AdminToken+",admin,admin-uid,system:masters\n"))

	var etcdURL string
	for attempt := 1; ; attempt++ {
		client, peer := nodetest.FreePort(t), nodetest.FreePort(t)
		etcdURL = fmt.Sprintf("http://127.0.0.1:%d", client)
		peerURL := fmt.Sprintf("http://127.0.0.1:%d", peer)
		p := start(t, "etcd", etcd, "--name", "gosty-test",
			"--data-dir", filepath.Join(dir, fmt.Sprintf("etcd-%d", attempt)),
			"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
			"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
			"--initial-cluster", "gosty-test="+peerURL, "--log-level", "warn")
		if waitHTTP(t, p, http.DefaultClient, etcdURL+"/health", "", 30*time.Second) {
			break
		}
		if attempt == 3 {
			t.Fatalf("etcd did not start:\n%s", p.out.Tail(4000))
		}
	}

	insecure := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // only to poll readiness
	for attempt := 1; ; attempt++ {
		port := nodetest.FreePort(t)
		certDir := filepath.Join(dir, fmt.Sprintf("certs-%d", attempt))
		cp.URL = "https://127.0.0.1:" + strconv.Itoa(port)
		p := start(t, "kube-apiserver", apiserver,
			"--etcd-servers", etcdURL,
			"--etcd-prefix", "/registry",
			"--bind-address", "127.0.0.1",
			"--advertise-address", "127.0.0.1",
			"--endpoint-reconciler-type", "none", // no kubernetes Endpoints on loopback
			"--secure-port", strconv.Itoa(port),
			"--cert-dir", certDir,
			"--service-cluster-ip-range", "10.96.0.0/24", // addresses are only allocated, never dialed
			"--service-account-issuer", "https://kubernetes.default.svc",
			"--service-account-key-file", filepath.Join(dir, "sa.pub"),
			"--service-account-signing-key-file", filepath.Join(dir, "sa.key"),
			"--token-auth-file", filepath.Join(dir, "tokens.csv"),
			"--authorization-mode", "RBAC",
			"--v", "1")
		if waitHTTP(t, p, insecure, cp.URL+"/readyz", cp.AdminToken, 90*time.Second) {
			ca, err := os.ReadFile(filepath.Join(certDir, "apiserver.crt"))
			if err != nil {
				t.Fatal(err)
			}
			cp.CA = ca
			break
		}
		if attempt == 3 || !p.exited() {
			t.Fatalf("kube-apiserver did not become ready:\n%s", p.out.Tail(6000))
		}
	}

	writeFile(t, filepath.Join(dir, "ca.crt"), cp.CA)
	cp.Kubeconfig = filepath.Join(dir, "kubeconfig")
	writeFile(t, cp.Kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: admin
  user:
    token: %s
contexts:
- name: test
  context: {cluster: test, user: admin}
current-context: test
`, cp.URL, filepath.Join(dir, "ca.crt"), cp.AdminToken)))
	return cp
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// env is the environment kubectl and the deploy steps run with: this control
// plane only, and no cache or config of the user's.
func (cp *controlPlane) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KUBECONFIG=") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	return append(env, "KUBECONFIG="+cp.Kubeconfig, "HOME="+cp.dir)
}

// kubectlOut runs kubectl in dir and returns stdout and stderr.
func (cp *controlPlane) kubectlOut(t *testing.T, dir string, stdin []byte, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cp.kubectlBin, args...)
	cmd.Dir = dir
	cmd.Env = cp.env()
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stripSkewWarning(stderr.String()), err
}

// kubectl runs kubectl and fails the test on an error.
func (cp *controlPlane) kubectl(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, errOut, err := cp.kubectlOut(t, dir, nil, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// stripSkewWarning drops kubectl's note that it is older than the server
// (this machine's kubectl vs the pinned kube-apiserver): not about us.
func stripSkewWarning(s string) string {
	var keep []string
	for _, l := range strings.SplitAfter(s, "\n") {
		if !strings.Contains(l, "exceeds the supported minor version skew") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "")
}

// sh runs a deploy step (deployDoc) with bash in dir, against this control plane.
func (cp *controlPlane) sh(t *testing.T, dir, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(cp.env(), "PATH="+filepath.Dir(cp.kubectlBin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("deploy step failed: %v\n--- script\n%s--- output\n%s", err, script, out)
	}
	return stripSkewWarning(string(out))
}

// startControllerManager runs kube-controller-manager against the control
// plane with only the controllers a StatefulSet needs here: the StatefulSet
// controller (pods and claims, the claims' retention policy), EndpointSlices
// (for the headless Service's DNS name), the garbage collector (which
// deletes a scaled-away pod's claim once the StatefulSet controller made
// the pod its owner) and claim protection (which lets a claim go once no
// pod uses it). Nothing schedules, provisions or evicts: the test's node
// agent does the kubelet's and scheduler's part. It runs as the static
// admin, without leader election or a serving port.
func startControllerManager(t *testing.T, cp *controlPlane) *process {
	t.Helper()
	bin := filepath.Join(kubeBinDir(t), "kube-controller-manager")
	if _, err := os.Stat(bin); err != nil {
		missing(t, "no kube-controller-manager in %s", filepath.Dir(bin))
	}
	p := start(t, "kube-controller-manager", bin,
		"--kubeconfig", cp.Kubeconfig,
		"--controllers", "statefulset-controller,endpointslice-controller,garbage-collector-controller,persistentvolumeclaim-protection-controller",
		"--leader-elect=false",
		"--secure-port", "0",
		"--use-service-account-credentials=false",
		"--v", "1")
	// No serving port to poll: it is up when the four controllers started
	// and the garbage collector has synced (it logs both).
	deadline := time.Now().Add(60 * time.Second)
	for {
		out := p.out.Tail(1 << 20)
		if strings.Count(out, `"Controller starting..."`) == 4 && strings.Contains(out, "Proceeding to collect garbage") {
			break
		}
		if p.exited() || time.Now().After(deadline) {
			t.Fatalf("kube-controller-manager did not start:\n%s", p.out.Tail(6000))
		}
		time.Sleep(200 * time.Millisecond)
	}
	return p
}
