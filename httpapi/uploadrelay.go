package httpapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/cluster/peerlink"
	"github.com/gosty/gosty/cluster/peerproto"
)

// Resume anywhere. An upload lives on the node that took it, and its ID
// names that node (uploadid.go). A node that gets a HEAD, PATCH or DELETE
// of an upload it does not hold relays it over the internal API to the
// node named (UploadRelay, cluster.Peers.RelayUpload), which serves it as
// it serves its own clients (ServeRelayedUpload), and passes the answer on:
// status, tus headers, Gosty-Job-Id and the job JSON of a finishing PATCH.
//
// The relaying node applies the client-facing rules: the API token
// (checked before relaying; the owner trusts the cluster key and the
// submitter identity sent along), its own upload slot for a PATCH (429),
// and the idle timeout on the client's body (408). The owner applies its
// own slot and idle rules to the relayed body too. A PATCH body streams
// through (a relaying node holds no more than a read buffer of it), and is
// sent only once the owner has accepted the request. When the owner is not
// alive in gossip, cannot be reached, or stops taking bytes for longer
// than the idle timeout, the client gets 503 with Retry-After and a
// message naming the node: its upload resumes when the node is back. When
// no node of the name was ever in the cluster (ErrOwnerUnknown), or it has
// been away too long to wait for (ErrOwnerGone), the client gets what tus
// says of an upload that is not there: 404 or 410, no Upload-Offset, no
// JSON (uploadMissing), and a tus client starts a new upload.

// UploadRelay reaches the node that holds a resumable upload.
type UploadRelay interface {
	// RelayUpload sends call to the node named owner (its internal API)
	// and returns the answer; the caller closes its body. An error means
	// no answer came: the node is not alive in the cluster or not
	// reachable, or the body or ctx failed. It wraps ErrOwnerUnknown or
	// ErrOwnerGone when the upload cannot come back.
	RelayUpload(ctx context.Context, owner string, call cluster.UploadCall) (*http.Response, error)
}

// Errors of an UploadRelay for an owner that will not serve the upload.
var (
	// ErrOwnerUnknown: no node of that name is in the cluster, nor ever
	// was (the ID is from another cluster, or made up). Answered 404.
	ErrOwnerUnknown = errors.New("no node of that name is or was in the cluster")
	// ErrOwnerGone: the node was in the cluster but has not been alive
	// for longer than the relaying node waits for it (it left or died).
	// Answered 410 Gone.
	ErrOwnerGone = errors.New("the node has been gone too long")
)

// relayRetryAfter is the Retry-After of an answer that the upload's node is
// unavailable (in seconds: about what a restarted pod takes to serve).
const relayRetryAfter = "5"

// Headers a relay passes on, to the owner and back to the client.
var (
	relayRequestHeaders  = []string{"Tus-Resumable", "Upload-Offset", "Upload-Length", "Content-Type"}
	relayResponseHeaders = []string{"Tus-Resumable", "Tus-Version", "Tus-Extension", "Tus-Max-Size",
		"Upload-Offset", "Upload-Length", "Upload-Metadata", "Upload-Defer-Length", "Upload-Expires",
		"Cache-Control", "Content-Type", "X-Content-Type-Options", "Retry-After", JobIDHeader}
)

// relayable reports whether a request of this method for another node's
// upload is relayed there (the others have no upload to act on: creation
// and OPTIONS are served here, GET is off).
func relayable(method string) bool {
	return method == http.MethodHead || method == http.MethodPatch || method == http.MethodDelete
}

// errRelayStalled cancels a relayed PATCH whose bytes stopped moving.
var errRelayStalled = errors.New("the upload's node stopped taking bytes")

