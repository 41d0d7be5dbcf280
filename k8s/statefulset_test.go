package k8s_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/k8s/internal/kubedns"
	"github.com/gosty/gosty/k8s/internal/kubelet"
	"github.com/gosty/gosty/node/nodetest"
)

// Pod addresses of this test: 127.0.60.0/24 to 127.0.68.0/24 (other tests
// use other loopback subnets; 127.0.69.0/24 is cmd/gosty's
// TestScaleDownAtOnce).
var podSubnets = []string{"127.0.60", "127.0.61", "127.0.62", "127.0.63", "127.0.64",
	"127.0.65", "127.0.66", "127.0.67", "127.0.68"}

// TestStatefulSet runs the documented deployment (deployDoc) for real: kube-apiserver and
// kube-controller-manager (StatefulSet, EndpointSlice, garbage collector,
// claim protection), a node agent standing in for scheduler and kubelet
// (k8s/internal/kubelet: each pod a local gosty process on its own
// 127.0.6x.y address) and a cluster DNS (k8s/internal/kubedns) for the
// headless Service's name. It applies the deploy blocks verbatim, runs
// jobs, scales the StatefulSet to 5 and back to 2 with the documented
// commands while jobs run, and checks that the pods come and go as the
// controller decides, every job completes, raft follows the pods, nothing
// is lost, and the scaled-away pods' claims and volumes are deleted. Then a
// pod deleted by hand comes back on a new address with its volume.
//
// What the machine forces (no container runtime, one network and mount
// namespace) is done by the agent, not by patching the manifests: the
// image "gosty:latest" is the Dockerfile's ENTRYPOINT/CMD/ENV/WORKDIR with
// a gosty built by this test as /usr/local/bin/gosty; wildcard binds
// (GOSTY_BIND_ADDR=0.0.0.0, GOSTY_HTTP_ADDR=:8080) mean the pod's own IP;
// mount paths in the environment (/var/lib/gosty, /etc/gosty/keys/...)
// are host directories (a claim's, the Secret's files); the pod's DNS
// (dnsPolicy ClusterFirst, which the kubelet puts in the pod's
// resolv.conf) is GOSTY_DNS_SERVER pointing at the test's DNS;
// securityContext, resources and the ServiceAccount token volume are not
// applied.
func TestStatefulSet(t *testing.T) {
	if testing.Short() && !required() {
		t.Skip("starts a control plane, node processes and ffmpeg")
	}
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		lookPath(t, tool)
	}
	if _, err := os.Stat(filepath.Join(kubeBinDir(t), "kube-controller-manager")); err != nil {
		missing(t, "no kube-controller-manager in %s", kubeBinDir(t))
	}
	began := time.Now()
	cp := startControlPlane(t)
	bin := e2e.Binary(t)
	startControllerManager(t, cp)
	client := cp.clientset(t)
	img := dockerImage(t, bin)

	events := &e2e.Buffer{}
	logf := func(format string, args ...any) {
		fmt.Fprintf(events, "%6.1fs  %s\n", time.Since(began).Seconds(), fmt.Sprintf(format, args...))
	}
	dns, err := kubedns.Start(client, "127.0.0.1", "cluster.local", kubelet.HostIP)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dns.Close)
	podLogs := &e2e.Logs{}
	agent, err := kubelet.Start(kubelet.Config{
		Client: client, Node: "test-node", Namespace: "gosty", Root: t.TempDir(),
		Images:   map[string]kubelet.Image{"gosty:latest": img},
		ExtraEnv: []string{"GOSTY_DNS_SERVER=" + dns.Addr},
		Subnets:  podSubnets,
		Output:   podLogs.Writer,
		Logf:     logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		agent.Close()
		if t.Failed() {
			podLogs.Dump(t)
		}
		if d := os.Getenv("GOSTY_ARTIFACTS"); d != "" {
			dir := filepath.Join(d, "k8s-statefulset")
			podLogs.Save(t, dir)
			_ = os.WriteFile(filepath.Join(dir, "events.log"), []byte(events.Tail(1<<30)), 0o644)
			t.Logf("pod logs in %s", dir)
		}
		t.Logf("agent and controller events:\n%s", events.Tail(40000))
	})

	tr := newTree(t)
	steps := deployBlocks(t)
	for _, name := range []string{"keys", "apply", "scale", "scale-down"} {
		if steps[name] == "" {
			t.Fatalf("%s has no block marked <!-- k8s-test: %s -->", deployDoc, name)
		}
	}
	cp.sh(t, tr.dir, steps["keys"])
	cp.sh(t, tr.dir, steps["apply"])
	token := strings.TrimSpace(e2e.ReadFile(t, filepath.Join(tr.dir, "k8s", "secrets", "api-token")))
	k := &stsPods{t: t, c: client, ns: "gosty", logf: logf, token: token}

	// Three pods, ready, one cluster.
	k.waitPods(t, 3*time.Minute, []string{"gosty-0", "gosty-1", "gosty-2"})
	k.waitReadyReplicas(t, 3)
	k.waitRaft(t, []string{"gosty-0", "gosty-1", "gosty-2"})
	logf("3 pods ready, one raft cluster of 3 voters")

	// Clips long enough (in medium-preset encodes) that jobs still run when
	// the scaled-away nodes drain.
	const clipSeconds = 24
	dir := t.TempDir()
	clips := map[string]string{} // job id → source file
	submit := func(pod string) string {
		src := nodetest.GenClip(t, filepath.Join(dir, fmt.Sprintf("clip-%d.mp4", len(clips))),
			"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=640x360:rate=25:duration=%d", clipSeconds),
			"-f", "lavfi", "-i", fmt.Sprintf("sine=duration=%d:frequency=%d", clipSeconds, 300+100*len(clips)),
			"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest")
		id := e2e.UploadAuth(t, k.base(pod), token, src, `{"chunk_seconds":2,"preset":"medium"}`)
		clips[id] = src
		logf("job %s submitted to %s", id, pod)
		return id
	}
	submit("gosty-1")
	submit("gosty-2")

	// Up to five, the documented way.
	cp.sh(t, tr.dir, steps["scale"])
	logf("%s: %s", deployDoc, strings.TrimSpace(steps["scale"]))
	all := []string{"gosty-0", "gosty-1", "gosty-2", "gosty-3", "gosty-4"}
	k.waitPods(t, 2*time.Minute, all)
	k.waitReadyReplicas(t, 5)
	k.waitRaft(t, all)
	logf("5 pods ready, raft has all 5 (3 voters)")

	// Jobs whose sources land on the pods about to go away.
	submit("gosty-3")
	submit("gosty-4")
	running := k.unfinished(t, clips)
	if len(running) == 0 {
		t.Fatal("every job finished before the scale-down: it would test nothing")
	}
	logf("scaling down with %d jobs unfinished: %v", len(running), running)

	// Down to two, the documented way: the controller deletes gosty-4, -3
	// and -2 at once (podManagementPolicy Parallel); each drains.
	claimDirs := map[string]string{}
	for _, p := range all {
		claimDirs[p] = agent.ClaimDir("data-" + p)
		if claimDirs[p] == "" {
			t.Fatalf("no claim data-%s", p)
		}
	}
	cp.sh(t, tr.dir, steps["scale-down"])
	logf("%s: %s", deployDoc, strings.TrimSpace(steps["scale-down"]))
	k.waitDeleting(t, []string{"gosty-2", "gosty-3", "gosty-4"})
	// After the preStop hook each gets SIGTERM, turns unready and drains:
	// with jobs still running.
	nodetest.WaitFor(t, 60*time.Second, "gosty-2..4 to turn unready (SIGTERM)", func() bool {
		for _, p := range []string{"gosty-2", "gosty-3", "gosty-4"} {
			resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(k.base(p) + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return false
				}
			}
		}
		return true
	})
	running = k.unfinished(t, clips)
	logf("gosty-2..4 unready and draining with %d jobs unfinished: %v", len(running), running)
	if len(running) == 0 {
		t.Fatal("every job finished before the scaled-away nodes got SIGTERM: the drain would test nothing")
	}
	k.waitPods(t, 3*time.Minute, []string{"gosty-0", "gosty-1"})
	k.waitReadyReplicas(t, 2)
	logf("scaled-away pods are gone")

	// Their claims and volumes follow (whenScaled: Delete); the others stay.
	nodetest.WaitFor(t, 60*time.Second, "claims of gosty-2..4 deleted", func() bool {
		for _, p := range []string{"gosty-2", "gosty-3", "gosty-4"} {
			if _, err := client.CoreV1().PersistentVolumeClaims("gosty").Get(context.Background(), "data-"+p, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return false
			}
			if _, err := os.Stat(claimDirs[p]); !os.IsNotExist(err) {
				return false
			}
		}
		return true
	})
	for _, p := range []string{"gosty-0", "gosty-1"} {
		if agent.ClaimDir("data-"+p) != claimDirs[p] {
			t.Fatalf("claim data-%s changed or is gone", p)
		}
	}
	logf("claims and volumes of gosty-2..4 deleted")

	// Raft follows the pods; every job completes.
	live := []string{"gosty-0", "gosty-1"}
	k.waitRaft(t, live)
	ids := slices.Sorted(maps.Keys(clips))
	for _, id := range ids {
		for _, p := range live { // each node's view of the log
			e2e.WaitDone(t, 4*time.Minute, k.token, id, k.base(p))
		}
		logf("job %s done", id)
	}

	// Nothing is lost: every published file of every job is served by both
	// remaining pods with the same bytes, and every source and published
	// file has two copies (the replication factor) on their volumes.
	want := map[string]string{} // sha256 → what
	for _, id := range ids {
		var j httpapi.JobView
		if err := e2e.GetJSONAuth(k.base("gosty-0")+"/api/v1/jobs/"+id, k.token, &j); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(clips[id])
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		want[hex.EncodeToString(sum[:])] = "source of " + id
		files := crawlOutputs(t, k.base("gosty-0"), token, j)
		for _, f := range files {
			a, b := fetchSHA(t, k.base("gosty-0")+f, token), fetchSHA(t, k.base("gosty-1")+f, token)
			if a != b {
				t.Fatalf("%s differs between gosty-0 and gosty-1", f)
			}
			want[a] = f
		}
		checkDuration(t, k.base("gosty-1")+j.Outputs.HLS, clipSeconds)
	}
	for deadline := time.Now().Add(60 * time.Second); ; {
		var short []string
		for h, what := range want {
			if n := e2e.Holders(h, claimDirs["gosty-0"], claimDirs["gosty-1"]); n < 2 {
				short = append(short, fmt.Sprintf("%s: %d copies", what, n))
			}
		}
		if len(short) == 0 {
			break
		}
		if time.Now().After(deadline) {
			sort.Strings(short)
			t.Fatalf("%d of %d blobs lack copies on the remaining pods:\n%s", len(short), len(want), strings.Join(short, "\n"))
		}
		time.Sleep(500 * time.Millisecond)
	}
	logf("%d blobs (sources and published files) have two copies on the remaining pods", len(want))

	// A pod deleted by hand comes back under its name on a new address,
	// with its claim (the same volume, so the same raft ID), and rejoins.
	old, err := client.CoreV1().Pods("gosty").Get(context.Background(), "gosty-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	oldBase, oldID := k.base("gosty-1"), k.raftID(t, "gosty-1")
	cp.kubectl(t, tr.dir, "-n", "gosty", "delete", "pod", "gosty-1", "--wait=false")
	logf("kubectl -n gosty delete pod gosty-1")
	k.waitPods(t, 3*time.Minute, live)
	renewed, err := client.CoreV1().Pods("gosty").Get(context.Background(), "gosty-1", metav1.GetOptions{})
	if err != nil || renewed.UID == old.UID {
		t.Fatalf("gosty-1 was not made again: %v", err)
	}
	k.waitRaft(t, live)
	if k.base("gosty-1") == oldBase {
		t.Errorf("gosty-1 came back on its old address %s", oldBase)
	}
	if got := agent.ClaimDir("data-gosty-1"); got != claimDirs["gosty-1"] {
		t.Errorf("gosty-1 came back on claim dir %s, want %s", got, claimDirs["gosty-1"])
	}
	if id := k.raftID(t, "gosty-1"); id != oldID {
		t.Errorf("gosty-1 came back as raft server %s, was %s: its volume was not kept", id, oldID)
	}
	for _, id := range ids {
		var j httpapi.JobView
		if err := e2e.GetJSONAuth(k.base("gosty-1")+"/api/v1/jobs/"+id, k.token, &j); err != nil || j.State != "done" {
			t.Fatalf("job %s on the new gosty-1: %v %s", id, err, j.State)
		}
		fetch(t, k.base("gosty-1")+j.Outputs.HLS, token)
	}
	logf("gosty-1 is back on %s with its volume and raft ID", k.base("gosty-1"))
	t.Logf("done in %v", time.Since(began).Round(time.Second))
}

