// Package kube lets a node that runs as a pod of a Kubernetes StatefulSet
// scale its own StatefulSet: it patches the scale subresource
// (apps/v1 statefulsets/scale) with client-go. The node's ServiceAccount
// needs exactly get and patch on that subresource of that one StatefulSet,
// which the Role in k8s/rbac.yaml grants.
//
// InCluster builds a Scaler from the pod's environment (the API server from
// KUBERNETES_SERVICE_HOST/PORT, the mounted ServiceAccount token and CA, the
// namespace from POD_NAMESPACE or the mounted namespace file, the
// StatefulSet from the pod name without its ordinal) and returns nil outside
// Kubernetes. New takes the same things explicitly (tests point it at a
// kube-apiserver of their own).
package kube

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

// Environment variables InCluster reads. KUBERNETES_SERVICE_HOST and _PORT
// are set by the kubelet in every pod; EnvNamespace comes from the downward
// API in k8s/statefulset.yaml.
const (
	EnvNamespace   = "POD_NAMESPACE"
	EnvServiceHost = "KUBERNETES_SERVICE_HOST"
	EnvServicePort = "KUBERNETES_SERVICE_PORT"
)

// EnvVars lists every environment variable this package reads.
func EnvVars() []string { return []string{EnvNamespace, EnvServiceHost, EnvServicePort} }

// Where the kubelet mounts the pod's ServiceAccount credentials.
const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// Config names the API server, the credentials and the StatefulSet.
type Config struct {
	Host        string // https://host:port
	CAData      []byte // PEM; empty = system roots
	BearerToken string
	// BearerTokenFile is re-read as the kubelet rotates it (bound
	// ServiceAccount tokens expire); it wins over BearerToken.
	BearerTokenFile string
	Namespace       string
	StatefulSet     string
	Timeout         time.Duration // per request; 0 = 10 s
}

// Scaler changes the replicas of one StatefulSet.
type Scaler struct {
	rest        rest.Interface
	namespace   string
	statefulSet string
}

// New builds a Scaler from an explicit configuration.
func New(cfg Config) (*Scaler, error) {
	if cfg.Host == "" || cfg.Namespace == "" || cfg.StatefulSet == "" {
		return nil, errors.New("kube: host, namespace and statefulset are required")
	}
	rc := &rest.Config{
		Host:            cfg.Host,
		BearerToken:     cfg.BearerToken,
		BearerTokenFile: cfg.BearerTokenFile,
		TLSClientConfig: rest.TLSClientConfig{CAData: cfg.CAData},
		Timeout:         cfg.Timeout,
		UserAgent:       "gosty",
		QPS:             5,
		Burst:           10,
	}
	return newScaler(rc, cfg.Namespace, cfg.StatefulSet)
}

// newScaler builds a REST client for apps/v1 that decodes only what it
// needs (Scale and Status): client-go's typed clientsets register every API
// group and would double the size of the gosty binary.
func newScaler(rc *rest.Config, namespace, statefulSet string) (*Scaler, error) {
	if rc.Timeout == 0 {
		rc.Timeout = 10 * time.Second
	}
	scheme := runtime.NewScheme()
	if err := autoscalingv1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("kube: %w", err)
	}
	metav1.AddToGroupVersion(scheme, schema.GroupVersion{Version: "v1"})
	rc.APIPath = "/apis"
	rc.GroupVersion = &schema.GroupVersion{Group: "apps", Version: "v1"}
	rc.ContentType = runtime.ContentTypeJSON
	rc.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	c, err := rest.RESTClientFor(rc)
	if err != nil {
		return nil, fmt.Errorf("kube: %w", err)
	}
	return &Scaler{rest: c, namespace: namespace, statefulSet: statefulSet}, nil
}

