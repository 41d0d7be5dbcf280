package httpapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gin-gonic/gin"
)

// loadOpenAPI loads and validates the embedded document once.
var loadOpenAPI = sync.OnceValues(func() (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(OpenAPI())
	if err != nil {
		return nil, fmt.Errorf("loading openapi.yaml: %w", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		return nil, fmt.Errorf("openapi.yaml is OpenAPI %s, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi.yaml does not validate: %w", err)
	}
	return doc, nil
})

func openAPIDocument(t testing.TB) *openapi3.T {
	t.Helper()
	doc, err := loadOpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestOpenAPIDocument: the served document is OpenAPI 3.1 and valid, and
// describes only the public API.
func TestOpenAPIDocument(t *testing.T) {
	doc := openAPIDocument(t)
	for path, item := range doc.Paths.Map() {
		if strings.HasPrefix(path, "/internal") {
			t.Errorf("%s: internal routes are not public", path)
		}
		for method, op := range item.Operations() {
			for status, resp := range op.Responses.Map() {
				for mt, content := range resp.Value.Content {
					events, _ := content.Extensions["x-gosty-events"].(map[string]any)
					for event, name := range events {
						if s, _ := name.(string); doc.Components.Schemas[s] == nil {
							t.Errorf("%s %s %s %s: event %q names no schema (%v)", method, path, status, mt, event, name)
						}
					}
				}
			}
		}
	}
}

// errorsTB records the errors a contractHandler reports.
type errorsTB struct {
	testing.TB
	errs []string
}

func (e *errorsTB) Errorf(format string, args ...any) {
	e.errs = append(e.errs, fmt.Sprintf(format, args...))
}

// TestContractCatchesDrift: the checker the API tests run under reports an
// undocumented field in the job JSON, an undocumented status, a missing
// required header, an undocumented route that is not refused, and a
// request the document refuses that was served.
func TestContractCatchesDrift(t *testing.T) {
	for _, tc := range []struct {
		name, method, url string
		status            int
		header            map[string]string
		body              string
		wantErr           bool
	}{
		{"good", "GET", "/healthz", 200, nil, `{"status":"ok"}`, false},
		{"extra field", "GET", "/api/v1/jobs/j1", 200, nil,
			`{"id":"j1","name":"a","state":"queued","progress":0,"options":{},"source":{"format":"","duration":0,"size":0},
			"renditions":[],"chunk_count":0,"bytes":{"source":0,"chunks":0,"encoded":0,"audio":0,"published":0},
			"created_at":"2025-01-02T03:04:05Z","updated_at":"2025-01-02T03:04:05Z","keep_source":true,"priority":"normal",
			"hdr":true}`, true},
		{"undocumented status", "GET", "/api/v1/jobs/j1", 418, nil, `{"error":{"code":"teapot","message":"x"}}`, true},
		{"unknown error code", "GET", "/api/v1/jobs/j1", 404, nil, `{"error":{"code":"gone_fishing","message":"x"}}`, true},
		{"429 without Retry-After", "POST", "/api/v1/jobs?filename=a", 429, nil, `{"error":{"code":"too_many_uploads","message":"x"}}`, true},
		{"undocumented route served", "GET", "/api/v1/nothing", 200, nil, `{}`, true},
		{"bad limit served", "GET", "/api/v1/jobs?limit=0", 200, nil, `{"jobs":[]}`, true},
		{"bad limit refused", "GET", "/api/v1/jobs?limit=0", 400, nil, `{"error":{"code":"invalid_request","message":"x"}}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &errorsTB{TB: t}
			h := contractHandler(rec, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json; charset=utf-8")
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			}))
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(tc.method, tc.url, nil))
			if got := len(rec.errs) > 0; got != tc.wantErr {
				t.Errorf("reported %q, want an error: %v", rec.errs, tc.wantErr)
			}
		})
	}
}

// undocumentedRoutes are router entries the document leaves out on
// purpose, with the reason.
var undocumentedRoutes = map[string]string{
	"GET /api/v1/uploads/*path":     "gin's Any registers every method for tus; tusd answers 405 (downloads are off)",
	"PUT /api/v1/uploads/*path":     "gin's Any; tusd answers 405",
	"CONNECT /api/v1/uploads/*path": "gin's Any; tusd answers 405",
	"TRACE /api/v1/uploads/*path":   "gin's Any; tusd answers 405",
}

// ginRoutePattern matches the document's path templates that a gin route
// serves: ":id" is one {param}, a trailing "*path" catches "" or one
// {param} (which may hold slashes, as {path} of files does).
func ginRoutePattern(route string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for i, seg := range strings.Split(route, "/") {
		if i > 0 {
			b.WriteString("/")
		}
		switch {
		case strings.HasPrefix(seg, ":"):
			b.WriteString(`\{[^/}]+\}`)
		case strings.HasPrefix(seg, "*"):
			b.WriteString(`(\{[^/}]+\})?`)
		default:
			b.WriteString(regexp.QuoteMeta(seg))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// TestOpenAPIRoutes walks the public router and the document both ways:
// every route is described (or excluded above, with a reason) and every
// described operation is a route; its x-gosty-access matches the class
// TestEveryRouteClassified checks, and its security says the same.
func TestOpenAPIRoutes(t *testing.T) {
	doc := openAPIDocument(t)
	e := newEnv(t, func(c *Config) { c.UploadDir = t.TempDir() })
	type op struct{ method, path string }
	var docOps []op
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			docOps = append(docOps, op{method, path})
		}
	}
	engine, ok := e.api.Handler().(*gin.Engine)
	if !ok {
		t.Fatalf("Handler is a %T, not the gin engine", e.api.Handler())
	}
	routes := engine.Routes()
	for _, r := range routes {
		key := r.Method + " " + r.Path
		if _, ok := undocumentedRoutes[key]; ok {
			continue
		}
		re := ginRoutePattern(r.Path)
		if !slices.ContainsFunc(docOps, func(o op) bool { return o.method == r.Method && re.MatchString(o.path) }) {
			t.Errorf("route %s is not in openapi.yaml", key)
		}
	}
	for _, o := range docOps {
		i := slices.IndexFunc(routes, func(r gin.RouteInfo) bool {
			return r.Method == o.method && ginRoutePattern(r.Path).MatchString(o.path)
		})
		if i < 0 {
			t.Errorf("openapi.yaml describes %s %s, which no route serves", o.method, o.path)
			continue
		}
		r := routes[i]
		if _, ok := undocumentedRoutes[r.Method+" "+r.Path]; ok {
			t.Errorf("%s %s is described although undocumentedRoutes excludes it", o.method, o.path)
		}
		class, ok := routeClass(r.Method, r.Path)
		operation := doc.Paths.Value(o.path).GetOperation(o.method)
		access, _ := operation.Extensions["x-gosty-access"].(string)
		if !ok || access != class {
			t.Errorf("%s %s: x-gosty-access %q, the route's class is %q", o.method, o.path, access, class)
		}
		if want := securityOf(class); operation.Security == nil || securityString(*operation.Security) != want {
			t.Errorf("%s %s: security %v, want %s for a %s route", o.method, o.path, operation.Security, want, class)
		}
	}
}

// securityOf is the security requirement a route class documents.
func securityOf(class string) string {
	switch class {
	case routeOpen:
		return ""
	case routeRead:
		return "bearerAuth|-"
	case routeFile:
		return "bearerAuth|playbackSignature|-"
	}
	return "bearerAuth"
}

func securityString(reqs openapi3.SecurityRequirements) string {
	var parts []string
	for _, r := range reqs {
		if len(r) == 0 {
			parts = append(parts, "-")
		}
		for name := range r {
			parts = append(parts, name)
		}
	}
	return strings.Join(parts, "|")
}

// TestOpenAPIServed: the document is served at /api/v1/openapi.yaml (GET
// and HEAD) as a read: 401 without a token when tokens are set and reads
// are closed, 200 with a token or under PublicRead.
func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t, nil)
	resp, b := do(t, "GET", e.srv.URL+OpenAPIRoute, nil, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/yaml" || string(b) != string(openAPIDoc) {
		t.Fatalf("GET: %d %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(b))
	}
	resp, b = do(t, "HEAD", e.srv.URL+OpenAPIRoute, nil, nil)
	if resp.StatusCode != 200 || len(b) != 0 || resp.ContentLength != int64(len(openAPIDoc)) {
		t.Fatalf("HEAD: %d, %d bytes, length %d", resp.StatusCode, len(b), resp.ContentLength)
	}
	for _, tc := range []struct {
		name       string
		publicRead bool
		token      string
		want       int
	}{
		{"closed, no token", false, "", http.StatusUnauthorized},
		{"closed, token", false, "tok", http.StatusOK},
		{"public read", true, "", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.APIToken, c.PublicRead = "tok", tc.publicRead })
			for _, method := range []string{"GET", "HEAD"} {
				if code, _, _ := status(t, method, e.srv.URL+OpenAPIRoute, tc.token); code != tc.want {
					t.Errorf("%s: %d, want %d", method, code, tc.want)
				}
			}
		})
	}
}