// raftID is the raft server ID of a pod's node, from its own view.
func (k *stsPods) raftID(t *testing.T, pod string) string {
	t.Helper()
	var v httpapi.ClusterStatus
	if err := e2e.GetJSONAuth(k.base(pod)+"/api/v1/cluster", k.token, &v); err != nil {
		t.Fatal(err)
	}
	for _, s := range v.Raft {
		if s.Name == pod {
			return s.ID
		}
	}
	t.Fatalf("%s is not in its own raft configuration: %+v", pod, v.Raft)
	return ""
}

// dockerImage is what the Dockerfile's final stage runs, with bin as its
// /usr/local/bin/gosty.
func dockerImage(t *testing.T, bin string) kubelet.Image {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	// Join continuation lines, keep the last stage.
	text := regexp.MustCompile(`\\\n`).ReplaceAllString(string(b), " ")
	var img kubelet.Image
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		instr, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "FROM":
			img = kubelet.Image{}
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &img.Entrypoint); err != nil {
				t.Fatalf("Dockerfile ENTRYPOINT must be exec form: %v", err)
			}
		case "CMD":
			if err := json.Unmarshal([]byte(rest), &img.Cmd); err != nil {
				t.Fatalf("Dockerfile CMD must be exec form: %v", err)
			}
		case "ENV":
			for _, kv := range strings.Fields(rest) {
				if !strings.Contains(kv, "=") {
					t.Fatalf("Dockerfile ENV %q: want KEY=value", kv)
				}
				img.Env = append(img.Env, kv)
			}
		case "WORKDIR":
			img.WorkingDir = rest
		}
	}
	if len(img.Entrypoint) == 0 || img.Entrypoint[0] != "/usr/local/bin/gosty" {
		t.Fatalf("Dockerfile ENTRYPOINT %q: want /usr/local/bin/gosty", img.Entrypoint)
	}
	img.Files = map[string]string{"/usr/local/bin/gosty": bin}
	return img
}

