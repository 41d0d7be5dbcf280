// Package kubelet is a test-only stand-in for a Kubernetes node: scheduler
// and kubelet in one, for the k8s/ tests, which run real control-plane
// binaries (kube-apiserver, kube-controller-manager) but no container
// runtime. It is never built into gosty.
//
// An Agent registers a Node (Ready), binds every unscheduled pod of its
// namespace to it through the pods/binding subresource (there is no
// scheduler), and runs each pod's containers as local processes:
//
//   - Each pod gets its own loopback address (from Config.Subnets, which
//     are 127.0.x.0/24s), new for every pod. The API server refuses
//     loopback addresses in EndpointSlices, so the pod's status reports the
//     address translated into 10.244.0.0/16 (127.0.60.3 is 10.244.60.3,
//     see PodIP and HostIP); the pod itself sees its host address (the
//     downward API's status.podIP, its binds), and so do the probes and the
//     test's DNS (k8s/internal/kubedns translates back). There is no network
//     namespace, so a container that binds the wildcard address would take
//     the port on every pod's address: an environment value (or argument)
//     "0.0.0.0", "0.0.0.0:PORT" or ":PORT" becomes the pod's address (with
//     the port) — the pod's "all interfaces".
//   - There is no mount namespace either: a volume is a host directory and
//     every environment value (the image's too) and argument of the pod
//     spec that names a mount path (or a file under it), or a file of the
//     image (Image.Files), is rewritten to the host path; so is the working
//     directory. A persistentVolumeClaim volume is a directory per claim
//     (keyed by the claim's UID, so that a claim deleted and made again
//     starts empty); it outlives the pod and is removed when the claim is
//     deleted. Nothing provisions or binds: claims stay Pending. Secret and configMap volumes are
//     written out per pod (items, modes); emptyDir is a per-pod directory;
//     projected volumes (the ServiceAccount token) and downwardAPI volumes
//     are not provided, and neither is KUBERNETES_SERVICE_HOST: a pod here
//     cannot reach the API server as its ServiceAccount.
//   - The environment is the image's (Config.Images), then the container's
//     env and envFrom, resolved as the kubelet does: fieldRef (metadata.name,
//     .namespace, .uid, .labels['k'], .annotations['k'], spec.nodeName,
//     spec.serviceAccountName, status.podIP(s), status.hostIP(s)),
//     resourceFieldRef, secretKeyRef, configMapKeyRef and $(VAR)
//     references; then Config.ExtraEnv (what the kubelet's DNS policy and
//     the pod's resolv.conf would provide, say).
//   - Command and args default to the image's entrypoint and cmd. The
//     process runs in its own process group, as the agent's user:
//     securityContext, resources, image pulls and the read-only root file
//     system are not enforced.
//   - Startup, liveness and readiness probes (httpGet, tcpSocket, exec) run
//     with their periods and thresholds; readiness drives the pod's Ready
//     and ContainersReady conditions. A container that exits or fails its
//     liveness probe is restarted (restartPolicy Always) with back-off.
//   - On deletion (a deletionTimestamp) the agent runs the preStop hook
//     (exec: the command, run locally with the container's environment;
//     httpGet: the request), sends SIGTERM, waits for the rest of the grace
//     period, SIGKILLs the process group, and deletes the pod with grace 0,
//     as the kubelet does.
//
// Only one container per pod is supported (init containers and sidecars
// are refused with an event-like log line).
package kubelet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// Image is what an image reference runs: the parts of an image's config
// the kubelet uses.
type Image struct {
	Entrypoint []string
	Cmd        []string
	Env        []string // KEY=value
	WorkingDir string
	// Files maps paths in the image (e.g. /usr/local/bin/gosty) to the
	// host files that stand in for them.
	Files map[string]string
}

// clusterPrefix is the pod network as the API sees it (see PodIP).
const clusterPrefix = "10.244."

