package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/cluster/peerproto"
)

// PeerBlobs is what the internal API needs from the local blob store.
type PeerBlobs interface {
	// Open opens a stored blob; errors wrap cluster.ErrNotFound or
	// cluster.ErrInvalid.
	Open(hash string) (*os.File, error)
	// Receive stores a blob streamed from r after checking it against
	// want; a mismatch wraps cluster.ErrInvalid.
	Receive(ctx context.Context, want cluster.BlobRef, r io.Reader) error
	// PutChecked stores what r yields if check, given its ref, agrees;
	// hold is as for cluster.BlobStore.Put.
	PutChecked(ctx context.Context, r io.Reader, check func(cluster.BlobRef) error, hold ...cluster.Hold) (cluster.BlobRef, error)
}

// PeerRaft is what the internal API needs from the raft store (the lead
// implements it).
type PeerRaft interface {
	// ApplyForwarded commits an encoded cluster.Command on this node, which
	// must lead; it returns the log index it was applied at, or the FSM's
	// verdict as an error (cluster.ErrStale/ErrNotFound/ErrInvalid/
	// ErrConflict wrapped) or cluster.ErrNotLeader.
	ApplyForwarded(ctx context.Context, cmd []byte) (uint64, error)
	// Join asks the leader to add a node as a non-voter.
	Join(ctx context.Context, req cluster.JoinRequest) error
	// Status reports this node's view of raft.
	Status() cluster.RaftStatus
	// Heartbeat renews a worker's task leases; only the leader takes it
	// (cluster.ErrNotLeader otherwise).
	Heartbeat(ctx context.Context, hb cluster.Heartbeat) error
	// Remove takes a departing server out of the raft configuration.
	Remove(ctx context.Context, req cluster.RemoveRequest) error
	// Progress is what workers last reported for a job's running tasks
	// (task id → fraction); only the leader knows (cluster.ErrNotLeader).
	Progress(jobID string) (map[string]float64, error)
}

// RelayedUploads serves the resumable uploads this node holds to the peers
// that relay them (the public API implements it; uploadrelay.go).
type RelayedUploads interface {
	ServeRelayedUpload(c *gin.Context)
}

// InternalConfig is everything NewInternal needs.
type InternalConfig struct {
	Blobs PeerBlobs
	Raft  PeerRaft
	// Uploads serves relayed upload requests; nil answers 404 there.
	Uploads RelayedUploads
	// Registry receives gosty_transfer_bytes_total and the HTTP request
	// metrics; it may be the public API's registry.
	Registry *prometheus.Registry
	Logger   *slog.Logger // carries the node id (the node's logger does); nil = slog.Default()
	NodeName string
	// HoldStreamed, when set, is the Hold of every blob a peer streams
	// here (cluster.Peers.Stream: the copy of an upload whose job is not
	// committed yet), so that the collector leaves it alone for a while.
	HoldStreamed cluster.Hold
}

// Limits of request bodies on the internal API.
const (
	maxProposeBytes = 8 << 20
	maxJoinBytes    = 64 << 10
)

// Internal is the peer-to-peer HTTP API of one node: blob transfer,
// forwarding to the leader, and resumable uploads relayed to the node that
// holds them. It is served on its own listener (the internal
// port of --bind-addr) and never on the public one. Its client is
// cluster.Peers; the paths, headers and error codes both ends use are
// package peerproto's.
type Internal struct {
	blobs    PeerBlobs
	raft     PeerRaft
	uploads  RelayedUploads
	log      *slog.Logger
	node     string
	transfer *prometheus.CounterVec
	metrics  *httpMetrics
	engine   *gin.Engine
	streamed cluster.Hold
}