// relayUpload relays a client's request for an upload held by owner.
func (a *API) relayUpload(c *gin.Context, id, owner string) {
	r := c.Request
	log := a.log.With("upload", id, "owner", owner, "method", r.Method)
	if a.relay == nil {
		a.ownerUnavailable(c, id, owner)
		return
	}
	call := cluster.UploadCall{Method: r.Method, ID: id, Header: http.Header{}}
	for _, k := range relayRequestHeaders {
		if v := r.Header.Values(k); len(v) > 0 {
			call.Header[k] = v
		}
	}
	if len(a.tokens) > 0 {
		call.Header.Set(peerproto.HeaderSubmitter, a.tokens.submitter(r.Header.Get("Authorization")))
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	var body *relayBody
	if r.Method == http.MethodPatch {
		release, ok := a.takeUploadSlot(c, false)
		if !ok {
			return
		}
		defer release()
		if r.ContentLength != 0 {
			rc := http.NewResponseController(c.Writer)
			body = &relayBody{idle: &idleReader{r: r.Body, rc: rc, idle: a.uploadIdle}, rc: rc}
			// A client that stalls is cut by idleReader (408) first; the
			// watchdog, later, catches an owner that stalls.
			body.watchdog = time.AfterFunc(a.uploadIdle*3/2, func() { cancel(errRelayStalled) })
			defer body.close()
			call.Body, call.ContentLength = body, r.ContentLength
		}
	}
	resp, err := a.relay.RelayUpload(ctx, owner, call)
	if err != nil {
		a.relayFailed(c, log, id, owner, body, context.Cause(ctx), err)
		return
	}
	defer resp.Body.Close()
	h := c.Writer.Header()
	for _, k := range relayResponseHeaders {
		if v := resp.Header.Values(k); len(v) > 0 {
			h[k] = v
		}
	}
	c.Abort()
	if r.Method == http.MethodHead || resp.ContentLength == 0 {
		c.Status(resp.StatusCode)
		c.Writer.WriteHeaderNow()
		return
	}
	if resp.ContentLength > 0 {
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	c.Status(resp.StatusCode)
	if _, err := io.Copy(c.Writer, resp.Body); err != nil {
		log.Warn("passing on the answer of a relayed upload request", "err", err)
	}
}

// relayFailed answers a relay that got no answer.
func (a *API) relayFailed(c *gin.Context, log *slog.Logger, id, owner string, body *relayBody, cause, err error) {
	switch {
	case body != nil && body.idle.timedOut:
		c.Header("Connection", "close")
		writeErrorCode(c, http.StatusRequestTimeout, "upload_timeout",
			"the upload sent nothing for "+a.uploadIdle.String()+"; it was cut")
	case body != nil && body.failed():
		// The client went away mid-body: nobody reads this, logs and
		// metrics see 499. The owner keeps what reached it.
		c.Header("Connection", "close")
		writeErrorCode(c, statusClientClosed, "upload_incomplete", "the upload ended before its end")
	case c.Request.Context().Err() != nil:
		writeErrorCode(c, statusClientClosed, "canceled", "request canceled")
	case errors.Is(err, ErrOwnerUnknown):
		log.Info("upload of an unknown node", "err", err)
		uploadMissing(c, http.StatusNotFound, "upload "+id+" names node "+owner+", which is not in this cluster")
	case errors.Is(err, peerlink.ErrRefused):
		// The client's token passed here: the owner refused this node.
		log.Error("the node that holds an upload refused the relay (is the cluster key the same on every node?)", "err", err)
		writeErrorCode(c, http.StatusBadGateway, "bad_gateway", "the node that holds this upload ("+owner+") refused this node")
	case errors.Is(err, ErrOwnerGone):
		log.Info("upload of a node that is gone", "err", err)
		uploadMissing(c, http.StatusGone, "upload "+id+" was held by node "+owner+", which has been gone too long; start a new upload")
	default:
		if errors.Is(cause, errRelayStalled) {
			err = cause
		}
		log.Warn("relaying an upload request failed", "err", err)
		a.ownerUnavailable(c, id, owner)
	}
}

// uploadMissing answers for an upload that is not there, as the tus
// protocol and tusd do: 404 Not Found or 410 Gone, Tus-Resumable, no
// Upload-Offset, not cacheable, and no JSON: a line of text in tusd's form
// ("ERR_UPLOAD_NOT_FOUND: ...") except to a HEAD, which gets no body.
func uploadMissing(c *gin.Context, status int, msg string) {
	c.Abort()
	h := c.Writer.Header()
	h.Set("Tus-Resumable", "1.0.0")
	h.Set("Cache-Control", "no-store")
	h.Del("Upload-Offset")
	code := "ERR_UPLOAD_NOT_FOUND"
	if status == http.StatusGone {
		code = "ERR_UPLOAD_GONE"
	}
	if c.Request.Method == http.MethodHead {
		h.Set("Content-Length", "0")
		c.Status(status)
		c.Writer.WriteHeaderNow()
		return
	}
	c.Data(status, "text/plain; charset=utf-8", []byte(code+": "+msg+"\n"))
}

// ownerUnavailable answers 503: the node that holds the upload cannot be
// reached now.
func (a *API) ownerUnavailable(c *gin.Context, id, owner string) {
	c.Header("Retry-After", relayRetryAfter)
	c.Header("Tus-Resumable", "1.0.0")
	writeErrorCode(c, http.StatusServiceUnavailable, "unavailable",
		"upload "+id+" is held by node "+owner+", which is unavailable; it resumes when that node is back, retry later")
}

// relayBody is a relayed PATCH's body: the client's bytes through an
// idleReader, with a watchdog that the bytes moving keeps off.
type relayBody struct {
	idle     *idleReader
	rc       *http.ResponseController
	watchdog *time.Timer

	closed atomic.Bool
	mu     sync.Mutex
	err    error // the client's read error (not io.EOF)
}

func (b *relayBody) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, errors.New("the relay has ended")
	}
	n, err := b.idle.Read(p)
	if n > 0 {
		b.watchdog.Reset(b.idle.idle * 3 / 2)
	}
	if err != nil {
		b.watchdog.Stop()
		if err == io.EOF {
			// The owner now stores the last bytes and, for the last PATCH,
			// makes the job: that takes as long as it takes, and no read
			// deadline on the client's connection may cancel it.
			_ = b.rc.SetReadDeadline(time.Time{})
		} else {
			b.mu.Lock()
			b.err = err
			b.mu.Unlock()
		}
	}
	return n, err
}