// PodIP is the address the API shows for a pod at hostIP (a 127.0.x.y
// address): 10.244.x.y. EndpointSlices may not hold loopback addresses.
func PodIP(hostIP string) string {
	if rest, ok := strings.CutPrefix(hostIP, "127.0."); ok {
		return clusterPrefix + rest
	}
	return hostIP
}

// HostIP is where the pod whose API address is podIP listens on this host.
func HostIP(podIP string) string {
	if rest, ok := strings.CutPrefix(podIP, clusterPrefix); ok {
		return "127.0." + rest
	}
	return podIP
}

// Config configures an Agent.
type Config struct {
	Client    kubernetes.Interface
	Node      string // the Node object this agent is
	Namespace string // pods and claims it serves
	Root      string // host directory for volumes and claims
	// Images maps image references (as in the pod spec, e.g. "gosty:latest")
	// to what they run.
	Images map[string]Image
	// ExtraEnv is added to every container's environment, last.
	ExtraEnv []string
	// Subnets are the first three octets of loopback /24s pod addresses
	// come from, e.g. "127.0.60"; addresses are handed out in order, never
	// reused while the agent runs (a new pod gets a new IP, as with most
	// CNIs).
	Subnets []string
	// Output receives each container's stdout and stderr.
	Output func(pod string) io.Writer
	// Logf logs what the agent does.
	Logf func(format string, args ...any)
	// RestartBackoff is the first restart delay of a container that exited
	// (doubling up to 5 minutes); default 10 s, as the kubelet's.
	RestartBackoff time.Duration
}

// Agent is a node: scheduler and kubelet for one namespace.
type Agent struct {
	cfg     Config
	client  kubernetes.Interface
	factory informers.SharedInformerFactory
	pods    corelisters.PodLister
	claims  corelisters.PersistentVolumeClaimLister
	ctx     context.Context
	cancel  context.CancelFunc
	kick    chan struct{}
	wg      sync.WaitGroup

	mu      sync.Mutex
	dirty   map[string]bool          // pod keys to sync
	runners map[types.UID]*podRunner // running (or stopping) pods
	ips     map[string]types.UID     // pod IPs in use
	nextIP  int
}

// Start registers the Node and starts serving pods until Close.
func Start(cfg Config) (*Agent, error) {
	if cfg.Client == nil || cfg.Node == "" || cfg.Namespace == "" || cfg.Root == "" || len(cfg.Subnets) == 0 {
		return nil, errors.New("kubelet: client, node, namespace, root and subnets are required")
	}
	for _, sn := range cfg.Subnets {
		if !strings.HasPrefix(sn, "127.0.") || strings.Count(sn, ".") != 2 {
			return nil, fmt.Errorf("kubelet: subnet %q: want 127.0.x", sn)
		}
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.Output == nil {
		cfg.Output = func(string) io.Writer { return io.Discard }
	}
	if cfg.RestartBackoff == 0 {
		cfg.RestartBackoff = 10 * time.Second
	}
	for _, d := range []string{"pods", "claims"} {
		if err := os.MkdirAll(filepath.Join(cfg.Root, d), 0o755); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &Agent{
		cfg: cfg, client: cfg.Client, ctx: ctx, cancel: cancel,
		kick: make(chan struct{}, 1), dirty: map[string]bool{},
		runners: map[types.UID]*podRunner{}, ips: map[string]types.UID{},
	}
	if err := a.registerNode(ctx); err != nil {
		cancel()
		return nil, err
	}
	a.factory = informers.NewSharedInformerFactoryWithOptions(cfg.Client, 0, informers.WithNamespace(cfg.Namespace))
	podInf := a.factory.Core().V1().Pods()
	claimInf := a.factory.Core().V1().PersistentVolumeClaims()
	a.pods, a.claims = podInf.Lister(), claimInf.Lister()
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			a.enqueue(key)
		}
	}
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, obj any) { enqueue(obj) }, DeleteFunc: enqueue,
	}); err != nil {
		cancel()
		return nil, err
	}
	if _, err := claimInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: a.claimDeleted,
	}); err != nil {
		cancel()
		return nil, err
	}
	a.factory.Start(ctx.Done())
	for typ, ok := range a.factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			cancel()
			return nil, fmt.Errorf("kubelet: %v cache did not sync", typ)
		}
	}
	a.wg.Add(1)
	go a.loop()
	return a, nil
}