// NewInternal validates cfg, registers the metrics and builds the router.
func NewInternal(cfg InternalConfig) (*Internal, error) {
	var errs []error
	if cfg.Blobs == nil {
		errs = append(errs, errors.New("httpapi: InternalConfig.Blobs is nil"))
	}
	if cfg.Raft == nil {
		errs = append(errs, errors.New("httpapi: InternalConfig.Raft is nil"))
	}
	if cfg.Registry == nil {
		errs = append(errs, errors.New("httpapi: InternalConfig.Registry is nil"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	a := &Internal{
		blobs:    cfg.Blobs,
		raft:     cfg.Raft,
		uploads:  cfg.Uploads,
		log:      cfg.Logger,
		node:     cfg.NodeName,
		streamed: cfg.HoldStreamed,
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	var err error
	if a.transfer, err = peerproto.RegisterTransferBytes(cfg.Registry); err != nil {
		return nil, fmt.Errorf("httpapi: %w", err)
	}
	if a.metrics, err = newHTTPMetrics(cfg.Registry); err != nil {
		return nil, err
	}
	a.engine = a.routes()
	return a, nil
}

// Handler returns the router. It is safe for concurrent use.
func (a *Internal) Handler() http.Handler { return a.engine }

// The internal routes with a parameter, below peerproto.Prefix.
const (
	routeBlob   = peerproto.PathBlob + ":hash"
	routeUpload = peerproto.PathUpload + ":id"
)

func (a *Internal) routes() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.ContextWithFallback = true
	_ = e.SetTrustedProxies(nil)
	// Authentication is not here: it happened before the connection was
	// handed to the HTTP server (the node serves this handler on a
	// peerlink listener; package cluster/peerlink).
	e.Use(a.observe, a.recovery)
	e.NoRoute(func(c *gin.Context) {
		writeErrorCode(c, http.StatusNotFound, peerproto.CodeNotFound, "no such route")
	})
	e.NoMethod(func(c *gin.Context) {
		writeErrorCode(c, http.StatusMethodNotAllowed, peerproto.CodeMethodNotAllowed, "method not allowed")
	})
	v1 := e.Group(peerproto.Prefix)
	v1.GET(routeBlob, a.getBlob)
	v1.HEAD(routeBlob, a.getBlob)
	v1.PUT(routeBlob, a.putBlob)
	v1.POST(peerproto.PathStream, a.streamBlob)
	v1.POST(peerproto.PathPropose, a.propose)
	v1.POST(peerproto.PathJoin, a.join)
	v1.GET(peerproto.PathStatus, a.status)
	v1.POST(peerproto.PathHeartbeat, a.heartbeat)
	v1.POST(peerproto.PathRemove, a.remove)
	v1.GET(peerproto.PathProgress+":job", a.progress)
	// Resumable uploads held here, relayed by the node a client talks to.
	v1.HEAD(routeUpload, a.upload)
	v1.PATCH(routeUpload, a.upload)
	v1.DELETE(routeUpload, a.upload)
	return e
}

// observe records the HTTP metrics (route templates under /internal/v1 keep
// them apart from the public API's) and logs: blob transfers and failures
// at info/warn, the frequent status and propose calls at debug.
func (a *Internal) observe(c *gin.Context) {
	observeRequest(c, a.metrics, a.log, "internal request", func(_ string, status int) slog.Level {
		switch {
		case status >= 500, status == http.StatusUnprocessableEntity:
			return slog.LevelWarn
		case internalWrite(c.Request.Method, c.FullPath()):
			return slog.LevelInfo
		}
		return slog.LevelDebug
	}, slog.String("reason", peerproto.TransferReason(c.GetHeader(peerproto.HeaderReason))))
}

// internalWrite reports whether an internal request writes data a client
// sent: a blob pushed here, or a relayed upload's PATCH or DELETE. Those
// are logged at info, as the public API logs its writes; the frequent
// control calls (propose, heartbeat) stay at debug.
func internalWrite(method, route string) bool {
	switch {
	case method == http.MethodPut && route == peerproto.Prefix+routeBlob,
		method == http.MethodPost && route == peerproto.Prefix+peerproto.PathStream:
		return true
	case (method == http.MethodPatch || method == http.MethodDelete) && route == peerproto.Prefix+routeUpload:
		return true
	}
	return false
}

func (a *Internal) recovery(c *gin.Context) {
	recoverRequest(c, a.log, "panic serving internal request")
}

// writeError maps a cluster error to the internal API's codes, which
// cluster.Peers maps back.
func (a *Internal) writeError(c *gin.Context, err error) {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		c.Header("Connection", "close")
		writeErrorCode(c, http.StatusRequestEntityTooLarge, peerproto.CodeTooLarge, "the body exceeds the limit of "+formatBytes(tooBig.Limit))
	case errors.Is(err, cluster.ErrNotLeader):
		c.Header("Retry-After", "1")
		writeErrorCode(c, http.StatusServiceUnavailable, peerproto.CodeNotLeader, err.Error())
	case errors.Is(err, cluster.ErrStale):
		writeErrorCode(c, http.StatusConflict, peerproto.CodeStale, err.Error())
	case errors.Is(err, cluster.ErrConflict):
		writeErrorCode(c, http.StatusConflict, peerproto.CodeConflict, err.Error())
	case errors.Is(err, cluster.ErrNotFound):
		writeErrorCode(c, http.StatusNotFound, peerproto.CodeNotFound, err.Error())
	case errors.Is(err, cluster.ErrInvalid):
		writeErrorCode(c, http.StatusBadRequest, peerproto.CodeInvalid, err.Error())
	case cluster.IsNoSpace(err):
		// A push to a node without room: the sender tries another node.
		c.Header("Connection", "close")
		writeErrorCode(c, http.StatusInsufficientStorage, peerproto.CodeInsufficientStorage, "node "+a.node+": "+err.Error())
	case c.Request.Context().Err() != nil && errors.Is(err, context.Canceled):
		writeErrorCode(c, statusClientClosed, peerproto.CodeCanceled, "request canceled")
	case errors.Is(err, context.DeadlineExceeded):
		writeErrorCode(c, http.StatusGatewayTimeout, peerproto.CodeTimeout, "the request timed out")
	default:
		a.log.LogAttrs(c.Request.Context(), slog.LevelError, "internal request failed",
			slog.String("method", c.Request.Method), slog.String("route", routeOf(c)),
			slog.Any("err", err))
		writeErrorCode(c, http.StatusInternalServerError, peerproto.CodeInternal, "internal error")
	}
}

func blobHash(c *gin.Context) (string, bool) {
	h := c.Param("hash")
	if !cluster.ValidHash(h) {
		writeErrorCode(c, http.StatusBadRequest, peerproto.CodeInvalid, "not a blob hash (lower-case hex sha256)")
		return "", false
	}
	return h, true
}

func (a *Internal) counter(c *gin.Context, direction string) prometheus.Counter {
	return a.transfer.WithLabelValues(direction, peerproto.TransferReason(c.GetHeader(peerproto.HeaderReason)))
}

// getBlob serves a local blob with Range support; the ETag is the hash, so
// If-Range works.
func (a *Internal) getBlob(c *gin.Context) {
	h, ok := blobHash(c)
	if !ok {
		return
	}
	f, err := a.blobs.Open(h)
	if err != nil {
		a.writeError(c, err)
		return
	}
	defer f.Close()
	// Blobs are large; a transfer outlives any server-wide write timeout.
	_ = http.NewResponseController(c.Writer).SetWriteDeadline(time.Time{})
	hd := c.Writer.Header()
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("ETag", `"`+h+`"`)
	hd.Set("Cache-Control", "no-store")
	w := &jsonErrorWriter{ResponseWriter: countingWriter{c.Writer, a.counter(c, peerproto.DirectionOut)}}
	http.ServeContent(w, c.Request, "", time.Time{}, f)
	w.finish()
	if w.status == http.StatusInternalServerError {
		a.log.Error("serving a blob failed", "blob", h, "err", w.message)
	}
}

// countingWriter counts the bytes actually written to the client.
type countingWriter struct {
	http.ResponseWriter
	c prometheus.Counter
}

func (w countingWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	if n > 0 {
		w.c.Add(float64(n))
	}
	return n, err
}

func (w countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// putBlob stores a blob a peer pushes; the store checks size and sha256. A
// blob already stored is answered 201 without reading the body (the client
// sends Expect: 100-continue, so the body never leaves the sender).
func (a *Internal) putBlob(c *gin.Context) {
	h, ok := blobHash(c)
	if !ok {
		return
	}
	size, err := strconv.ParseInt(c.GetHeader(peerproto.HeaderSize), 10, 64)
	if err != nil || size < 0 {
		writeErrorCode(c, http.StatusBadRequest, peerproto.CodeInvalid, "the "+peerproto.HeaderSize+" header must give the blob's size in bytes")
		return
	}
	if cl := c.Request.ContentLength; cl >= 0 && cl != size {
		writeErrorCode(c, http.StatusBadRequest, peerproto.CodeInvalid,
			fmt.Sprintf("Content-Length %d differs from %s %d", cl, peerproto.HeaderSize, size))
		return
	}
	// A blob takes as long as it takes while bytes flow, and is cut when
	// the sender stalls (the server's ReadTimeout would cut big blobs).
	idle := &idleReader{r: c.Request.Body, rc: http.NewResponseController(c.Writer), idle: DefaultUploadIdleTimeout}
	ref := cluster.BlobRef{Hash: h, Size: size}
	body := peerproto.CountingReader{R: idle, C: a.counter(c, peerproto.DirectionIn)}
	if err := a.blobs.Receive(c.Request.Context(), ref, body); err != nil {
		if errors.Is(err, cluster.ErrInvalid) && !cluster.IsNoSpace(err) {
			writeErrorCode(c, http.StatusUnprocessableEntity, peerproto.CodeChecksumMismatch, err.Error())
			return
		}
		a.writeError(c, err)
		return
	}
	writeJSON(c, http.StatusCreated, ref)
}

// streamBlob stores a blob a peer streams before it knows its address
// (an upload copied while it still comes in: cluster.Peers.Stream). Its
// size and sha256 follow the body as trailers; the blob is installed only
// if what was read matches them, so a stream that broke off (no
// trailers) or was corrupted stores nothing. 201 with the ref; 422
// checksum_mismatch; 400 invalid for a body that ended early.
func (a *Internal) streamBlob(c *gin.Context) {
	idle := &idleReader{r: c.Request.Body, rc: http.NewResponseController(c.Writer), idle: DefaultUploadIdleTimeout}
	body := peerproto.CountingReader{R: idle, C: a.counter(c, peerproto.DirectionIn)}
	var hold []cluster.Hold
	if a.streamed != nil {
		hold = append(hold, a.streamed)
	}
	ref, err := a.blobs.PutChecked(c.Request.Context(), body, func(got cluster.BlobRef) error {
		hash, size := c.Request.Trailer.Get(peerproto.HeaderHash), c.Request.Trailer.Get(peerproto.HeaderSize)
		if hash == "" || size == "" {
			return fmt.Errorf("%w: the stream ended without its %s and %s trailers", cluster.ErrInvalid, peerproto.HeaderSize, peerproto.HeaderHash)
		}
		if hash != got.Hash || size != strconv.FormatInt(got.Size, 10) {
			return fmt.Errorf("%w: checksum mismatch: the sender says %s bytes hashing to %s, %d bytes hashing to %s arrived",
				cluster.ErrInvalid, size, hash, got.Size, got.Hash)
		}
		return nil
	}, hold...)
	switch {
	case err == nil:
	case errors.Is(err, cluster.ErrInvalid):
		writeErrorCode(c, http.StatusUnprocessableEntity, peerproto.CodeChecksumMismatch, err.Error())
		return
	case idle.timedOut:
		writeErrorCode(c, http.StatusRequestTimeout, peerproto.CodeTimeout, "the stream stalled")
		return
	case errors.Is(err, io.ErrUnexpectedEOF):
		writeErrorCode(c, http.StatusBadRequest, peerproto.CodeInvalid, "the stream broke off")
		return
	default:
		a.writeError(c, err)
		return
	}
	writeJSON(c, http.StatusCreated, ref)
}

// propose commits a command forwarded by a follower.
func (a *Internal) propose(c *gin.Context) {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxProposeBytes))
	if err != nil {
		a.writeError(c, err)
		return
	}
	if len(body) == 0 {
		writeErrorCode(c, http.StatusBadRequest, peerproto.CodeInvalid, "empty command")
		return
	}
	idx, err := a.raft.ApplyForwarded(c.Request.Context(), body)
	if err != nil {
		a.writeError(c, err)
		return
	}
	writeJSON(c, http.StatusOK, gin.H{"index": idx})
}

// decodeStrict reads a JSON object body of at most limit bytes with no
// unknown fields and nothing after it; on failure it has answered.
func (a *Internal) decodeStrict(c *gin.Context, limit int64, what string, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("trailing data after the JSON object")
		}
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			a.writeError(c, err)
			return false
		}
		writeErrorCode(c, http.StatusBadRequest, peerproto.CodeInvalid, "malformed "+what+": "+err.Error())
		return false
	}
	return true
}

