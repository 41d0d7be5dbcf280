package k8s_test

import (
	"bytes"
	"cmp"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/node"
	"github.com/gosty/gosty/node/disk"
	"github.com/gosty/gosty/node/kube"
)

// serviceMonitor is the part of the Prometheus operator's ServiceMonitor
// that k8s/servicemonitor uses (the apiserver test validates it against the
// real CRD; this one only reads it).
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		JobLabel  string               `json:"jobLabel"`
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Interval      string `json:"interval"`
			ScrapeTimeout string `json:"scrapeTimeout"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// manifests is every object of k8s/, k8s/servicemonitor and k8s/ingress,
// decoded strictly into its API type.
type manifests struct {
	namespace  corev1.Namespace
	account    corev1.ServiceAccount
	role       rbacv1.Role
	binding    rbacv1.RoleBinding
	dashboards corev1.ConfigMap
	secret     corev1.Secret
	services   map[string]corev1.Service
	sts        appsv1.StatefulSet
	pdb        policyv1.PodDisruptionBudget
	ingress    networkingv1.Ingress
	netpol     networkingv1.NetworkPolicy
	monitor    serviceMonitor
	namespaced []object
}

func loadManifests(t *testing.T) *manifests {
	t.Helper()
	kubectl := lookPath(t, "kubectl")
	tr := newTree(t)
	tr.writeKeys(t)
	m := &manifests{services: map[string]corev1.Service{}}
	seen := map[string]int{}
	for _, dir := range []string{"k8s", "k8s/servicemonitor", "k8s/ingress"} {
		for _, o := range splitObjects(t, tr.kustomize(t, kubectl, dir)) {
			var into any
			switch o.Kind {
			case "Namespace":
				into = &m.namespace
			case "ServiceAccount":
				into = &m.account
			case "Role":
				into = &m.role
			case "RoleBinding":
				into = &m.binding
			case "ConfigMap":
				into = &m.dashboards
			case "Secret":
				into = &m.secret
			case "Service":
				var s corev1.Service
				strict(t, o, &s)
				m.services[s.Name] = s
			case "StatefulSet":
				into = &m.sts
			case "PodDisruptionBudget":
				into = &m.pdb
			case "Ingress":
				into = &m.ingress
			case "NetworkPolicy":
				into = &m.netpol
			case "ServiceMonitor":
				into = &m.monitor
			default:
				t.Fatalf("%s/%s: a kind this test does not know; add it here", o.Kind, o.Name)
			}
			if into != nil {
				strict(t, o, into)
			}
			if seen[o.Kind]++; seen[o.Kind] > 1 && o.Kind != "Service" {
				t.Fatalf("two objects of kind %s; this test expects one", o.Kind)
			}
			if o.Kind != "Namespace" {
				m.namespaced = append(m.namespaced, o)
			}
		}
	}
	if len(m.services) != 3 {
		t.Fatalf("want 3 Services (headless peers, client, headless metrics), got %d", len(m.services))
	}
	return m
}

// strict decodes an object into its Go type, refusing unknown fields.
func strict(t *testing.T, o object, into any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(o.JSON, into); err != nil {
		t.Fatalf("%s/%s: %v", o.Kind, o.Name, err)
	}
}

func (m *manifests) container(t *testing.T) corev1.Container {
	t.Helper()
	cs := m.sts.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("want one container in the StatefulSet, got %d", len(cs))
	}
	return cs[0]
}

func (m *manifests) env(t *testing.T, name string) (string, bool) {
	t.Helper()
	for _, e := range m.container(t).Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

func (m *manifests) containerPort(t *testing.T, name string) corev1.ContainerPort {
	t.Helper()
	for _, p := range m.container(t).Ports {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("the container has no port named %q", name)
	return corev1.ContainerPort{}
}

// TestManifests checks what the API server cannot: that the objects refer
// to each other correctly and that the StatefulSet configures the node
// with settings the node has.
func TestManifests(t *testing.T) {
	m := loadManifests(t)
	c := m.container(t)
	pod := m.sts.Spec.Template

	t.Run("one namespace", func(t *testing.T) {
		for _, o := range m.namespaced {
			if o.Namespace != m.namespace.Name {
				t.Errorf("%s/%s is in namespace %q, want %q", o.Kind, o.Name, o.Namespace, m.namespace.Name)
			}
		}
		if m.namespace.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
			t.Errorf("namespace does not enforce the restricted Pod Security Standard")
		}
	})

	t.Run("serviceName is the headless peers Service", func(t *testing.T) {
		peers, ok := m.services[m.sts.Spec.ServiceName]
		if !ok {
			t.Fatalf("serviceName %q is no Service", m.sts.Spec.ServiceName)
		}
		if peers.Spec.ClusterIP != corev1.ClusterIPNone || !peers.Spec.PublishNotReadyAddresses {
			t.Errorf("%s: want clusterIP None and publishNotReadyAddresses", peers.Name)
		}
		want := map[string]int32{"gossip/TCP": node.DefaultGossipPort, "gossip/UDP": node.DefaultGossipPort,
			"raft/TCP": node.DefaultRaftPort, "internal/TCP": node.DefaultInternalPort}
		got := map[string]int32{}
		for _, p := range peers.Spec.Ports {
			cp := m.containerPort(t, p.TargetPort.String())
			if cp.Protocol != p.Protocol || cp.ContainerPort != p.Port {
				t.Errorf("%s port %s: %d/%s targets container port %d/%s", peers.Name, p.Name, p.Port, p.Protocol, cp.ContainerPort, cp.Protocol)
			}
			kind := strings.TrimSuffix(p.TargetPort.String(), "-udp")
			got[kind+"/"+string(p.Protocol)] = cp.ContainerPort
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s ports %v, want the node's ports %v", peers.Name, got, want)
		}
	})

	t.Run("selectors match labels", func(t *testing.T) {
		podLabels := labels.Set(pod.Labels)
		mustMatch := func(what string, sel *metav1.LabelSelector, set labels.Set) {
			s, err := metav1.LabelSelectorAsSelector(sel)
			if err != nil || s.Empty() || !s.Matches(set) {
				t.Errorf("%s selector %v does not select %v (%v)", what, sel, set, err)
			}
		}
		mustMatch("StatefulSet", m.sts.Spec.Selector, podLabels)
		mustMatch("PodDisruptionBudget", m.pdb.Spec.Selector, podLabels)
		for name, s := range m.services {
			mustMatch("Service "+name, &metav1.LabelSelector{MatchLabels: s.Spec.Selector}, podLabels)
		}
		// The ServiceMonitor selects exactly the headless metrics Service
		// (one target per pod), and scrapes its port, which is the
		// node's metrics port, and a path the node serves.
		sel, err := metav1.LabelSelectorAsSelector(&m.monitor.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		var picked []string
		for name, s := range m.services {
			if sel.Matches(labels.Set(s.Labels)) {
				picked = append(picked, name)
			}
		}
		if len(picked) != 1 || m.services[picked[0]].Spec.ClusterIP != corev1.ClusterIPNone ||
			!m.services[picked[0]].Spec.PublishNotReadyAddresses {
			t.Fatalf("ServiceMonitor selects Services %v, want only the headless metrics Service", picked)
		}
		scraped := m.services[picked[0]]
		// The alerts and dashboards select job="gosty": the operator names
		// the job after the Service, or after its jobLabel label.
		if job := cmp.Or(scraped.Labels[m.monitor.Spec.JobLabel], scraped.Name); job != "gosty" {
			t.Errorf("ServiceMonitor scrapes under job %q, want gosty (dashboards/alerts.yml)", job)
		}
		for _, ep := range m.monitor.Spec.Endpoints {
			i := slices.IndexFunc(scraped.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port })
			if i < 0 {
				t.Errorf("ServiceMonitor port %q is not a port of Service %s", ep.Port, scraped.Name)
				continue
			}
			if cp := m.containerPort(t, scraped.Spec.Ports[i].TargetPort.String()); cp.ContainerPort != metricsPort(t, m) {
				t.Errorf("ServiceMonitor scrapes container port %d, the metrics are on %d", cp.ContainerPort, metricsPort(t, m))
			}
			routeExists(t, ep.Path)
		}
		var client corev1.Service
		for _, s := range m.services {
			if s.Spec.ClusterIP != corev1.ClusterIPNone {
				client = s
			}
		}
		// The Ingress routes to the client Service's port.
		for _, r := range m.ingress.Spec.Rules {
			for _, p := range r.HTTP.Paths {
				b := p.Backend.Service
				if b == nil || b.Name != client.Name ||
					!slices.ContainsFunc(client.Spec.Ports, func(sp corev1.ServicePort) bool { return sp.Name == b.Port.Name }) {
					t.Errorf("Ingress backend %+v is not a port of Service %s", b, client.Name)
				}
			}
		}
		if m.pdb.Spec.MaxUnavailable == nil || m.pdb.Spec.MaxUnavailable.String() != "1" {
			t.Errorf("PodDisruptionBudget maxUnavailable %v, want 1", m.pdb.Spec.MaxUnavailable)
		}
	})

	t.Run("client Service reaches the public API", func(t *testing.T) {
		for name, s := range m.services {
			if s.Spec.ClusterIP == corev1.ClusterIPNone {
				continue
			}
			for _, p := range s.Spec.Ports {
				if cp := m.containerPort(t, p.TargetPort.String()); cp.ContainerPort != httpPort(t, m) {
					t.Errorf("Service %s port %s targets %d, not the public API", name, p.Name, cp.ContainerPort)
				}
			}
		}
	})

	t.Run("probes and scrape annotations hit routes", func(t *testing.T) {
		for what, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
			if p == nil || p.HTTPGet == nil {
				t.Errorf("no HTTP %s probe", what)
				continue
			}
			routeExists(t, p.HTTPGet.Path)
			if port := m.containerPort(t, p.HTTPGet.Port.String()); port.ContainerPort != httpPort(t, m) {
				t.Errorf("%s probe on port %d, the API listens on %d", what, port.ContainerPort, httpPort(t, m))
			}
		}
		if c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet.Path != "/readyz" {
			t.Errorf("readiness probe on %s, want /readyz", c.ReadinessProbe.HTTPGet.Path)
		}
		if c.LivenessProbe != nil && c.LivenessProbe.HTTPGet.Path != "/healthz" {
			t.Errorf("liveness probe on %s, want /healthz", c.LivenessProbe.HTTPGet.Path)
		}
		a := pod.Annotations
		if a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != strconv.Itoa(int(metricsPort(t, m))) {
			t.Errorf("scrape annotations %v do not point at the metrics port %d", a, metricsPort(t, m))
		}
		routeExists(t, a["prometheus.io/path"])
	})

	t.Run("metrics on their own port", func(t *testing.T) {
		if metricsPort(t, m) == httpPort(t, m) {
			t.Fatalf("GOSTY_METRICS_ADDR is the public port: the client Service and the Ingress would expose /metrics")
		}
	})

	t.Run("reads need a token, playback is signed", func(t *testing.T) {
		if v, ok := m.env(t, "GOSTY_API_TOKEN_FILE"); !ok || v == "" {
			t.Errorf("no GOSTY_API_TOKEN_FILE: the API would be open to anyone")
		}
		if v, ok := m.env(t, "GOSTY_PUBLIC_READ"); ok {
			t.Errorf("GOSTY_PUBLIC_READ=%q: the manifests keep reads closed", v)
		}
		if v, _ := m.env(t, "GOSTY_PLAYBACK"); v != node.PlaybackSigned {
			t.Errorf("GOSTY_PLAYBACK=%q, want %s", v, node.PlaybackSigned)
		}
	})

	t.Run("NetworkPolicy", func(t *testing.T) {
		np := m.netpol.Spec
		podLabels := labels.Set(pod.Labels)
		if s, err := metav1.LabelSelectorAsSelector(&np.PodSelector); err != nil || s.Empty() || !s.Matches(podLabels) {
			t.Fatalf("podSelector %v does not select the gosty pods (%v)", np.PodSelector, err)
		}
		if !slices.Equal(np.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
			t.Errorf("policyTypes %v, want [Ingress] (egress open: DNS, the API server, webhooks)", np.PolicyTypes)
		}
		// Who may reach each container port: "anyone", "gosty" (pods of
		// the StatefulSet only) or "some" (other peers).
		reach := map[string][]string{}
		for _, rule := range np.Ingress {
			who := "anyone"
			if len(rule.From) > 0 {
				who = "gosty"
				for _, peer := range rule.From {
					s, err := metav1.LabelSelectorAsSelector(peer.PodSelector)
					if peer.PodSelector == nil || peer.NamespaceSelector != nil || peer.IPBlock != nil || err != nil || s.Empty() || !s.Matches(podLabels) {
						who = "some"
					}
				}
			}
			if len(rule.Ports) == 0 {
				t.Errorf("a rule without ports admits %s to every port", who)
			}
			for _, p := range rule.Ports {
				if p.Port == nil {
					t.Errorf("a rule admits %s to every port", who)
					continue
				}
				cp := m.containerPort(t, p.Port.String())
				if p.Protocol == nil || *p.Protocol != cp.Protocol {
					t.Errorf("port %s: protocol %v, the container's is %s", p.Port, p.Protocol, cp.Protocol)
				}
				reach[cp.Name] = append(reach[cp.Name], who)
			}
		}
		want := map[string]string{"http": "anyone", "metrics": "some",
			"gossip": "gosty", "gossip-udp": "gosty", "raft": "gosty", "internal": "gosty"}
		for _, cp := range c.Ports {
			if got := strings.Join(reach[cp.Name], ","); got != want[cp.Name] {
				t.Errorf("port %s (%d/%s) is reached by %q, want %q", cp.Name, cp.ContainerPort, cp.Protocol, got, want[cp.Name])
			}
		}
		if len(c.Ports) != len(want) {
			t.Errorf("the container has %d ports, this test knows %d", len(c.Ports), len(want))
		}
	})

	t.Run("Ingress carries TLS", func(t *testing.T) {
		in := m.ingress
		if in.Annotations["cert-manager.io/cluster-issuer"] == "" {
			t.Errorf("no cert-manager.io/cluster-issuer annotation")
		}
		if len(in.Spec.TLS) != 1 || in.Spec.TLS[0].SecretName == "" {
			t.Fatalf("tls %+v: want one entry with a secretName", in.Spec.TLS)
		}
		for _, r := range in.Spec.Rules {
			if !slices.Contains(in.Spec.TLS[0].Hosts, r.Host) {
				t.Errorf("rule host %q is not under tls", r.Host)
			}
		}
	})

	t.Run("every env var is read by the node", func(t *testing.T) {
		flags := nodeFlags(t)
		defined := map[string]int{}
		for i, e := range c.Env {
			defined[e.Name] = i
		}
		ref := regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
		used := map[string]bool{}
		for i, e := range c.Env {
			for _, r := range ref.FindAllStringSubmatch(e.Value, -1) {
				if j, ok := defined[r[1]]; !ok || j >= i {
					t.Errorf("%s uses $(%s), which is not defined before it (Kubernetes would leave it as is)", e.Name, r[1])
				}
				used[r[1]] = true
			}
		}
		for _, a := range append(slices.Clone(c.Command), c.Args...) {
			for _, r := range ref.FindAllStringSubmatch(a, -1) {
				used[r[1]] = true
			}
		}
		for _, e := range c.Env {
			flag, isGosty := strings.CutPrefix(e.Name, "GOSTY_")
			flag = strings.ToLower(strings.ReplaceAll(flag, "_", "-"))
			switch {
			case isGosty && flags[flag]:
			case isGosty:
				t.Errorf("%s: `gosty node` has no flag --%s", e.Name, flag)
			case slices.Contains(kube.EnvVars(), e.Name):
			case used[e.Name]:
			default:
				t.Errorf("%s is set but nothing reads it (not a GOSTY_ flag, not read by node/kube, not referenced)", e.Name)
			}
		}
		if len(c.Args) == 0 || c.Args[0] != "node" || len(c.Command) != 0 {
			t.Errorf("command %q args %q: want the image's entrypoint with args [node ...]", c.Command, c.Args)
		}
		for _, a := range c.Args[1:] {
			name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if !strings.HasPrefix(a, "-") || !flags[name] {
				t.Errorf("argument %q is not a flag of `gosty node`", a)
			}
		}
	})

	t.Run("node identity and discovery", func(t *testing.T) {
		for name, want := range map[string]string{"GOSTY_NAME": "metadata.name", "GOSTY_ADVERTISE_ADDR": "status.podIP"} {
			v, _ := m.env(t, name)
			src := strings.TrimSuffix(strings.TrimPrefix(v, "$("), ")")
			var field string
			for _, e := range c.Env {
				if e.Name == src && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
					field = e.ValueFrom.FieldRef.FieldPath
				}
			}
			if field != want {
				t.Errorf("%s=%q: want the downward API's %s", name, v, want)
			}
		}
		if v, _ := m.env(t, kube.EnvNamespace); v != "" {
			t.Errorf("%s should come from the downward API", kube.EnvNamespace)
		}
		join, _ := m.env(t, "GOSTY_JOIN")
		if host, _, _ := strings.Cut(join, "."); host != m.sts.Spec.ServiceName || !strings.Contains(join, "$(POD_NAMESPACE)") {
			t.Errorf("GOSTY_JOIN=%q: want the headless Service %s's DNS name in the pod's namespace", join, m.sts.Spec.ServiceName)
		}
		// Nodes that join refuse to start without both keys (the volumes
		// subtest checks that they come from the Secret); --insecure would
		// let them run open.
		for _, name := range []string{"GOSTY_CLUSTER_KEY_FILE", "GOSTY_GOSSIP_KEY_FILE"} {
			if v, ok := m.env(t, name); !ok || v == "" {
				t.Errorf("GOSTY_JOIN is set but %s is not: the nodes would refuse to start", name)
			}
		}
		if v, ok := m.env(t, "GOSTY_INSECURE"); ok {
			t.Errorf("GOSTY_INSECURE=%q: the manifests must not run peer traffic unauthenticated", v)
		}
		if sts, ok := kube.StatefulSetOf(m.sts.Name + "-0"); !ok || sts != m.sts.Name {
			t.Errorf("node/kube derives StatefulSet %q from pod %s-0", sts, m.sts.Name)
		}
	})

	t.Run("volumes", func(t *testing.T) {
		mounts := map[string]corev1.VolumeMount{}
		for _, vm := range c.VolumeMounts {
			mounts[vm.Name] = vm
		}
		dataDir, _ := m.env(t, "GOSTY_DATA_DIR")
		var claim string
		for _, pvc := range m.sts.Spec.VolumeClaimTemplates {
			if mounts[pvc.Name].MountPath == dataDir {
				claim = pvc.Name
			}
		}
		if claim == "" {
			t.Errorf("GOSTY_DATA_DIR=%s is not a volumeClaimTemplate's mount", dataDir)
		}
		var keysMount corev1.VolumeMount
		for _, v := range pod.Spec.Volumes {
			if v.Secret != nil {
				if v.Secret.SecretName != m.secret.Name {
					t.Errorf("volume %s mounts Secret %s, which the manifests do not make", v.Name, v.Secret.SecretName)
				}
				keysMount = mounts[v.Name]
			}
		}
		for _, name := range []string{"GOSTY_CLUSTER_KEY_FILE", "GOSTY_GOSSIP_KEY_FILE", "GOSTY_API_TOKEN_FILE"} {
			v, ok := m.env(t, name)
			dir, file := filepath.Split(v)
			if !ok || filepath.Clean(dir) != keysMount.MountPath || keysMount.MountPath == "" {
				t.Errorf("%s=%q is not in the Secret's mount %q", name, v, keysMount.MountPath)
			}
			if _, ok := m.secret.Data[file]; !ok {
				t.Errorf("%s names key %q, which Secret %s lacks", name, file, m.secret.Name)
			}
		}
		if tmp, ok := mounts["tmp"]; !ok || tmp.MountPath != "/tmp" {
			t.Errorf("with a read-only root file system, /tmp must be a volume")
		}
	})

	t.Run("uploads fit the data volume", func(t *testing.T) {
		dataDir, _ := m.env(t, "GOSTY_DATA_DIR")
		mounts := map[string]string{}
		for _, vm := range c.VolumeMounts {
			mounts[vm.Name] = vm.MountPath
		}
		var size int64
		for _, pvc := range m.sts.Spec.VolumeClaimTemplates {
			if mounts[pvc.Name] == dataDir {
				size = pvc.Spec.Resources.Requests.Storage().Value()
			}
		}
		cfg := node.DefaultConfig()
		if v, ok := m.env(t, "GOSTY_MAX_UPLOAD_BYTES"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("GOSTY_MAX_UPLOAD_BYTES=%q: %v", v, err)
			}
			cfg.MaxUploadBytes = n
		}
		if v, ok := m.env(t, "GOSTY_DISK_RESERVE"); ok {
			r, err := disk.ParseReserve(v)
			if err != nil {
				t.Fatalf("GOSTY_DISK_RESERVE=%q: %v", v, err)
			}
			cfg.DiskReserve = r
		}
		if v, ok := m.env(t, "GOSTY_RAFT_RESERVE"); ok {
			n, err := disk.ParseSize(v)
			if err != nil {
				t.Fatalf("GOSTY_RAFT_RESERVE=%q: %v", v, err)
			}
			cfg.RaftReserve = n
		}
		// An upload and the chunks split from it (about as large) land on
		// one node, above what the node keeps free.
		room := size - cfg.DiskReserve.Of(size) - cfg.RaftReserve
		if size <= 0 || 2*cfg.MaxUploadBytes > room {
			t.Errorf("the largest upload (%s) and its chunks do not fit the %s data volume above its reserves (%s room)",
				disk.FormatSize(cfg.MaxUploadBytes), disk.FormatSize(size), disk.FormatSize(room))
		}
	})

	t.Run("graceful stop fits the grace period", func(t *testing.T) {
		drain := node.DefaultConfig().DrainTimeout
		if v, ok := m.env(t, "GOSTY_DRAIN_TIMEOUT"); ok {
			d, err := time.ParseDuration(v)
			if err != nil {
				t.Fatal(err)
			}
			drain = d
		}
		var preStop time.Duration
		if h := c.Lifecycle; h == nil || h.PreStop == nil || h.PreStop.Exec == nil {
			t.Errorf("no preStop hook")
		} else if cmd := h.PreStop.Exec.Command; len(cmd) == 2 && cmd[0] == "sleep" {
			s, err := strconv.Atoi(cmd[1])
			if err != nil {
				t.Fatal(err)
			}
			preStop = time.Duration(s) * time.Second
		} else {
			t.Errorf("preStop %q: this test knows sleep N", cmd)
		}
		need := preStop + node.ShutdownBound(drain)
		grace := time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
		if grace < need+10*time.Second {
			t.Errorf("terminationGracePeriodSeconds %v: a graceful stop may take %v (preStop %v, drain timeout %v), want a margin of 10 s",
				grace, need, preStop, drain)
		}
		t.Logf("grace %v, longest stop %v", grace, need)
	})

	t.Run("pod security and resources", func(t *testing.T) {
		ps, sc := pod.Spec.SecurityContext, c.SecurityContext
		if ps == nil || sc == nil {
			t.Fatal("no security contexts")
		}
		uid := dockerfileUser(t)
		if ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.RunAsUser == nil || *ps.RunAsUser != uid || ps.FSGroup == nil {
			t.Errorf("pod must run as non-root user %d (the Dockerfile's USER) with an fsGroup", uid)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
			t.Errorf("container: want a read-only root file system, no privilege escalation, no capabilities")
		}
		if ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("pod: want the RuntimeDefault seccomp profile")
		}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, lim := c.Resources.Requests[r], c.Resources.Limits[r]
			if req.IsZero() || lim.IsZero() || lim.Cmp(req) < 0 {
				t.Errorf("%s: requests %v, limits %v", r, req.String(), lim.String())
			}
		}
	})

	t.Run("StatefulSet policies", func(t *testing.T) {
		s := m.sts.Spec
		if s.PodManagementPolicy != appsv1.ParallelPodManagement {
			t.Errorf("podManagementPolicy %q, want Parallel", s.PodManagementPolicy)
		}
		if p := s.PersistentVolumeClaimRetentionPolicy; p == nil || p.WhenScaled != appsv1.DeletePersistentVolumeClaimRetentionPolicyType {
			t.Errorf("persistentVolumeClaimRetentionPolicy %+v, want whenScaled Delete", p)
		}
		if s.Replicas == nil || *s.Replicas < 3 || *s.Replicas%2 == 0 {
			t.Errorf("replicas %v: want an odd number of at least 3 (the raft voters)", s.Replicas)
		}
	})

	t.Run("RBAC grants only the scale of this StatefulSet", func(t *testing.T) {
		want := []rbacv1.PolicyRule{{APIGroups: []string{"apps"}, Resources: []string{"statefulsets/scale"},
			ResourceNames: []string{m.sts.Name}, Verbs: []string{"get", "patch"}}}
		if fmt.Sprint(m.role.Rules) != fmt.Sprint(want) {
			t.Errorf("Role rules %+v, want %+v", m.role.Rules, want)
		}
		b := m.binding
		if b.RoleRef.Kind != "Role" || b.RoleRef.Name != m.role.Name || len(b.Subjects) != 1 ||
			b.Subjects[0].Kind != "ServiceAccount" || b.Subjects[0].Name != m.account.Name {
			t.Errorf("RoleBinding %+v does not bind Role %s to ServiceAccount %s", b, m.role.Name, m.account.Name)
		}
		if pod.Spec.ServiceAccountName != m.account.Name {
			t.Errorf("pods run as %q, the Role is bound to %q", pod.Spec.ServiceAccountName, m.account.Name)
		}
		if a := pod.Spec.AutomountServiceAccountToken; a != nil && !*a {
			t.Errorf("the pods need their ServiceAccount token to scale")
		}
	})

	t.Run("dashboards ConfigMap", func(t *testing.T) {
		if m.dashboards.Labels["grafana_dashboard"] != "1" {
			t.Errorf("ConfigMap %s lacks the Grafana sidecar label", m.dashboards.Name)
		}
		files, _ := filepath.Glob(filepath.Join(repoRoot(t), "dashboards", "*.json"))
		if len(files) == 0 {
			t.Fatal("no dashboards/*.json")
		}
		var keys []string
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, filepath.Base(f))
			if m.dashboards.Data[filepath.Base(f)] != string(b) {
				t.Errorf("%s differs from the ConfigMap's copy (is it listed in dashboards/kustomization.yaml?)", f)
			}
		}
		if len(keys) != len(m.dashboards.Data) {
			t.Errorf("ConfigMap has %d dashboards, dashboards/ has %v", len(m.dashboards.Data), keys)
		}
		// kubectl's client-side apply keeps a copy of the object in an
		// annotation, and annotations are limited to 256 KiB.
		size := 0
		for _, v := range m.dashboards.Data {
			size += len(v)
		}
		if size > 200<<10 {
			t.Errorf("dashboards are %d bytes: too big for `kubectl apply` (annotation limit 256 KiB)", size)
		}
	})
}

// httpPort is the public API's port from GOSTY_HTTP_ADDR.
func httpPort(t *testing.T, m *manifests) int32 {
	t.Helper()
	addr, ok := m.env(t, "GOSTY_HTTP_ADDR")
	if !ok {
		addr = node.DefaultConfig().HTTPAddr
	}
	_, ps, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("GOSTY_HTTP_ADDR=%q: %v", addr, err)
	}
	n, err := strconv.Atoi(ps)
	if err != nil {
		t.Fatalf("GOSTY_HTTP_ADDR=%q: %v", addr, err)
	}
	p := int32(n)
	if cp := m.containerPort(t, "http"); cp.ContainerPort != p {
		t.Fatalf("container port http is %d, the API listens on %d", cp.ContainerPort, p)
	}
	return p
}

// metricsPort is the metrics' port from GOSTY_METRICS_ADDR (the public
// port without it), which must be the container port named "metrics".
func metricsPort(t *testing.T, m *manifests) int32 {
	t.Helper()
	addr, ok := m.env(t, "GOSTY_METRICS_ADDR")
	if !ok || addr == "" {
		return httpPort(t, m)
	}
	_, ps, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("GOSTY_METRICS_ADDR=%q: %v", addr, err)
	}
	n, err := strconv.Atoi(ps)
	if err != nil {
		t.Fatalf("GOSTY_METRICS_ADDR=%q: %v", addr, err)
	}
	if cp := m.containerPort(t, "metrics"); cp.ContainerPort != int32(n) {
		t.Fatalf("container port metrics is %d, the node serves /metrics on %d", cp.ContainerPort, n)
	}
	return int32(n)
}

// routeExists fails the test unless the public API routes GET path.
func routeExists(t *testing.T, path string) {
	t.Helper()
	if path == "" {
		t.Errorf("empty path")
		return
	}
	srv := newScaleAPI(t, nil)
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
		t.Errorf("GET %s: %d, the router has no such route", path, resp.StatusCode)
	}
}

// nodeFlags lists the flags of `gosty node`, from the binary's own -h.
func nodeFlags(t *testing.T) map[string]bool {
	t.Helper()
	bin := e2e.Binary(t)
	var out bytes.Buffer
	cmd := exec.Command(bin, "node", "-h")
	cmd.Stdout, cmd.Stderr = &out, &out
	_ = cmd.Run() // -h exits 0 or 2 depending on the flag package's mood
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`).FindAllStringSubmatch(out.String(), -1) {
		flags[m[1]] = true
	}
	if !flags["data-dir"] || !flags["join"] {
		t.Fatalf("could not read the flags from `gosty node -h`:\n%s", out.String())
	}
	return flags
}

// dockerfileUser is the numeric USER of the Dockerfile's final stage.
func dockerfileUser(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	users := regexp.MustCompile(`(?m)^USER\s+(\d+)(:\d+)?\s*$`).FindAllStringSubmatch(string(b), -1)
	if len(users) == 0 {
		t.Fatal("Dockerfile has no numeric USER")
	}
	uid, _ := strconv.ParseInt(users[len(users)-1][1], 10, 64)
	return uid
}
