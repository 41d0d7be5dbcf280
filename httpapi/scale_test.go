package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// fakeScaler records the replicas it was asked for.
type fakeScaler struct {
	mu    sync.Mutex
	asked []int
	err   error
}

func (f *fakeScaler) Scale(ctx context.Context, n int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return 0, f.err
	}
	f.asked = append(f.asked, n)
	return n, nil
}

type statusErr struct {
	status int
	msg    string
}

func (e statusErr) Error() string   { return e.msg }
func (e statusErr) HTTPStatus() int { return e.status }

func TestScaleWithoutScaler(t *testing.T) {
	e := newEnv(t, nil)
	resp, b := do(t, "POST", e.srv.URL+"/api/v1/cluster/scale", strings.NewReader(`{"replicas":3}`), nil)
	if resp.StatusCode != http.StatusNotImplemented {
		t.Fatalf("status %d, want 501: %s", resp.StatusCode, b)
	}
	if code, msg := errCode(t, b); code != "not_implemented" || !strings.Contains(msg, "Kubernetes") {
		t.Fatalf("error %q %q", code, msg)
	}
	_, b = do(t, "GET", e.srv.URL+"/api/v1/cluster", nil, nil)
	var st ClusterStatus
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if st.Scalable || st.Leader != "n1" {
		t.Fatalf("cluster status %s, want scalable false and the backend's fields", b)
	}
}

func TestScale(t *testing.T) {
	sc := &fakeScaler{}
	e := newEnv(t, func(c *Config) { c.Scaler = sc; c.APIToken = "tok" })
	auth := map[string]string{"Authorization": "Bearer tok"}

	_, b := do(t, "GET", e.srv.URL+"/api/v1/cluster", nil, auth)
	var st ClusterStatus
	if err := json.Unmarshal(b, &st); err != nil || !st.Scalable || st.Leader != "n1" {
		t.Fatalf("cluster status %s (%v), want scalable and the backend's fields", b, err)
	}

	tests := []struct {
		name    string
		body    string
		hdr     map[string]string
		err     error
		status  int
		errCode string
	}{
		{name: "ok", body: `{"replicas": 5}`, hdr: auth, status: 202},
		{name: "no token", body: `{"replicas": 5}`, status: 401, errCode: "unauthorized"},
		{name: "zero", body: `{"replicas": 0}`, hdr: auth, status: 400, errCode: "invalid_request"},
		{name: "too many", body: fmt.Sprintf(`{"replicas": %d}`, MaxScaleReplicas+1), hdr: auth, status: 400, errCode: "invalid_request"},
		{name: "missing", body: `{}`, hdr: auth, status: 400, errCode: "invalid_request"},
		{name: "fraction", body: `{"replicas": 2.5}`, hdr: auth, status: 400, errCode: "invalid_request"},
		{name: "string", body: `{"replicas": "3"}`, hdr: auth, status: 400, errCode: "invalid_request"},
		{name: "unknown field", body: `{"replicas": 3, "force": true}`, hdr: auth, status: 400, errCode: "invalid_request"},
		{name: "trailing", body: `{"replicas": 3} {}`, hdr: auth, status: 400, errCode: "invalid_request"},
		{name: "not json", body: `replicas=3`, hdr: auth, status: 400, errCode: "invalid_request"},
		{name: "huge body", body: `{"replicas": 3` + strings.Repeat(" ", int(MaxJSONBytes)) + `}`, hdr: auth, status: 413, errCode: "too_large"},
		{name: "forbidden", body: `{"replicas": 3}`, hdr: auth, err: statusErr{403, "kubernetes says no"}, status: 403, errCode: "forbidden"},
		{name: "not found upstream", body: `{"replicas": 3}`, hdr: auth, err: statusErr{404, "statefulset gone"}, status: 502, errCode: "scale_failed"},
		{name: "conflict", body: `{"replicas": 3}`, hdr: auth, err: fmt.Errorf("wrapped: %w", statusErr{409, "busy"}), status: 409, errCode: "conflict"},
		{name: "plain error", body: `{"replicas": 3}`, hdr: auth, err: errors.New("dial tcp: refused"), status: 502, errCode: "scale_failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc.mu.Lock()
			sc.err, sc.asked = tt.err, nil
			sc.mu.Unlock()
			resp, b := do(t, "POST", e.srv.URL+"/api/v1/cluster/scale", strings.NewReader(tt.body), tt.hdr)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, b)
			}
			if tt.errCode != "" {
				code, msg := errCode(t, b)
				if code != tt.errCode {
					t.Fatalf("error code %q, want %q", code, tt.errCode)
				}
				if tt.err != nil && !strings.Contains(msg, tt.err.Error()) {
					t.Fatalf("message %q does not pass on %q", msg, tt.err)
				}
				return
			}
			if string(b) != "{\"replicas\":5}\n" {
				t.Fatalf("body %q", b)
			}
			if len(sc.asked) != 1 || sc.asked[0] != 5 {
				t.Fatalf("scaler asked %v, want [5]", sc.asked)
			}
		})
	}
}