// Close stops the agent and kills every container (SIGKILL, no grace):
// the end of a test, not a node drain. The Node object stays.
func (a *Agent) Close() {
	a.cancel()
	a.mu.Lock()
	runners := make([]*podRunner, 0, len(a.runners))
	for _, r := range a.runners {
		runners = append(runners, r)
	}
	a.mu.Unlock()
	for _, r := range runners {
		r.kill()
	}
	a.wg.Wait()
	a.factory.Shutdown()
}

// ClaimDir is the host directory of a claim's volume ("" if the claim
// does not exist).
func (a *Agent) ClaimDir(name string) string {
	pvc, err := a.claims.PersistentVolumeClaims(a.cfg.Namespace).Get(name)
	if err != nil {
		return ""
	}
	return a.claimDir(pvc.Name, pvc.UID)
}

func (a *Agent) claimDir(name string, uid types.UID) string {
	return filepath.Join(a.cfg.Root, "claims", name+"-"+string(uid))
}

// claimDeleted removes a deleted claim's directory: its volume is gone
// (the agent is its own provisioner, reclaim policy Delete).
func (a *Agent) claimDeleted(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	pvc, ok := obj.(*corev1.PersistentVolumeClaim)
	if !ok {
		return
	}
	dir := a.claimDir(pvc.Name, pvc.UID)
	if err := os.RemoveAll(dir); err != nil {
		a.cfg.Logf("claim %s deleted: removing %s: %v", pvc.Name, dir, err)
		return
	}
	a.cfg.Logf("claim %s deleted: volume removed", pvc.Name)
}

func (a *Agent) registerNode(ctx context.Context) error {
	now := metav1.Now()
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: a.cfg.Node, Labels: map[string]string{
			"kubernetes.io/hostname": a.cfg.Node, "kubernetes.io/os": "linux"}},
	}
	created, err := a.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		created, err = a.client.CoreV1().Nodes().Get(ctx, a.cfg.Node, metav1.GetOptions{})
	}
	if err != nil {
		return fmt.Errorf("kubelet: register node: %w", err)
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("64"), corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods: resource.MustParse("110"), corev1.ResourceEphemeralStorage: resource.MustParse("1Ti"),
	}
	created.Status = corev1.NodeStatus{
		Capacity: capacity, Allocatable: capacity,
		Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			Message: "test node agent is posting ready status", LastHeartbeatTime: now, LastTransitionTime: now,
		}},
		Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"},
			{Type: corev1.NodeHostName, Address: a.cfg.Node}},
		NodeInfo: corev1.NodeSystemInfo{OperatingSystem: "linux", Architecture: "amd64",
			KubeletVersion: "test-agent", ContainerRuntimeVersion: "local-process://0"},
	}
	if _, err := a.client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("kubelet: node status: %w", err)
	}
	return nil
}

func (a *Agent) enqueue(key string) {
	a.mu.Lock()
	a.dirty[key] = true
	a.mu.Unlock()
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// loop syncs dirty pods as they change, and every pod every 2 s (retries).
func (a *Agent) loop() {
	defer a.wg.Done()
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-a.kick:
		case <-t.C:
			all, _ := a.pods.List(labels.Everything())
			a.mu.Lock()
			for _, p := range all {
				a.dirty[p.Namespace+"/"+p.Name] = true
			}
			a.mu.Unlock()
		}
		a.mu.Lock()
		keys := make([]string, 0, len(a.dirty))
		for k := range a.dirty {
			keys = append(keys, k)
		}
		a.dirty = map[string]bool{}
		a.mu.Unlock()
		sort.Strings(keys)
		for _, k := range keys {
			if err := a.sync(k); err != nil && a.ctx.Err() == nil {
				a.cfg.Logf("%s: %v (will retry)", k, err)
			}
		}
	}
}