// clientset talks to the control plane as admin.
func (cp *controlPlane) clientset(t *testing.T) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(&rest.Config{Host: cp.URL, BearerToken: cp.AdminToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: cp.CA}, QPS: 50, Burst: 100})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// stsPods is the test's view of the StatefulSet's pods.
type stsPods struct {
	t    *testing.T
	c    kubernetes.Interface
	ns   string
	logf func(string, ...any)
	// token is the API token (k8s/secrets/api-token): reads need it.
	token string
	mu    sync.Mutex
	ips   map[string]string
}

func (k *stsPods) pods() []corev1.Pod {
	l, err := k.c.CoreV1().Pods(k.ns).List(context.Background(), metav1.ListOptions{
		LabelSelector: "app.kubernetes.io/component=node"})
	if err != nil {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.ips == nil {
		k.ips = map[string]string{}
	}
	for _, p := range l.Items {
		if p.Status.PodIP != "" {
			k.ips[p.Name] = kubelet.HostIP(p.Status.PodIP)
		}
	}
	return l.Items
}

// base is a pod's public API, at its IP (port 8080, the container's http)
// as this host reaches it.
func (k *stsPods) base(pod string) string {
	k.mu.Lock()
	ip := k.ips[pod]
	k.mu.Unlock()
	if ip == "" {
		k.t.Fatalf("no IP known for %s", pod)
	}
	return "http://" + ip + ":8080"
}

func podReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// waitPods waits until exactly these pods exist, all running and ready.
func (k *stsPods) waitPods(t *testing.T, d time.Duration, want []string) {
	t.Helper()
	var last string
	nodetest.WaitFor(t, d, "pods "+strings.Join(want, ","), func() bool {
		var got []string
		ok := true
		for _, p := range k.pods() {
			s := fmt.Sprintf("%s(%s %s ready=%v deleting=%v)", p.Name, p.Status.Phase, p.Status.PodIP, podReady(p), p.DeletionTimestamp != nil)
			got = append(got, s)
			ok = ok && slices.Contains(want, p.Name) && podReady(p) && p.DeletionTimestamp == nil
		}
		sort.Strings(got)
		if s := strings.Join(got, " "); s != last {
			last = s
			k.logf("pods: %s", s)
		}
		return ok && len(got) == len(want)
	})
}

// waitDeleting waits until all these pods are being deleted at the same
// time: the controller's Parallel scale-down.
func (k *stsPods) waitDeleting(t *testing.T, names []string) {
	t.Helper()
	nodetest.WaitFor(t, 30*time.Second, strings.Join(names, ", ")+" all terminating at once", func() bool {
		deleting := 0
		for _, p := range k.pods() {
			if slices.Contains(names, p.Name) && p.DeletionTimestamp != nil {
				deleting++
			}
		}
		return deleting == len(names)
	})
	k.logf("%s terminating at once", strings.Join(names, ", "))
}

func (k *stsPods) waitReadyReplicas(t *testing.T, n int32) {
	t.Helper()
	nodetest.WaitFor(t, 60*time.Second, fmt.Sprintf("StatefulSet status: %d ready replicas", n), func() bool {
		s, err := k.c.AppsV1().StatefulSets(k.ns).Get(context.Background(), "gosty", metav1.GetOptions{})
		return err == nil && s.Status.Replicas == n && s.Status.ReadyReplicas == n && s.Status.ObservedGeneration == s.Generation
	})
}

// waitRaft waits until every listed pod sees a leader and a raft
// configuration of exactly these pods with min(3, n) voters.
func (k *stsPods) waitRaft(t *testing.T, names []string) {
	t.Helper()
	want := slices.Sorted(slices.Values(names))
	var last string
	nodetest.WaitFor(t, 2*time.Minute, "raft configuration = "+strings.Join(want, ","), func() bool {
		for _, p := range names {
			var v httpapi.ClusterStatus
			if e2e.GetJSONAuth(k.base(p)+"/api/v1/cluster", k.token, &v) != nil || v.Leader == "" {
				return false
			}
			got, voters := e2e.Raft(v)
			s := fmt.Sprintf("%s sees leader %s, raft %v with %d voters", p, v.Leader, got, voters)
			if s != last {
				last = s
				k.logf("%s", s)
			}
			if !slices.Equal(got, want) || voters != min(3, len(want)) {
				return false
			}
		}
		return true
	})
}

// unfinished lists the jobs not done yet.
func (k *stsPods) unfinished(t *testing.T, jobs map[string]string) []string {
	var out []string
	for id := range jobs {
		var j httpapi.JobView
		if err := e2e.GetJSONAuth(k.base("gosty-0")+"/api/v1/jobs/"+id, k.token, &j); err != nil {
			t.Fatal(err)
		}
		if j.State != "done" {
			out = append(out, id+":"+string(j.State))
		}
	}
	sort.Strings(out)
	return out
}

// crawlOutputs lists the URL paths of a job's published files: the HLS
// master, its media playlists and their segments and init sections, the
// DASH manifest and the MP4s.
func crawlOutputs(t *testing.T, base, token string, j httpapi.JobView) []string {
	t.Helper()
	seen := map[string]bool{}
	var out []string
	add := func(p string) bool {
		if seen[p] {
			return false
		}
		seen[p] = true
		out = append(out, p)
		return true
	}
	uriAttr := regexp.MustCompile(`URI="([^"]+)"`)
	var walk func(p string)
	walk = func(p string) {
		if !add(p) || !strings.HasSuffix(p, ".m3u8") {
			return
		}
		body := fetch(t, base+p, token)
		sc := bufio.NewScanner(bytes.NewReader(body))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			var refs []string
			if strings.HasPrefix(line, "#") {
				for _, m := range uriAttr.FindAllStringSubmatch(line, -1) {
					refs = append(refs, m[1])
				}
			} else if line != "" {
				refs = append(refs, line)
			}
			for _, ref := range refs {
				u, err := url.Parse(p)
				if err != nil {
					t.Fatal(err)
				}
				r, err := u.Parse(ref)
				if err != nil {
					t.Fatal(err)
				}
				walk(r.Path)
			}
		}
	}
	if j.Outputs == nil || j.Outputs.HLS == "" || j.Outputs.DASH == "" || len(j.Outputs.MP4) == 0 {
		t.Fatalf("job %s lacks outputs: %+v", j.ID, j.Outputs)
	}
	walk(j.Outputs.HLS)
	add(j.Outputs.DASH)
	for _, p := range j.Outputs.MP4 {
		add(p)
	}
	return out
}

