package httpapi

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gosty/gosty/cluster"
)

// Route classes for TestEveryRouteClassified.
const (
	routeOpen  = "open"  // no token ever: probes, the UI's files, preflights, /metrics
	routeRead  = "read"  // a token when tokens are set, unless PublicRead
	routeFile  = "file"  // read, but a signature will do under signed playback
	routeWrite = "write" // a token when tokens are set, always
)

// routeClass is the class of every public route; a route added without a
// class here fails TestEveryRouteClassified.
func routeClass(method, path string) (string, bool) {
	if strings.HasPrefix(path, "/api/v1/uploads/") {
		switch method {
		case http.MethodOptions:
			return routeOpen, true
		case http.MethodGet, http.MethodHead:
			return routeRead, true
		}
		return routeWrite, true
	}
	class, ok := map[string]string{
		"GET /healthz":                         routeOpen,
		"GET /readyz":                          routeOpen,
		"GET /metrics":                         routeOpen,
		"GET /":                                routeOpen,
		"HEAD /":                               routeOpen,
		"GET /assets/*path":                    routeOpen,
		"HEAD /assets/*path":                   routeOpen,
		"OPTIONS /api/v1/jobs/:id/files/*path": routeOpen,
		"GET /api/v1/cluster":                  routeRead,
		"GET /api/v1/openapi.yaml":             routeRead,
		"HEAD /api/v1/openapi.yaml":            routeRead,
		"GET /api/v1/events":                   routeRead,
		"GET /api/v1/jobs":                     routeRead,
		"GET /api/v1/jobs/:id":                 routeRead,
		"GET /api/v1/jobs/:id/events":          routeRead,
		"GET /api/v1/jobs/:id/files/*path":     routeFile,
		"HEAD /api/v1/jobs/:id/files/*path":    routeFile,
		"POST /api/v1/cluster/scale":           routeWrite,
		"POST /api/v1/jobs":                    routeWrite,
		"DELETE /api/v1/jobs/:id":              routeWrite,
	}[method+" "+path]
	return class, ok
}

// status sends one request and returns its status and, for an error, its
// body; a stream's body is not read (the request is cut once the header
// is in).
func status(t *testing.T, method, url, token string) (int, []byte, http.Header) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var b []byte
	if resp.StatusCode >= 400 {
		b, _ = io.ReadAll(resp.Body)
	}
	return resp.StatusCode, b, resp.Header
}

