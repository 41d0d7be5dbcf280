package kubelet

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// environment is the container's environment: the image's, then the
// container's envFrom and env (resolved and with $(VAR) expanded), with
// mount paths and wildcard addresses rewritten, then Config.ExtraEnv.
func (r *podRunner) environment(img Image) ([]string, error) {
	vars, order, err := r.containerVars()
	if err != nil {
		return nil, err
	}
	final := map[string]string{}
	var finalOrder []string
	put := func(kv string) {
		k, v, _ := strings.Cut(kv, "=")
		if _, ok := final[k]; !ok {
			finalOrder = append(finalOrder, k)
		}
		final[k] = v
	}
	// What the runtime sets from the image and /etc/passwd, and the
	// kubelet's own: HOSTNAME.
	put("HOME=" + filepath.Join(r.dir, "rootfs"))
	put("HOSTNAME=" + r.name)
	for _, kv := range img.Env { // container-side values, like the spec's
		k, v, _ := strings.Cut(kv, "=")
		put(k + "=" + r.rewrite(v))
	}
	if _, ok := final["PATH"]; !ok {
		put("PATH=" + os.Getenv("PATH"))
	}
	for _, k := range order {
		put(k + "=" + r.rewrite(vars[k]))
	}
	for _, kv := range r.a.cfg.ExtraEnv {
		put(kv)
	}
	out := make([]string, 0, len(finalOrder))
	for _, k := range finalOrder {
		out = append(out, k+"="+final[k])
	}
	return out, nil
}

