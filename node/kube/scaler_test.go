package kube

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func TestStatefulSetOf(t *testing.T) {
	for pod, want := range map[string]string{
		"gosty-0": "gosty", "gosty-12": "gosty", "my-gosty-3": "my-gosty", "a.b-1": "a.b",
		"gosty": "", "gosty-": "", "gosty-01": "", "-1": "", "Gosty-1": "", "gosty-x": "",
	} {
		got, ok := StatefulSetOf(pod)
		if got != want || ok != (want != "") {
			t.Errorf("StatefulSetOf(%q) = %q, %v; want %q", pod, got, ok, want)
		}
	}
}

func TestInClusterOutside(t *testing.T) {
	t.Setenv(EnvServiceHost, "")
	s, err := InCluster("gosty-0")
	if s != nil || err != nil {
		t.Fatalf("outside Kubernetes: %v, %v; want nil, nil", s, err)
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(Config{Host: "https://127.0.0.1:1", Namespace: "ns"}); err == nil {
		t.Fatal("no StatefulSet accepted")
	}
}

// fakeAPIServer answers the scale subresource like kube-apiserver does.
type fakeAPIServer struct {
	mu       sync.Mutex
	replicas int
	forbid   bool
	requests []string
}

func (f *fakeAPIServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	f.requests = append(f.requests, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery+" "+r.Header.Get("Content-Type")+" "+
		r.Header.Get("Authorization")+" "+string(body))
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Path != "/apis/apps/v1/namespaces/media/statefulsets/gosty/scale" {
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"statefulsets.apps \"x\" not found","reason":"NotFound","code":404}`)
		return
	}
	if f.forbid {
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"statefulsets.apps \"gosty\" is forbidden: User \"system:serviceaccount:media:gosty\" cannot patch resource \"statefulsets/scale\"","reason":"Forbidden","code":403}`)
		return
	}
	if r.Method == http.MethodPatch {
		f.replicas = 9 // what the body asks, in this test
	}
	_, _ = io.WriteString(w, `{"kind":"Scale","apiVersion":"autoscaling/v1","metadata":{"name":"gosty","namespace":"media"},"spec":{"replicas":`+
		strconv.Itoa(f.replicas)+`},"status":{"replicas":3,"selector":"app=gosty"}}`)
}

func TestScaleRequests(t *testing.T) {
	fake := &fakeAPIServer{replicas: 3}
	srv := httptest.NewUnstartedServer(fake)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted client's handshake
	srv.StartTLS()
	defer srv.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("tok-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Host: srv.URL, CAData: ca, BearerTokenFile: tokenFile, Namespace: "media", StatefulSet: "gosty"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if spec, status, err := s.Replicas(ctx); err != nil || spec != 3 || status != 3 {
		t.Fatalf("Replicas() = %d, %d, %v", spec, status, err)
	}
	got, err := s.Scale(ctx, 9)
	if err != nil || got != 9 {
		t.Fatalf("Scale(9) = %d, %v", got, err)
	}
	patch := fake.requests[len(fake.requests)-1]
	for _, want := range []string{"PATCH /apis/apps/v1/namespaces/media/statefulsets/gosty/scale?",
		"fieldManager=gosty", "application/merge-patch+json", "Bearer tok-1", `{"spec":{"replicas":9}}`} {
		if !strings.Contains(patch, want) {
			t.Errorf("request %q lacks %q", patch, want)
		}
	}

	fake.forbid = true
	_, err = s.Scale(ctx, 4)
	var ke *Error
	if !errors.As(err, &ke) || ke.HTTPStatus() != http.StatusForbidden ||
		!strings.Contains(err.Error(), `cannot patch resource "statefulsets/scale"`) || !strings.Contains(err.Error(), "k8s/rbac.yaml") {
		t.Fatalf("forbidden: %v", err)
	}

	other, err := New(Config{Host: srv.URL, CAData: ca, BearerToken: "t", Namespace: "media", StatefulSet: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Scale(ctx, 2); !errors.As(err, &ke) || ke.HTTPStatus() != http.StatusNotFound {
		t.Fatalf("missing StatefulSet: %v", err)
	}

	// A server whose certificate the CA does not vouch for is refused.
	untrusted, err := New(Config{Host: srv.URL, BearerToken: "t", Namespace: "media", StatefulSet: "gosty"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := untrusted.Scale(ctx, 2); err == nil || errors.As(err, &ke) {
		t.Fatalf("untrusted server: %v", err)
	}
}
