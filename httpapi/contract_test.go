package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

// The API tests talk to the router through contractHandler (newEnv wraps
// every test server in it): each request and its answer are checked
// against openapi.yaml, and a mismatch fails the test that made the
// request. Rules:
//
//   - a request the document does not describe must be refused: 401, 404,
//     405 or 413 (with the JSON error, when it is JSON), 412 under the
//     uploads (tus), or redirected to the path without its trailing slash;
//   - a request the document calls invalid (a bad parameter, a JSON body
//     that breaks its schema) must be refused (4xx, or a 5xx from a check
//     that comes first, e.g. an upload's node being away): the tests send
//     such requests on purpose, and the server must refuse what the
//     document refuses;
//   - every answer's status must be documented for its operation, with its
//     required headers and, for JSON, a body that matches the schema
//     (strict: the job JSON allows no field it does not list). Multipart,
//     binary and event-stream bodies are checked by content type only;
//   - 499 (the client went away; nobody reads it) is not checked.

// maxCapture bounds the answer body kept for validation.
const maxCapture = 8 << 20

type contractRoute struct {
	re     *regexp.Regexp
	names  []string
	path   string
	item   *openapi3.PathItem
	prefix bool
}

type contract struct {
	doc    *openapi3.T
	routes []contractRoute
	mu     sync.Mutex // kin-openapi's schema caches are not documented as safe for concurrent use
}

var loadContract = sync.OnceValues(func() (*contract, error) {
	doc, err := loadOpenAPI()
	if err != nil {
		return nil, err
	}
	c := &contract{doc: doc}
	for path, item := range doc.Paths.Map() {
		r := contractRoute{path: path, item: item}
		var b strings.Builder
		b.WriteString("^")
		segs := strings.Split(path, "/")
		for i, seg := range segs {
			if i > 0 {
				b.WriteString("/")
			}
			name, ok := strings.CutPrefix(seg, "{")
			if !ok {
				b.WriteString(regexp.QuoteMeta(seg))
				continue
			}
			name = strings.TrimSuffix(name, "}")
			r.names = append(r.names, name)
			if name == "path" && i == len(segs)-1 {
				b.WriteString("(?s)(.*)") // a file path may hold slashes (and any byte the handler refuses)
			} else {
				b.WriteString("([^/]+)")
			}
		}
		b.WriteString("$")
		r.re = regexp.MustCompile(b.String())
		c.routes = append(c.routes, r)
	}
	return c, nil
})

// find returns the operation that serves method on path, if documented.
func (c *contract) find(method, path string) (*routers.Route, map[string]string) {
	for _, r := range c.routes {
		m := r.re.FindStringSubmatch(path)
		if m == nil {
			continue
		}
		op := r.item.GetOperation(method)
		if op == nil {
			return nil, nil
		}
		params := map[string]string{}
		for i, name := range r.names {
			params[name] = m[i+1]
		}
		return &routers.Route{Spec: c.doc, Path: r.path, PathItem: r.item, Method: method, Operation: op}, params
	}
	return nil, nil
}

// contractHandler checks next's traffic against the document, reporting
// mismatches to t.
func contractHandler(t testing.TB, next http.Handler) http.Handler {
	c, err := loadContract()
	if err != nil {
		t.Fatal(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method := r.Method
		if m := r.Header.Get("X-HTTP-Method-Override"); m != "" && method == http.MethodPost &&
			strings.HasPrefix(r.URL.Path, UploadsRoute) {
			method = strings.ToUpper(m) // as serveUploads applies it
		}
		route, params := c.find(method, r.URL.Path)
		var in *openapi3filter.RequestValidationInput
		var reqErr error
		if route != nil {
			in, reqErr = c.checkRequest(r, method, route, params)
		}
		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if err := c.checkResponse(r.URL.Path, in, rec, reqErr); err != nil {
			t.Errorf("openapi.yaml: %s %s → %d: %v", method, r.URL.RequestURI(), rec.code(), err)
		}
	})
}

func (c *contract) options(excludeBody bool) *openapi3filter.Options {
	o := &openapi3filter.Options{
		ExcludeRequestBody:    excludeBody,
		ExcludeResponseBody:   excludeBody,
		IncludeResponseStatus: true,
		SkipSettingDefaults:   true,
		MultiError:            true,
		// Whether a token is needed depends on the node's configuration:
		// the handlers decide, and 401 must be documented.
		AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
	}
	o.WithCustomSchemaErrorFunc(func(err *openapi3.SchemaError) string {
		return "at " + strings.Join(err.JSONPointer(), "/") + ": " + err.Reason
	})
	return o
}