// containerVars resolves the container's envFrom and env, in the order
// they are first set, with $(VAR) expanded.
func (r *podRunner) containerVars() (vars map[string]string, order []string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := r.container
	vars = map[string]string{} // the container's own, for $(VAR)
	set := func(k, v string) {
		if _, ok := vars[k]; !ok {
			order = append(order, k)
		}
		vars[k] = v
	}
	for _, from := range c.EnvFrom {
		data, err := r.envFromData(ctx, from)
		if err != nil {
			return nil, nil, err
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			set(from.Prefix+k, data[k])
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			set(e.Name, expand(e.Value, vars))
			continue
		}
		v, skip, err := r.valueFrom(ctx, e.ValueFrom)
		if err != nil {
			return nil, nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		if !skip {
			set(e.Name, v)
		}
	}
	return vars, order, nil
}

// envFromData is the ConfigMap's or Secret's data an envFrom names; none
// for a missing optional one.
func (r *podRunner) envFromData(ctx context.Context, from corev1.EnvFromSource) (map[string]string, error) {
	var kind, name string
	var optional *bool
	switch {
	case from.ConfigMapRef != nil:
		kind, name, optional = "configMap", from.ConfigMapRef.Name, from.ConfigMapRef.Optional
	case from.SecretRef != nil:
		kind, name, optional = "secret", from.SecretRef.Name, from.SecretRef.Optional
	default:
		return nil, nil
	}
	data, err := r.objectData(ctx, kind, name)
	if err != nil {
		if optional != nil && *optional && apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("envFrom %s %s: %w", kind, name, err)
	}
	return data, nil
}

// objectData reads the data of the ConfigMap or Secret (kind) name, a
// Secret's values as strings.
func (r *podRunner) objectData(ctx context.Context, kind, name string) (map[string]string, error) {
	if kind == "configMap" {
		cm, err := r.a.client.CoreV1().ConfigMaps(r.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		return cm.Data, nil
	}
	sec, err := r.a.client.CoreV1().Secrets(r.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	data := map[string]string{}
	for k, v := range sec.Data {
		data[k] = string(v)
	}
	return data, nil
}

// keyValue is one key of a ConfigMap's or Secret's data; skip is true
// when an optional one, or its key, is missing.
func (r *podRunner) keyValue(ctx context.Context, kind, name, key string, optional *bool) (v string, skip bool, err error) {
	opt := optional != nil && *optional
	data, err := r.objectData(ctx, kind, name)
	if err != nil {
		if opt && apierrors.IsNotFound(err) {
			return "", true, nil
		}
		return "", false, fmt.Errorf("%s %s: %w", kind, name, err)
	}
	v, ok := data[key]
	if !ok {
		if opt {
			return "", true, nil
		}
		return "", false, fmt.Errorf("%s %s has no key %s", kind, name, key)
	}
	return v, false, nil
}

// valueFrom resolves a downward-API, resource, Secret or ConfigMap value;
// skip is true for a missing optional key.
func (r *podRunner) valueFrom(ctx context.Context, src *corev1.EnvVarSource) (v string, skip bool, err error) {
	switch {
	case src.FieldRef != nil:
		v, err := r.field(src.FieldRef.FieldPath)
		return v, false, err
	case src.ResourceFieldRef != nil:
		v, err := r.resourceField(src.ResourceFieldRef)
		return v, false, err
	case src.SecretKeyRef != nil:
		ref := src.SecretKeyRef
		return r.keyValue(ctx, "secret", ref.Name, ref.Key, ref.Optional)
	case src.ConfigMapKeyRef != nil:
		ref := src.ConfigMapKeyRef
		return r.keyValue(ctx, "configMap", ref.Name, ref.Key, ref.Optional)
	}
	return "", false, fmt.Errorf("unsupported valueFrom")
}

var annotationPath = regexp.MustCompile(`^metadata\.(labels|annotations)\['(.+)'\]$`)

// field is a downward-API field of the pod.
func (r *podRunner) field(path string) (string, error) {
	p := r.pod
	switch path {
	case "metadata.name":
		return p.Name, nil
	case "metadata.namespace":
		return p.Namespace, nil
	case "metadata.uid":
		return string(p.UID), nil
	case "spec.nodeName":
		return r.a.cfg.Node, nil
	case "spec.serviceAccountName":
		return p.Spec.ServiceAccountName, nil
	case "status.podIP", "status.podIPs":
		return r.ip, nil // the host address: what the pod is reachable at
	case "status.hostIP", "status.hostIPs":
		return "127.0.0.1", nil
	}
	if m := annotationPath.FindStringSubmatch(path); m != nil {
		if m[1] == "labels" {
			return p.Labels[m[2]], nil
		}
		return p.Annotations[m[2]], nil
	}
	return "", fmt.Errorf("unsupported fieldRef %q", path)
}

// resourceField is limits.* or requests.* of the container, in units of
// the divisor, rounded up (limits default to the node's capacity, which
// here is the host's).
func (r *podRunner) resourceField(ref *corev1.ResourceFieldSelector) (string, error) {
	kind, name, ok := strings.Cut(ref.Resource, ".")
	if !ok {
		return "", fmt.Errorf("unsupported resourceFieldRef %q", ref.Resource)
	}
	list := r.container.Resources.Limits
	if kind == "requests" {
		list = r.container.Resources.Requests
	}
	q, ok := list[corev1.ResourceName(name)]
	if !ok {
		return "0", nil
	}
	div := ref.Divisor
	if div.IsZero() {
		div = resource.MustParse("1")
	}
	return strconv.FormatInt(int64(math.Ceil(q.AsApproximateFloat64()/div.AsApproximateFloat64())), 10), nil
}

// command is the container's argv: command or the image's entrypoint,
// args or (with neither command nor args) the image's cmd; $(VAR)
// expanded from the container's environment, paths rewritten.
func (r *podRunner) command(img Image) ([]string, error) {
	c := r.container
	vars := map[string]string{}
	for _, kv := range r.env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	spec := func(args []string) []string {
		out := make([]string, len(args))
		for i, a := range args {
			out[i] = r.rewrite(expand(a, vars))
		}
		return out
	}
	var argv []string
	switch {
	case len(c.Command) > 0:
		argv = append(spec(c.Command), spec(c.Args)...)
	case len(c.Args) > 0:
		argv = append(slices.Clone(img.Entrypoint), spec(c.Args)...)
	default:
		argv = append(slices.Clone(img.Entrypoint), img.Cmd...)
	}
	if len(argv) == 0 {
		return nil, fmt.Errorf("no command")
	}
	if host, ok := img.Files[argv[0]]; ok {
		argv[0] = host
	}
	return argv, nil
}

// mounted reports whether a container path is on a volume.
func (r *podRunner) mounted(v string) bool {
	for _, m := range r.mounts {
		if v == m.path || strings.HasPrefix(v, m.path+"/") {
			return true
		}
	}
	return false
}

var bareColonPort = regexp.MustCompile(`^:[0-9]+$`)

// rewrite maps a value of the pod spec, as seen inside the container, to
// the host: a mount path (or a path under it) to its host directory, a
// file of the image to its stand-in, a wildcard address to the pod's.
func (r *podRunner) rewrite(v string) string {
	if host, ok := r.img.Files[v]; ok && !r.mounted(v) {
		return host
	}
	best := -1
	for i, m := range r.mounts {
		if (v == m.path || strings.HasPrefix(v, m.path+"/")) && (best < 0 || len(m.path) > len(r.mounts[best].path)) {
			best = i
		}
	}
	if best >= 0 {
		m := r.mounts[best]
		return m.host + v[len(m.path):]
	}
	switch {
	case v == "0.0.0.0":
		return r.ip
	case strings.HasPrefix(v, "0.0.0.0:"):
		return r.ip + v[len("0.0.0.0"):]
	case bareColonPort.MatchString(v):
		return r.ip + v
	}
	return v
}

// expand replaces $(VAR) with vars[VAR] the way Kubernetes does: $$ is a
// literal $, and a reference to an undefined variable stays as written.
func expand(s string, vars map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := vars[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// volumes makes the pod's volumes on the host and returns their dirs by
// volume name. Projected and downwardAPI volumes are not provided.
func (r *podRunner) volumes() (map[string]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := map[string]string{}
	for _, v := range r.pod.Spec.Volumes {
		own := filepath.Join(r.dir, "volumes", v.Name)
		switch {
		case v.PersistentVolumeClaim != nil:
			pvc, err := r.a.claims.PersistentVolumeClaims(r.ns).Get(v.PersistentVolumeClaim.ClaimName)
			if err != nil {
				return nil, fmt.Errorf("claim %s: %w", v.PersistentVolumeClaim.ClaimName, err)
			}
			if pvc.DeletionTimestamp != nil {
				return nil, fmt.Errorf("claim %s is being deleted", pvc.Name)
			}
			dir := r.a.claimDir(pvc.Name, pvc.UID)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, err
			}
			out[v.Name] = dir
		case v.EmptyDir != nil:
			if err := os.MkdirAll(own, 0o755); err != nil {
				return nil, err
			}
			out[v.Name] = own
		case v.HostPath != nil:
			out[v.Name] = v.HostPath.Path
		case v.Secret != nil:
			src := v.Secret
			optional := src.Optional != nil && *src.Optional
			s, err := r.a.client.CoreV1().Secrets(r.ns).Get(ctx, src.SecretName, metav1.GetOptions{})
			data := map[string][]byte{}
			switch {
			case err == nil:
				data = s.Data
			case optional && apierrors.IsNotFound(err):
			default:
				return nil, fmt.Errorf("secret %s: %w", src.SecretName, err)
			}
			if err := writeItems(own, data, src.Items, src.DefaultMode); err != nil {
				return nil, fmt.Errorf("secret volume %s: %w", v.Name, err)
			}
			out[v.Name] = own
		case v.ConfigMap != nil:
			src := v.ConfigMap
			optional := src.Optional != nil && *src.Optional
			cm, err := r.a.client.CoreV1().ConfigMaps(r.ns).Get(ctx, src.Name, metav1.GetOptions{})
			data := map[string][]byte{}
			switch {
			case err == nil:
				for k, s := range cm.Data {
					data[k] = []byte(s)
				}
				for k, b := range cm.BinaryData {
					data[k] = b
				}
			case optional && apierrors.IsNotFound(err):
			default:
				return nil, fmt.Errorf("configMap %s: %w", src.Name, err)
			}
			if err := writeItems(own, data, src.Items, src.DefaultMode); err != nil {
				return nil, fmt.Errorf("configMap volume %s: %w", v.Name, err)
			}
			out[v.Name] = own
		}
	}
	return out, nil
}

// writeItems writes a Secret's or ConfigMap's keys (or the listed items)
// as files with their modes.
func writeItems(dir string, data map[string][]byte, items []corev1.KeyToPath, defaultMode *int32) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	mode := int32(0o644)
	if defaultMode != nil {
		mode = *defaultMode
	}
	if len(items) == 0 {
		for k := range data {
			items = append(items, corev1.KeyToPath{Key: k, Path: k})
		}
	}
	for _, it := range items {
		b, ok := data[it.Key]
		if !ok {
			return fmt.Errorf("no key %s", it.Key)
		}
		m := mode
		if it.Mode != nil {
			m = *it.Mode
		}
		p := filepath.Join(dir, filepath.Clean("/"+it.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, b, os.FileMode(m)); err != nil {
			return err
		}
		if err := os.Chmod(p, os.FileMode(m)); err != nil {
			return err
		}
	}
	return nil
}