// join asks this node (the leader) to add a node to raft.
func (a *Internal) join(c *gin.Context) {
	var req cluster.JoinRequest
	if !a.decodeStrict(c, maxJoinBytes, "join request", &req) {
		return
	}
	if req.ID == "" || req.Addr == "" {
		writeErrorCode(c, http.StatusBadRequest, peerproto.CodeInvalid, "a join request needs id and addr")
		return
	}
	if _, _, err := net.SplitHostPort(req.Addr); err != nil {
		writeErrorCode(c, http.StatusBadRequest, peerproto.CodeInvalid, "addr must be host:port: "+err.Error())
		return
	}
	if err := a.raft.Join(c.Request.Context(), req); err != nil {
		a.writeError(c, err)
		return
	}
	writeJSON(c, http.StatusOK, gin.H{"ok": true})
}

// remove takes a departing node out of raft on the leader.
func (a *Internal) remove(c *gin.Context) {
	var req cluster.RemoveRequest
	if !a.decodeStrict(c, maxJoinBytes, "remove request", &req) {
		return
	}
	if err := a.raft.Remove(c.Request.Context(), req); err != nil {
		a.writeError(c, err)
		return
	}
	writeJSON(c, http.StatusOK, gin.H{"ok": true})
}

// heartbeat renews the leases of a worker's running tasks on the leader.
func (a *Internal) heartbeat(c *gin.Context) {
	var hb cluster.Heartbeat
	if !a.decodeStrict(c, maxJoinBytes, "heartbeat", &hb) {
		return
	}
	if err := a.raft.Heartbeat(c.Request.Context(), hb); err != nil {
		a.writeError(c, err)
		return
	}
	writeJSON(c, http.StatusOK, gin.H{"ok": true})
}

