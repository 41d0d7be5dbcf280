package httpapi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/httpapi/ui"
)

// Jobs is what the API needs from the job log.
type Jobs interface {
	// Submit stores the upload (streamed; never held in memory), checks it,
	// plans it and commits the job. A read error from up.Body means the
	// upload failed: nothing may be committed, and the error should be
	// returned wrapped with %w.
	Submit(ctx context.Context, up Upload) (cluster.Job, error)
	// Job returns one job; a running job's copy has its chunks.
	Job(id string) (cluster.Job, bool)
	// Summary returns one job without its chunks (cheap for any job).
	Summary(id string) (cluster.Job, bool)
	// List returns a page of jobs, newest first, without their chunks, and
	// the cursor of the next page ("" on the last). A bad query wraps
	// cluster.ErrInvalid.
	List(q cluster.ListQuery) (jobs []cluster.Job, next string, err error)
	// Manifest returns a done job's manifest (the list of its published
	// files), from this node or a holder.
	Manifest(ctx context.Context, j cluster.Job) (*cluster.Manifest, error)
	Progress(id string) float64                  // 0..1
	Cancel(ctx context.Context, id string) error // cancel a running job, or delete a finished one and its media
	Changed() <-chan struct{}                    // closed at the next change to any job; call again after it fires
	// ChangesSince returns the jobs changed since log index after (each
	// once) and the index that brings the caller to; ok is false when the
	// caller must read the list afresh (it fell too far behind).
	ChangesSince(after uint64) (ids []string, upTo uint64, ok bool)
}

// Upload is a source a client sends, for Jobs.Submit.
type Upload struct {
	Filename string    // the client's name for the file (display only)
	Body     io.Reader // the media, streamed
	Options  []byte    // the raw JSON of the `options` field (may be nil)
	By       Submitter // who sends it
	// Sidecars are the subtitle files sent with it (multipart `subtitles`
	// fields, subtitles.go); none for raw and resumable uploads.
	Sidecars []Sidecar
}

// Submitter is who sends a job, as the API knows them: with API tokens
// configured (Tokens), ID is a hash of the token used ("token:..."; the
// client_id option is then refused); without, ID is "" and the client_id
// option may name the submitter.
type Submitter struct {
	ID     string
	Tokens bool
}

// Blobs opens published media.
type Blobs interface {
	// OpenBlob returns a seekable reader of the blob's bytes, local or
	// proxied from a holder. set, when not zero, is the manifest that lists
	// the blob: its holders hold the blob too. It returns an error wrapping
	// cluster.ErrNotFound when no node holds the blob.
	OpenBlob(ctx context.Context, ref, set cluster.BlobRef) (io.ReadSeekCloser, error)
}

// Space admits upload bytes to the node's data volume (node/disk
// implements it). Both return nil when n more bytes fit above the node's
// reserves, else an error wrapping cluster.ErrNoSpace (507).
type Space interface {
	// Admit checks a declared size (Content-Length, Upload-Length).
	Admit(n int64) error
	// Take checks bytes about to be written and counts them.
	Take(n int64) error
}

// Cluster describes membership for GET /api/v1/cluster.
type Cluster interface{ Status() ClusterStatus }

// Health reports readiness: nil when the node can take work.
type Health interface{ Ready() error }