// sync brings one pod's reality in line with its object.
func (a *Agent) sync(key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	pod, err := a.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		// Gone from the API (deleted with grace 0 by someone else, or by
		// us): nothing of it may keep running.
		a.mu.Lock()
		var gone []*podRunner
		for _, r := range a.runners {
			if r.ns == ns && r.name == name {
				gone = append(gone, r)
			}
		}
		a.mu.Unlock()
		for _, r := range gone {
			r.kill()
		}
		return nil
	}
	if err != nil {
		return err
	}
	if pod.Spec.NodeName == "" {
		if pod.DeletionTimestamp != nil {
			return nil
		}
		return a.bind(pod)
	}
	if pod.Spec.NodeName != a.cfg.Node {
		return nil
	}
	a.mu.Lock()
	r := a.runners[pod.UID]
	// An older pod of the same name (force-deleted) must be gone first.
	var stale []*podRunner
	for uid, o := range a.runners {
		if uid != pod.UID && o.ns == ns && o.name == name {
			stale = append(stale, o)
		}
	}
	a.mu.Unlock()
	for _, o := range stale {
		o.kill()
	}
	if pod.DeletionTimestamp != nil {
		if r == nil {
			return a.finalDelete(pod)
		}
		r.terminate(pod)
		return nil
	}
	if r == nil {
		if isTerminal(pod) {
			return nil
		}
		return a.startPod(pod)
	}
	return nil
}

func isTerminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// bind is the scheduler: every pod goes to this node.
func (a *Agent) bind(pod *corev1.Pod) error {
	b := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: a.cfg.Node},
	}
	err := a.client.CoreV1().Pods(pod.Namespace).Bind(a.ctx, b, metav1.CreateOptions{})
	if err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
		return fmt.Errorf("bind: %w", err)
	}
	if err == nil {
		a.cfg.Logf("%s/%s: bound to %s", pod.Namespace, pod.Name, a.cfg.Node)
	}
	return nil
}

// finalDelete removes a pod whose containers have stopped (grace 0, as
// the kubelet does once a pod is terminated).
func (a *Agent) finalDelete(pod *corev1.Pod) error {
	zero := int64(0)
	err := a.client.CoreV1().Pods(pod.Namespace).Delete(a.ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &pod.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete: %w", err)
	}
	return nil
}

// allocIP hands out the next unused pod IP.
func (a *Agent) allocIP(uid types.UID) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	total := 254 * len(a.cfg.Subnets)
	for range total {
		k := a.nextIP % total
		a.nextIP++
		ip := fmt.Sprintf("%s.%d", a.cfg.Subnets[k/254], k%254+1)
		if _, used := a.ips[ip]; !used {
			a.ips[ip] = uid
			return ip, nil
		}
	}
	return "", errors.New("no free pod IP")
}

func (a *Agent) releaseIP(ip string) {
	a.mu.Lock()
	delete(a.ips, ip)
	a.mu.Unlock()
}

// patchStatus merges status into the pod's status subresource.
func (a *Agent) patchStatus(ns, name string, uid types.UID, status map[string]any) error {
	body := map[string]any{"metadata": map[string]any{"uid": uid}, "status": status}
	b, err := jsonMarshal(body)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = a.client.CoreV1().Pods(ns).Patch(ctx, name, types.MergePatchType, b, metav1.PatchOptions{}, "status")
	return err
}

// podDir is the host directory of a pod's own (non-claim) volumes.
func (a *Agent) podDir(uid types.UID) string { return filepath.Join(a.cfg.Root, "pods", string(uid)) }

func (a *Agent) image(ref string) (Image, bool) {
	if img, ok := a.cfg.Images[ref]; ok {
		return img, true
	}
	if !strings.Contains(ref[strings.LastIndex(ref, "/")+1:], ":") {
		img, ok := a.cfg.Images[ref+":latest"]
		return img, ok
	}
	return Image{}, false
}