func (a *Internal) progress(c *gin.Context) {
	tasks, err := a.raft.Progress(c.Param("job"))
	if err != nil {
		a.writeError(c, err)
		return
	}
	writeJSON(c, http.StatusOK, gin.H{"tasks": tasks})
}

// upload serves a resumable upload's HEAD, PATCH or DELETE that the node
// a client talks to relays here, the node that holds the upload.
func (a *Internal) upload(c *gin.Context) {
	if a.uploads == nil {
		writeErrorCode(c, http.StatusNotFound, peerproto.CodeNotFound, "resumable uploads are off on this node")
		return
	}
	// The public API rewrites the request's path to its own route: the
	// log and metrics here keep the internal one.
	orig := c.Request
	defer func() { c.Request = orig }()
	if r := c.Request; r.Body != nil && r.Body != http.NoBody {
		// On a copy: the server must still see its own body, to know
		// whether it sent 100 Continue (else it would wait for the bytes
		// of a body it refused, to discard them).
		counted := *r
		counted.Body = readCloser{peerproto.CountingReader{R: r.Body, C: a.counter(c, peerproto.DirectionIn)}, r.Body}
		c.Request = &counted
	}
	a.uploads.ServeRelayedUpload(c)
}

func (a *Internal) status(c *gin.Context) {
	writeJSON(c, http.StatusOK, a.raft.Status())
}