func (b *relayBody) failed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err != nil
}

// close ends the relay's use of the client's body (the transport may
// still hold it for a moment after the answer came).
func (b *relayBody) close() {
	b.closed.Store(true)
	b.watchdog.Stop()
}

// relayedKey marks the context of a request a peer relayed.
type relayedKey struct{}

// isRelayed reports whether the request came from a peer's relay: the
// peer checked the client's API token (a HEAD needs none, and answers no
// job JSON), so the owner treats it as authorized.
func isRelayed(c *gin.Context) bool {
	v, _ := c.Request.Context().Value(relayedKey{}).(bool)
	return v
}

// ServeRelayedUpload answers a HEAD, PATCH or DELETE of an upload that a
// peer relays (the internal route /internal/v1/uploads/:id, behind the
// cluster key): as a client of this node would be answered, with this
// node's upload slots and idle timeout, and never relayed further.
func (a *API) ServeRelayedUpload(c *gin.Context) {
	if a.tus == nil {
		writeErrorCode(c, http.StatusNotFound, "not_found", "resumable uploads are off on this node")
		return
	}
	id := c.Param("id")
	owner, ok := parseUploadID(id)
	if !ok {
		uploadMissing(c, http.StatusNotFound, "malformed upload id")
		return
	}
	if owner != a.tus.owner && !a.tus.holds(id) {
		uploadMissing(c, http.StatusNotFound, "upload "+id+" is not held by node "+a.node)
		return
	}
	r := c.Request
	ctx := context.WithValue(r.Context(), relayedKey{}, true)
	if s := r.Header.Get(peerproto.HeaderSubmitter); s != "" {
		ctx = withSubmitter(ctx, Submitter{ID: s, Tokens: true})
	}
	r = r.WithContext(ctx)
	u := *r.URL
	u.Path, u.RawPath = UploadsRoute+id, ""
	r.URL = &u
	c.Request = r
	a.serveLocalUpload(c, id)
}