// TestEveryRouteClassified walks the public router: every route has a
// class; with tokens set, every read is 401 (JSON, WWW-Authenticate)
// anonymous and passes with a token, and passes anonymous with
// PublicRead; open routes never ask for one; files under public playback
// are reads, under signed playback they take a signature instead.
func TestEveryRouteClassified(t *testing.T) {
	const tok = "tok-read"
	for _, mode := range []struct {
		name       string
		publicRead bool
		signed     bool
	}{
		{"closed", false, false},
		{"public read", true, false},
		{"closed signed", false, true},
		{"public read signed", true, true},
	} {
		t.Run(mode.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) {
				c.APITokens = []string{tok}
				c.PublicRead = mode.publicRead
				c.UploadDir = t.TempDir()
				if mode.signed {
					c.PlaybackKey = DerivePlaybackKey("cluster-secret")
				}
			})
			j := sampleJob()
			j.State = cluster.JobDone
			j.Outputs = map[string]cluster.BlobRef{"master.m3u8": e.blobs.add("h-master", []byte(testMaster))}
			j.HLS = "master.m3u8"
			e.jobs.put(j)
			classes := map[string]int{}
			for _, r := range e.api.engine.Routes() {
				class, ok := routeClass(r.Method, r.Path)
				if !ok {
					t.Errorf("route %s %s is not classified in this test", r.Method, r.Path)
					continue
				}
				classes[class]++
				if class == routeWrite {
					continue // TestEveryStateChangingRouteNeedsAToken
				}
				path := strings.NewReplacer(":id", "j1", "*path", "master.m3u8").Replace(r.Path)
				if strings.HasPrefix(r.Path, "/api/v1/uploads/") {
					path = strings.Replace(r.Path, "*path", newUploadID("n1"), 1)
				}
				url := e.srv.URL + path
				anon, body, hdr := status(t, r.Method, url, "")
				withTok, tbody, _ := status(t, r.Method, url, tok)
				switch {
				case class == routeOpen || class == routeRead && mode.publicRead:
					if anon == http.StatusUnauthorized || anon == http.StatusForbidden {
						t.Errorf("%s %s anonymous: %d %s", r.Method, path, anon, body)
					}
				case class == routeFile && mode.signed:
					if anon != http.StatusForbidden {
						t.Errorf("%s %s unsigned under signed playback: %d, want 403", r.Method, path, anon)
					}
					if withTok != http.StatusOK {
						t.Errorf("%s %s with a token: %d %s", r.Method, path, withTok, tbody)
					}
					exp := time.Now().Add(time.Hour).Unix()
					signed, sbody, _ := status(t, r.Method, url+"?"+PlaybackQuery(DerivePlaybackKey("cluster-secret"), "j1", exp), "")
					if signed != http.StatusOK {
						t.Errorf("%s %s signed: %d %s", r.Method, path, signed, sbody)
					}
				case class == routeFile && mode.publicRead:
					if anon != http.StatusOK {
						t.Errorf("%s %s anonymous with public read and playback: %d %s", r.Method, path, anon, body)
					}
				default: // a closed read
					if anon != http.StatusUnauthorized {
						t.Errorf("%s %s anonymous: %d, want 401", r.Method, path, anon)
						continue
					}
					if r.Method != http.MethodHead {
						if code, msg := errCode(t, body); code != "unauthorized" || strings.Contains(msg, tok) {
							t.Errorf("%s %s: %s %q", r.Method, path, code, msg)
						}
					}
					if hdr.Get("WWW-Authenticate") == "" {
						t.Errorf("%s %s: no WWW-Authenticate", r.Method, path)
					}
					if bad, _, _ := status(t, r.Method, url, "nope"); bad != http.StatusUnauthorized {
						t.Errorf("%s %s with a wrong token: %d, want 401", r.Method, path, bad)
					}
				}
				if withTok == http.StatusUnauthorized || withTok == http.StatusForbidden {
					t.Errorf("%s %s with a token: %d %s", r.Method, path, withTok, tbody)
				}
				// The reads with a body answer 200 to a token holder
				// (an unknown upload is 404, the UI's asset path too).
				if class != routeWrite && !strings.HasPrefix(r.Path, "/api/v1/uploads/") &&
					!strings.HasPrefix(r.Path, "/assets/") && r.Method != http.MethodOptions && withTok != http.StatusOK {
					t.Errorf("%s %s with a token: %d %s", r.Method, path, withTok, tbody)
				}
			}
			if classes[routeRead] < 6 || classes[routeWrite] < 3 || classes[routeOpen] < 6 || classes[routeFile] != 2 {
				t.Errorf("route classes %v: routes missing", classes)
			}
		})
	}
}

// TestSeparateMetrics: with SeparateMetrics, /metrics is off the public
// router (404 JSON) and MetricsHandler serves it.
func TestSeparateMetrics(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.SeparateMetrics = true; c.APIToken = "t" })
	resp, b := do(t, "GET", e.srv.URL+"/metrics", nil, map[string]string{"Authorization": "Bearer t"})
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("public /metrics: %d %s", resp.StatusCode, b)
	}
	if code, _ := errCode(t, b); code != "not_found" {
		t.Fatalf("public /metrics: %s", code)
	}
	for _, r := range e.api.engine.Routes() {
		if r.Path == "/metrics" {
			t.Fatalf("route %s %s on the public router", r.Method, r.Path)
		}
	}
	w := httptest.NewRecorder()
	e.api.MetricsHandler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "gosty_http_requests_total") {
		t.Fatalf("MetricsHandler: %d %.200s", w.Code, w.Body.String())
	}
}