// fetch reads u with the API token, which files need (or a signature).
func fetch(t *testing.T, u, token string) []byte {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	return b
}

// playbackQuery is the signature signed playback adds to every URI of a
// playlist it serves (HLS, and DASH with the & escaped).
var playbackQuery = regexp.MustCompile(`(\?|&amp;|&)exp=[0-9]+(&amp;|&)sig=[0-9a-f]{64}`)

// fetchSHA is the sha256 of a published file as stored: a playlist comes
// back with its URIs signed (the manifests' signed playback), and the
// signature is taken out again.
func fetchSHA(t *testing.T, u, token string) string {
	t.Helper()
	b := fetch(t, u, token)
	if p, _, _ := strings.Cut(u, "?"); strings.HasSuffix(p, ".m3u8") || strings.HasSuffix(p, ".mpd") {
		b = playbackQuery.ReplaceAll(b, nil)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// checkDuration probes an HLS URL with ffprobe.
func checkDuration(t *testing.T, u string, secs float64) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-protocol_whitelist", "http,tcp",
		"-show_entries", "format=duration", "-of", "csv=p=0", u).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", u, err)
	}
	var d float64
	fmt.Sscanf(strings.TrimSpace(string(out)), "%g", &d)
	if d < secs-0.2 || d > secs+0.2 {
		t.Fatalf("%s: duration %v, want %v", u, d, secs)
	}
}
