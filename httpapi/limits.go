package httpapi

import (
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/gosty/gosty/internal/strictjson"
)

// Limits of the public API (the upload body has its own, MaxUploadBytes).
const (
	// MaxJSONBytes bounds the body of every request but an upload: JSON
	// endpoints answer 413 beyond it.
	MaxJSONBytes int64 = 64 << 10
	// DefaultMaxConcurrentUploads is the uploads a node takes at once when
	// Config.MaxConcurrentUploads is 0; more get 429 with Retry-After.
	DefaultMaxConcurrentUploads = 4
	// DefaultUploadIdleTimeout is how long an upload may send nothing
	// before it is cut (408) when Config.UploadIdleTimeout is 0. It is an
	// idle timeout, not a total: a large upload on a slow link takes as
	// long as it needs while bytes flow.
	DefaultUploadIdleTimeout = time.Minute
)

// uploadRoute is the one route whose body is not capped at MaxJSONBytes.
const uploadRoute = "/api/v1/jobs"

// limitBody caps the body of every request but the upload at
// MaxJSONBytes: a declared length beyond it is answered 413 at once, a
// chunked body fails its read past it (http.MaxBytesError, which
// writeError and decodeJSON answer with 413).
func (a *API) limitBody(c *gin.Context) {
	r := c.Request
	if r.Method == http.MethodPost && c.FullPath() == uploadRoute {
		return
	}
	if strings.HasPrefix(c.FullPath(), UploadsRoute) {
		return // tus bounds its own bodies (MaxSize, Upload-Length)
	}
	if r.ContentLength > MaxJSONBytes {
		c.Header("Connection", "close")
		writeErrorCode(c, http.StatusRequestEntityTooLarge, "too_large", "the request body exceeds the limit of "+formatBytes(MaxJSONBytes))
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(c.Writer, r.Body, MaxJSONBytes)
	}
}

// decodeJSON reads a JSON object body (at most MaxJSONBytes, no unknown
// fields, nothing after it) into v. On failure it has answered: 413 for a
// body over the limit, 400 for anything malformed.
func (a *API) decodeJSON(c *gin.Context, v any) bool {
	err := strictjson.Decode(http.MaxBytesReader(c.Writer, c.Request.Body, MaxJSONBytes), v)
	if err == nil {
		return true
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		c.Header("Connection", "close")
		writeErrorCode(c, http.StatusRequestEntityTooLarge, "too_large", "the request body exceeds the limit of "+formatBytes(tooBig.Limit))
		return false
	}
	writeErrorCode(c, http.StatusBadRequest, "invalid_request", "malformed JSON body: "+err.Error())
	return false
}

// uploadSlot admits an upload when this node has a free upload slot, and
// answers 429 with Retry-After otherwise. The slot is given back when the
// handler returns, which it does when the client goes away too (the body
// read fails). A body declared larger than the limit is refused with 413
// before it takes a slot.
func (a *API) uploadSlot(c *gin.Context) {
	release, ok := a.takeUploadSlot(c, true)
	if !ok {
		return
	}
	defer release()
	c.Next()
}

// takeUploadSlot takes an upload slot, or answers 413, 507 (a declared
// length that does not fit on the data volume, when the body is stored
// here: here is false for a body relayed to the node that holds its
// upload, which checks its own volume) or 429 and returns false. The caller gives the slot back with release.
func (a *API) takeUploadSlot(c *gin.Context, here bool) (release func(), ok bool) {
	if c.Request.ContentLength > a.maxBody {
		c.Header("Connection", "close")
		writeErrorCode(c, http.StatusRequestEntityTooLarge, "too_large", tooLargeMessage(a.maxBody))
		return nil, false
	}
	if n := c.Request.ContentLength; n > 0 && a.space != nil && here {
		if err := a.space.Admit(n); err != nil {
			a.writeError(c, err) // 507 before a byte of the body is read
			return nil, false
		}
	}
	select {
	case a.uploads <- struct{}{}:
		return func() { <-a.uploads }, true
	default:
		c.Header("Retry-After", "1")
		writeErrorCode(c, http.StatusTooManyRequests, "too_many_uploads",
			"this node is taking "+strconv.Itoa(cap(a.uploads))+" uploads already; retry shortly")
		return nil, false
	}
}

// idleReader extends the connection's read deadline before every read of
// an upload body, so that an upload is cut when it stalls for the idle
// timeout but never for taking long while bytes flow. Once the body has
// ended (or failed) it leaves the deadline alone: the server then watches
// the connection itself.
type idleReader struct {
	r        io.Reader
	rc       *http.ResponseController
	idle     time.Duration
	done     bool
	timedOut bool
}

func (r *idleReader) Read(p []byte) (int, error) {
	if r.done {
		return r.r.Read(p)
	}
	_ = r.rc.SetReadDeadline(time.Now().Add(r.idle))
	n, err := r.r.Read(p)
	if err != nil {
		r.done = true
		if errors.Is(err, os.ErrDeadlineExceeded) {
			r.timedOut = true
		}
	}
	return n, err
}

// errUploadIdle is answered 408.
var errUploadIdle = errors.New("upload stalled")

// restoreBody puts the request's own body back when the handler returns
// (call it before wrapping r.Body, and defer what it returns). The server
// looks at the request's body after the handler to tell an answer given
// before the body was read (a 413 or a 507 mid-upload): it then keeps the
// connection open for a moment after the answer, reading, so that a
// client still sending gets the answer rather than a connection reset.
// With a wrapper left in its place it would close at once.
func restoreBody(r *http.Request) func() {
	orig := r.Body
	return func() { r.Body = orig }
}
