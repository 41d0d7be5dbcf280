package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"

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

// Internal is the peer-to-peer HTTP API of one node: blob transfer,
// forwarding to the leader, and resumable uploads relayed to the node that
// holds them. It is served on its own listener (the internal
// port of --bind-addr) and never on the public one. Its client is
// cluster.Peers; the paths, headers and error codes both ends use are
// package peerproto's. This file has its wiring, routes and error
// mapping (and the relayed uploads' route); the blob routes are in
// internaltransfer.go, the control routes in internalcontrol.go.
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