// InCluster returns a Scaler for the StatefulSet the pod named podName
// belongs to, or nil, nil when the process does not run in a Kubernetes
// pod (no KUBERNETES_SERVICE_HOST or no mounted ServiceAccount token) or
// podName carries no StatefulSet ordinal.
func InCluster(podName string) (*Scaler, error) {
	if os.Getenv(EnvServiceHost) == "" || os.Getenv(EnvServicePort) == "" {
		return nil, nil
	}
	if _, err := os.Stat(serviceAccountDir + "/token"); err != nil {
		return nil, nil // automountServiceAccountToken: false
	}
	sts, ok := StatefulSetOf(podName)
	if !ok {
		return nil, nil
	}
	ns := os.Getenv(EnvNamespace)
	if ns == "" {
		b, err := os.ReadFile(serviceAccountDir + "/namespace")
		if err != nil {
			return nil, fmt.Errorf("kube: namespace: set %s or mount the ServiceAccount: %w", EnvNamespace, err)
		}
		ns = strings.TrimSpace(string(b))
	}
	rc, err := rest.InClusterConfig() // token file re-read on rotation, CA file, host
	if err != nil {
		return nil, fmt.Errorf("kube: %w", err)
	}
	rc.UserAgent = "gosty"
	rc.QPS, rc.Burst = 5, 10
	return newScaler(rc, ns, sts)
}

var ordinal = regexp.MustCompile(`^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)-(0|[1-9][0-9]*)$`)

// StatefulSetOf returns the StatefulSet a pod named like "gosty-2" belongs
// to ("gosty").
func StatefulSetOf(podName string) (string, bool) {
	m := ordinal.FindStringSubmatch(podName)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// Target names the StatefulSet as namespace/name.
func (s *Scaler) Target() string { return s.namespace + "/" + s.statefulSet }

// Scale sets the StatefulSet's spec.replicas through the scale subresource
// and returns the value the API server now holds. Refusals come back as
// *Error with the API server's status.
func (s *Scaler) Scale(ctx context.Context, replicas int) (int, error) {
	if replicas < 0 {
		return 0, fmt.Errorf("kube: negative replicas %d", replicas)
	}
	var sc autoscalingv1.Scale
	err := s.rest.Patch(types.MergePatchType).Namespace(s.namespace).Resource("statefulsets").
		Name(s.statefulSet).SubResource("scale").
		VersionedParams(&metav1.PatchOptions{FieldManager: "gosty"}, metav1.ParameterCodec).
		Body([]byte(fmt.Sprintf(`{"spec":{"replicas":%d}}`, replicas))).
		Do(ctx).Into(&sc)
	if err != nil {
		return 0, s.wrap("scale", err)
	}
	return int(sc.Spec.Replicas), nil
}

// Replicas returns the StatefulSet's spec.replicas and status.replicas.
func (s *Scaler) Replicas(ctx context.Context) (spec, status int, err error) {
	var sc autoscalingv1.Scale
	err = s.rest.Get().Namespace(s.namespace).Resource("statefulsets").Name(s.statefulSet).
		SubResource("scale").Do(ctx).Into(&sc)
	if err != nil {
		return 0, 0, s.wrap("read the scale of", err)
	}
	return int(sc.Spec.Replicas), int(sc.Status.Replicas), nil
}

// Error is a refusal by the API server.
type Error struct {
	Status  int // HTTP status the API server answered
	Message string
	Err     error
}

func (e *Error) Error() string   { return e.Message }
func (e *Error) Unwrap() error   { return e.Err }
func (e *Error) HTTPStatus() int { return e.Status }

func (s *Scaler) wrap(what string, err error) error {
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		return fmt.Errorf("kube: %s statefulset %s: %w", what, s.Target(), err)
	}
	code := int(st.Status().Code)
	msg := fmt.Sprintf("Kubernetes refused to %s StatefulSet %s (%d %s): %s", what, s.Target(), code,
		http.StatusText(code), st.Status().Message)
	if code == http.StatusForbidden {
		msg += fmt.Sprintf("; the pod's ServiceAccount needs get and patch on statefulsets/scale of %q (the Role in k8s/rbac.yaml)", s.statefulSet)
	}
	return &Error{Status: code, Message: msg, Err: err}
}