// Config is everything New needs.
type Config struct {
	Jobs    Jobs
	Blobs   Blobs
	Cluster Cluster
	Health  Health
	// Registry receives the HTTP metrics and is served on /metrics (or by
	// MetricsHandler alone, see SeparateMetrics).
	Registry *prometheus.Registry
	Logger   *slog.Logger // carries the node id (the node's logger does); nil = slog.Default()

	// SeparateMetrics leaves /metrics off the public router (404 there):
	// the caller serves MetricsHandler on an address of its own, which
	// the client Service and an Ingress do not expose.
	SeparateMetrics bool

	// MaxUploadBytes bounds a whole upload request body; 0 = 64 GiB.
	MaxUploadBytes int64
	// APIToken, when set, is required as "Authorization: Bearer <token>" on
	// every /api/v1 call, reads included (otherwise 401); files take a
	// valid signature instead under signed playback.
	APIToken string
	// APITokens are further accepted tokens (several at once, so that they
	// can be rotated): any one of APIToken and APITokens will do.
	APITokens []string
	NodeName  string // logged with every request
	// PublicRead opens the reads (GET, HEAD) of /api/v1 to anyone although
	// tokens are configured: only state-changing calls need one then.
	// Signed playback still guards files.
	PublicRead bool

	// PlaybackKey, when set, makes playback signed: a job's files need
	// ?exp=&sig= (see playback.go) or an API token, else 403. nil serves
	// them to anyone who knows the job ID.
	PlaybackKey []byte
	// PlaybackTTL is how long signed URLs handed out in the job JSON stay
	// valid; 0 = DefaultPlaybackTTL.
	PlaybackTTL time.Duration
	// MaxConcurrentUploads is the uploads this node takes at once (429
	// beyond); 0 = DefaultMaxConcurrentUploads.
	MaxConcurrentUploads int
	// UploadIdleTimeout cuts an upload that sends nothing for this long
	// (408); 0 = DefaultUploadIdleTimeout.
	UploadIdleTimeout time.Duration
	// UI holds the web UI served at / (index.html and assets/); nil = the
	// build embedded in the binary (package ui).
	UI fs.FS
	// Scaler, when set, serves POST /api/v1/cluster/scale (state-changing,
	// so behind APIToken like submit); nil answers 501.
	Scaler Scaler
	// UploadDir, when set, turns on resumable (tus) uploads at
	// /api/v1/uploads/ (uploads.go), kept in this directory until they
	// finish. Empty answers 404 there.
	UploadDir string
	// UploadRelay reaches the node that holds a resumable upload this node
	// does not (uploadrelay.go); nil answers 503 for such uploads.
	UploadRelay UploadRelay
	// UploadTTL is how long an unfinished resumable upload is kept after
	// its last byte; 0 = DefaultUploadTTL. RunUploadSweeper enforces it.
	UploadTTL time.Duration
	// Live, when set, serves the live HLS view of jobs that are still
	// transcoding (files/live/..., see live.go); nil answers 404 there.
	Live Live
	// Space, when set, admits uploads to the data volume: a declared
	// length that does not fit is 507 before a byte is read, and a
	// resumable upload's PATCH is checked as its bytes arrive (a POST's
	// body is checked by the blob store it streams into, through Submit).
	// nil admits everything.
	Space Space
}

// DefaultMaxUploadBytes is the upload limit when Config.MaxUploadBytes is 0.
const DefaultMaxUploadBytes int64 = 64 << 30

// Event stream timing.
const (
	defaultPingInterval = 15 * time.Second
	defaultPollInterval = 2 * time.Second
	// defaultListGap is the least time between two sweeps of the job list
	// stream, so that a burst of log entries costs one sweep.
	defaultListGap = 250 * time.Millisecond
)

// API is the public HTTP API of one node.
type API struct {
	jobs     Jobs
	blobs    Blobs
	cluster  Cluster
	health   Health
	scaler   Scaler
	space    Space     // nil: no disk admission
	live     *liveView // nil: no live view
	registry *prometheus.Registry
	log      *slog.Logger
	maxBody  int64
	tokens   tokenSet
	node     string
	metrics  *httpMetrics
	ui       *uiFiles
	engine   *gin.Engine

	publicRead      bool // reads need no token (Config.PublicRead)
	separateMetrics bool // /metrics is not on the public router

	playback   *signer       // nil: public playback
	tus        *tusUploads   // nil: resumable uploads off
	relay      UploadRelay   // nil: uploads of other nodes are unavailable
	uploads    chan struct{} // upload slots
	uploadIdle time.Duration

	// pingInterval and pollInterval pace event streams (tests shorten them).
	pingInterval time.Duration
	pollInterval time.Duration
	listGap      time.Duration
}

// New validates cfg, registers the HTTP metrics on cfg.Registry and builds
// the router.
func New(cfg Config) (*API, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	a := &API{
		jobs:         cfg.Jobs,
		blobs:        cfg.Blobs,
		cluster:      cfg.Cluster,
		health:       cfg.Health,
		scaler:       cfg.Scaler,
		space:        cfg.Space,
		relay:        cfg.UploadRelay,
		registry:     cfg.Registry,
		log:          cfg.Logger,
		maxBody:      cfg.MaxUploadBytes,
		tokens:       newTokenSet(append([]string{cfg.APIToken}, cfg.APITokens...)...),
		node:         cfg.NodeName,
		uploads:      make(chan struct{}, cmp.Or(cfg.MaxConcurrentUploads, DefaultMaxConcurrentUploads)),
		uploadIdle:   cmp.Or(cfg.UploadIdleTimeout, DefaultUploadIdleTimeout),
		pingInterval: defaultPingInterval,
		pollInterval: defaultPollInterval,
		listGap:      defaultListGap,
	}
	a.publicRead, a.separateMetrics = cfg.PublicRead, cfg.SeparateMetrics
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.maxBody == 0 {
		a.maxBody = DefaultMaxUploadBytes
	}
	if cfg.Live != nil {
		a.live = newLiveView(cfg.Live, defaultLiveCacheBytes)
	}
	if cfg.PlaybackKey != nil {
		a.playback = &signer{key: cfg.PlaybackKey, ttl: cmp.Or(cfg.PlaybackTTL, DefaultPlaybackTTL), now: time.Now}
	}
	m, err := newHTTPMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	a.metrics = m
	uiFS := cfg.UI
	if uiFS == nil {
		uiFS = ui.FS()
	}
	if a.ui, err = loadUI(uiFS); err != nil {
		return nil, err
	}
	if cfg.UploadDir != "" {
		if a.tus, err = a.newUploads(cfg.UploadDir, cmp.Or(cfg.UploadTTL, DefaultUploadTTL)); err != nil {
			return nil, fmt.Errorf("httpapi: resumable uploads: %w", err)
		}
	}
	a.engine = a.routes()
	return a, nil
}