// checkRequest validates the request's parameters and, for a JSON body,
// the body (read here and handed on to the server unchanged). Other bodies
// must have a documented content type.
func (c *contract) checkRequest(r *http.Request, method string, route *routers.Route, params map[string]string) (*openapi3filter.RequestValidationInput, error) {
	vr := r.Clone(r.Context())
	vr.Method = method
	vr.Body = http.NoBody
	excludeBody := true
	var ctErr error
	if rb := route.Operation.RequestBody; rb != nil && r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
		ct := r.Header.Get("Content-Type")
		if ct == "" {
			// The handlers go by the body, not its label: one documented
			// type is that one, else a raw body.
			ct = "application/octet-stream"
			if len(rb.Value.Content) == 1 {
				for k := range rb.Value.Content {
					ct = k
				}
			}
			vr.Header.Set("Content-Type", ct)
		}
		mt, _, _ := mime.ParseMediaType(ct)
		if rb.Value.Content.Get(ct) == nil {
			ctErr = fmt.Errorf("request content type %q is not documented", ct)
		} else if mt == "application/json" && rb.Value.Content.Get("application/json") != nil {
			b, err := io.ReadAll(io.LimitReader(r.Body, MaxJSONBytes+1))
			orig := r.Body
			if err == nil && int64(len(b)) <= MaxJSONBytes {
				vr.Body, excludeBody = io.NopCloser(bytes.NewReader(b)), false
				r.Body = readCloser{bytes.NewReader(b), orig}
			} else {
				r.Body = readCloser{io.MultiReader(bytes.NewReader(b), orig), orig}
			}
		}
	}
	in := &openapi3filter.RequestValidationInput{Request: vr, PathParams: params, Route: route, Options: c.options(excludeBody)}
	c.mu.Lock()
	defer c.mu.Unlock()
	err := openapi3filter.ValidateRequest(context.Background(), in)
	if err == nil {
		err = ctErr
	}
	return in, err
}

func (c *contract) checkResponse(path string, in *openapi3filter.RequestValidationInput, rec *recorder, reqErr error) error {
	status := rec.code()
	if status == statusClientClosed {
		return nil
	}
	h := rec.Header()
	if in == nil {
		// 301/307: gin's redirect to the path without its trailing slash.
		refusals := []int{301, 307, 401, 404, 405, 413}
		if strings.HasPrefix(path, UploadsRoute) {
			refusals = append(refusals, 412) // tusd checks Tus-Resumable before the method
		}
		if !slices.Contains(refusals, status) {
			return fmt.Errorf("an undocumented request was answered %d", status)
		}
		return c.checkErrorBody(h, rec.body.Bytes())
	}
	if reqErr != nil && status < 400 {
		return fmt.Errorf("the request breaks the document (%v), yet it was answered %d", reqErr, status)
	}
	op := in.Route.Operation
	if op.Responses.Status(status) == nil {
		return fmt.Errorf("status %d is not documented for %s %s", status, in.Route.Method, in.Route.Path)
	}
	if in.Route.Method == http.MethodHead {
		return nil // kin-openapi checks no HEAD answer; its status is documented
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: h,
		Options: c.options(rec.truncated)}
	out.SetBodyBytes(rec.body.Bytes())
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		return err
	}
	return c.checkEvents(op.Responses.Status(status).Value, h.Get("Content-Type"), rec.body.Bytes())
}

// checkEvents checks the data of each complete server-sent event against
// the schema its media type's x-gosty-events names for the event.
func (c *contract) checkEvents(resp *openapi3.Response, ct string, body []byte) error {
	if mt, _, _ := mime.ParseMediaType(ct); mt != "text/event-stream" {
		return nil
	}
	schemas, _ := resp.Content.Get(ct).Extensions["x-gosty-events"].(map[string]any)
	blocks := strings.Split(string(body), "\n\n")
	for _, block := range blocks[:len(blocks)-1] { // the last may be cut short
		var event, data string
		for line := range strings.SplitSeq(block, "\n") {
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				event = v
			} else if v, ok := strings.CutPrefix(line, "data: "); ok {
				data += v
			}
		}
		if event == "" {
			continue // a ping
		}
		name, _ := schemas[event].(string)
		ref := c.doc.Components.Schemas[name]
		if ref == nil {
			return fmt.Errorf("event %q is not documented (x-gosty-events)", event)
		}
		var v any
		if err := json.Unmarshal([]byte(data), &v); err != nil {
			return fmt.Errorf("event %q: %v", event, err)
		}
		if err := ref.Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
			return fmt.Errorf("event %q does not match %s: %v", event, name, err)
		}
	}
	return nil
}

// checkErrorBody checks a JSON answer to an undocumented request against
// the Error schema.
func (c *contract) checkErrorBody(h http.Header, body []byte) error {
	if mt, _, _ := mime.ParseMediaType(h.Get("Content-Type")); mt != "application/json" || len(body) == 0 {
		return nil
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("error body: %v", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.doc.Components.Schemas["Error"].Value.VisitJSON(v, openapi3.EnableJSONSchema2020())
}

// recorder passes an answer on and keeps its status and the start of its
// body. Flush, and Unwrap for http.ResponseController (deadlines), reach
// the connection's own writer.
type recorder struct {
	http.ResponseWriter
	status    int
	body      bytes.Buffer
	truncated bool
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 { // 1xx answers are interim
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if room := maxCapture - r.body.Len(); room > 0 {
		r.body.Write(p[:min(len(p), room)])
	}
	if len(p) > 0 && r.body.Len() >= maxCapture {
		r.truncated = true
	}
	return r.ResponseWriter.Write(p)
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *recorder) code() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}