// Handler returns the router. It is safe for concurrent use.
func (a *API) Handler() http.Handler { return a.engine }

// MetricsHandler serves Config.Registry in the Prometheus text format: the
// handler of a separate metrics address (Config.SeparateMetrics).
func (a *API) MetricsHandler() http.Handler { return a.metricsHandler() }

func (a *API) routes() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.ContextWithFallback = true
	// Logged client addresses come from the connection, never from
	// X-Forwarded-For that anyone can send.
	_ = e.SetTrustedProxies(nil)
	e.Use(a.observe, a.recovery, a.limitBody)
	e.NoRoute(func(c *gin.Context) {
		writeErrorCode(c, http.StatusNotFound, "not_found", "no such route")
	})
	e.NoMethod(func(c *gin.Context) {
		writeErrorCode(c, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed")
	})

	e.GET("/healthz", a.healthz)
	e.GET("/readyz", a.readyz)
	if !a.separateMetrics {
		e.GET("/metrics", gin.WrapH(a.metricsHandler()))
	}

	// The web UI (ui.go): the page at /, its files under /assets/.
	e.GET("/", a.uiIndex)
	e.HEAD("/", a.uiIndex)
	e.GET("/assets/*path", a.uiAsset)
	e.HEAD("/assets/*path", a.uiAsset)

	// Reads need a token like writes when tokens are configured, unless
	// PublicRead; files check theirs in serveFile (a signature will do
	// under signed playback), uploads in serveUploads.
	v1 := e.Group("/api/v1")
	v1.GET("/openapi.yaml", a.readAuth, a.openAPI)
	v1.HEAD("/openapi.yaml", a.readAuth, a.openAPI)
	v1.GET("/cluster", a.readAuth, a.clusterStatus)
	v1.GET("/events", a.readAuth, a.listEvents)
	v1.POST("/cluster/scale", a.auth, a.scale)
	v1.POST("/jobs", a.auth, a.uploadSlot, a.submit)
	v1.GET("/jobs", a.readAuth, a.listJobs)
	v1.GET("/jobs/:id", a.readAuth, a.getJob)
	v1.DELETE("/jobs/:id", a.auth, a.cancelJob)
	v1.GET("/jobs/:id/events", a.readAuth, a.events)
	v1.GET("/jobs/:id/files/*path", a.serveFile)
	v1.HEAD("/jobs/:id/files/*path", a.serveFile)
	v1.OPTIONS("/jobs/:id/files/*path", a.filePreflight)
	// Resumable uploads (tus): creation, HEAD, PATCH, DELETE; the token is
	// checked in serveUploads (OPTIONS, protocol discovery, needs none).
	v1.Any("/uploads/*path", a.serveUploads)
	return e
}

// check says what in cfg New cannot work with, all of it at once.
func (cfg Config) check() error {
	var errs []error
	if cfg.Jobs == nil {
		errs = append(errs, errors.New("httpapi: Config.Jobs is nil"))
	}
	if cfg.Blobs == nil {
		errs = append(errs, errors.New("httpapi: Config.Blobs is nil"))
	}
	if cfg.Cluster == nil {
		errs = append(errs, errors.New("httpapi: Config.Cluster is nil"))
	}
	if cfg.Health == nil {
		errs = append(errs, errors.New("httpapi: Config.Health is nil"))
	}
	if cfg.Registry == nil {
		errs = append(errs, errors.New("httpapi: Config.Registry is nil"))
	}
	if cfg.MaxUploadBytes < 0 {
		errs = append(errs, errors.New("httpapi: Config.MaxUploadBytes is negative"))
	}
	if cfg.MaxConcurrentUploads < 0 || cfg.PlaybackTTL < 0 || cfg.UploadIdleTimeout < 0 || cfg.UploadTTL < 0 {
		errs = append(errs, errors.New("httpapi: negative upload or playback limit"))
	}
	if cfg.PlaybackKey != nil && len(cfg.PlaybackKey) < 16 {
		errs = append(errs, errors.New("httpapi: Config.PlaybackKey is shorter than 16 bytes"))
	}
	return errors.Join(errs...)
}
