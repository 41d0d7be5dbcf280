package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/tus/tusd/v2/pkg/filestore"
	tus "github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/memorylocker"
	xslog "golang.org/x/exp/slog"

	"github.com/gosty/gosty/cluster/peerproto"
)

// Resumable uploads: the tus protocol (https://tus.io/protocols/resumable-upload,
// v1.0.0 with the creation, creation-with-upload and termination extensions)
// at /api/v1/uploads/, next to the plain POST /api/v1/jobs. An upload lives
// in Config.UploadDir on the node that took it until its last byte arrives
// (its ID names that node, and every other node relays its requests there:
// uploadid.go, uploadrelay.go); the PATCH that completes it then runs the
// same path as a POST (Jobs.Submit:
// blob store, probe, plan, raft) and answers 200 with the job JSON and the
// job ID in the Gosty-Job-Id header, or the same JSON error a POST would get.

// UploadsRoute is where the tus endpoint is mounted.
const UploadsRoute = "/api/v1/uploads/"

// JobIDHeader carries the job ID in the answer to the PATCH (or HEAD) of a
// finished resumable upload.
const JobIDHeader = "Gosty-Job-Id"

// DefaultUploadTTL is how long an unfinished resumable upload is kept after
// its last byte when Config.UploadTTL is 0.
const DefaultUploadTTL = 24 * time.Hour

// tusUploads is the tus side of the API.
type tusUploads struct {
	dir     string
	owner   string // the node named in the IDs given out here (uploadid.go)
	ttl     time.Duration
	store   filestore.FileStore
	handler *tus.Handler

	mu       sync.Mutex
	finishMu map[string]*sync.Mutex // one per upload being finished
	results  map[string]uploadResult
}

// uploadResult is what became of a finished upload: kept for the TTL so a
// client that lost the answer to its last PATCH learns it from HEAD.
type uploadResult struct {
	at     time.Time
	size   int64
	jobID  string
	status int    // an error's status when jobID is ""
	body   []byte // the error JSON
}

type ginContextKey struct{}

func (a *API) newUploads(dir string, ttl time.Duration) (*tusUploads, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	u := &tusUploads{dir: dir, owner: uploadOwnerName(a.node), ttl: ttl, store: filestore.New(dir),
		finishMu: map[string]*sync.Mutex{}, results: map[string]uploadResult{}}
	composer := tus.NewStoreComposer()
	store := spaceStore{u.store}
	composer.UseCore(store)
	composer.UseTerminater(store)
	memorylocker.New().UseIn(composer)
	h, err := tus.NewHandler(tus.Config{
		StoreComposer:             composer,
		BasePath:                  UploadsRoute,
		MaxSize:                   a.maxBody,
		DisableDownload:           true,
		DisableConcatenation:      true,
		Cors:                      &tus.CorsConfig{Disable: true},
		NetworkTimeout:            a.uploadIdle,
		Logger:                    xslog.New(xslog.NewTextHandler(io.Discard, &xslog.HandlerOptions{Level: xslog.Level(100)})),
		PreUploadCreateCallback:   a.checkNewUpload,
		PreFinishResponseCallback: a.finishUpload,
	})
	if err != nil {
		return nil, err
	}
	u.handler = h
	if u.owner == "" && a.node != "" {
		a.log.Warn("resumable uploads taken here can be resumed only here: the node name does not fit in an upload ID ([A-Za-z0-9][A-Za-z0-9._-]{0,127})",
			"name", a.node)
	}
	return u, nil
}

// serveUploads is the gin handler of every method under UploadsRoute.
func (a *API) serveUploads(c *gin.Context) {
	r := c.Request
	// tusd lets a POST stand for another method (X-HTTP-Method-Override,
	// for clients that cannot send PATCH or DELETE); the checks below must
	// see the method that will run.
	if m := r.Header.Get("X-HTTP-Method-Override"); r.Method == http.MethodPost && m != "" {
		r = r.Clone(r.Context())
		r.Method = m
		r.Header.Del("X-HTTP-Method-Override")
		c.Request = r
	}
	switch r.Method {
	case http.MethodOptions:
		// Protocol discovery (and CORS preflights) carries no token.
	case http.MethodGet, http.MethodHead:
		// Reads need a token as every read does (an upload's ID is 128
		// random bits, and HEAD tells only its offset and metadata, but
		// the rule is the same everywhere).
		if !a.readable(c) && !isRelayed(c) {
			a.readAuth(c)
			return
		}
	default:
		if !a.authorized(c) {
			a.auth(c)
			return
		}
	}
	if a.tus == nil {
		writeErrorCode(c, http.StatusNotFound, "not_found", "resumable uploads are off on this node")
		return
	}
	id := strings.Trim(strings.TrimPrefix(r.URL.Path, UploadsRoute), "/")
	if id != "" {
		owner, ok := parseUploadID(id)
		if !ok {
			// It names no upload: tus's answer for one that is not there.
			uploadMissing(c, http.StatusNotFound, "malformed upload id")
			return
		}
		if owner != "" && owner != a.tus.owner && relayable(r.Method) && !a.tus.holds(id) {
			a.relayUpload(c, id, owner)
			return
		}
	}
	if len(a.tokens) > 0 {
		c.Request = r.WithContext(withSubmitter(r.Context(), a.submitterOf(r)))
	}
	a.serveLocalUpload(c, id)
}

// serveLocalUpload serves a request for an upload this node holds (or a
// creation), from a client or relayed by a peer.
func (a *API) serveLocalUpload(c *gin.Context, id string) {
	r := c.Request
	if r.Method == http.MethodHead {
		// tus: no HEAD answer may be cached, a 404 included (tusd marks
		// only the answers for uploads it has).
		c.Header("Cache-Control", "no-store")
	}
	if id != "" && (r.Method == http.MethodHead || r.Method == http.MethodPatch) {
		if a.answerFinished(c, id) {
			return
		}
	}
	if r.Method == http.MethodPatch || (r.Method == http.MethodPost && r.ContentLength != 0) {
		// A body-carrying request takes an upload slot like a POST does.
		release, ok := a.takeUploadSlot(c, true)
		if !ok {
			return
		}
		defer release()
		if a.space != nil && r.Body != nil && r.Body != http.NoBody {
			defer restoreBody(r)()
			// Every chunk is admitted before tus writes it (a chunked
			// body declares no length to check up front).
			r.Body = &spaceBody{ReadCloser: r.Body, space: a.space}
		}
	}
	ctx := context.WithValue(r.Context(), ginContextKey{}, c)
	if id != "" && r.Method == http.MethodPatch && a.refinish(c, ctx, id) {
		return
	}
	w := tusWriter{ResponseWriter: c.Writer, raw: rawWriter(c.Writer)}
	http.StripPrefix(strings.TrimSuffix(UploadsRoute, "/"), a.tus.handler).ServeHTTP(w, r.WithContext(ctx))
	c.Abort()
}

// holds reports whether the upload's files or outcome are on this node,
// whatever node its ID names (one renamed since keeps serving its own).
func (u *tusUploads) holds(id string) bool {
	u.mu.Lock()
	_, done := u.results[id]
	u.mu.Unlock()
	if done {
		return true
	}
	_, err := os.Stat(filepath.Join(u.dir, id+".info"))
	return err == nil
}

// tusWriter is what tusd writes to: gin's writer (so that logs and metrics
// see the status), but deadlines go to the connection's own writer. tusd
// moves the read deadline from a goroutine that may outlive the request,
// and gin reuses its writer for the next request.
type tusWriter struct {
	gin.ResponseWriter
	raw http.ResponseWriter
}

func (w tusWriter) Unwrap() http.ResponseWriter { return w.raw }

// WriteHeader makes the Location of a new upload relative: the same path
// is valid on every node (tusd would name the host the request named).
func (w tusWriter) WriteHeader(code int) {
	h := w.Header()
	if loc := h.Get("Location"); loc != "" {
		if u, err := url.Parse(loc); err == nil && u.Path != "" {
			h.Set("Location", u.EscapedPath())
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func rawWriter(w http.ResponseWriter) http.ResponseWriter {
	for {
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return w
		}
		w = u.Unwrap()
	}
}

// answerFinished answers a HEAD or PATCH of an upload that was already
// finished (the files are gone, the outcome is remembered).
func (a *API) answerFinished(c *gin.Context, id string) bool {
	a.tus.mu.Lock()
	res, ok := a.tus.results[id]
	a.tus.mu.Unlock()
	if !ok {
		return false
	}
	h := c.Writer.Header()
	h.Set("Tus-Resumable", "1.0.0")
	h.Set("Cache-Control", "no-store")
	if res.jobID == "" {
		c.Abort()
		h.Set("Content-Type", "application/json; charset=utf-8")
		c.Status(res.status)
		if c.Request.Method != http.MethodHead {
			_, _ = c.Writer.Write(res.body)
		} else {
			c.Writer.WriteHeaderNow()
		}
		return true
	}
	h.Set("Upload-Offset", strconv.FormatInt(res.size, 10))
	h.Set("Upload-Length", strconv.FormatInt(res.size, 10))
	h.Set(JobIDHeader, res.jobID)
	if c.Request.Method == http.MethodHead {
		c.Status(http.StatusOK)
		c.Writer.WriteHeaderNow()
		c.Abort()
		return true
	}
	j, ok := a.jobs.Job(res.jobID)
	if !ok {
		c.Abort()
		c.Status(http.StatusNoContent)
		c.Writer.WriteHeaderNow()
		return true
	}
	writeJSON(c, http.StatusOK, a.view(c, j, true))
	c.Abort()
	return true
}

// refinish finishes again an upload whose bytes are all in but whose
// finish failed on the server's side (tus itself would only answer 204).
func (a *API) refinish(c *gin.Context, ctx context.Context, id string) bool {
	up, err := a.tus.store.GetUpload(ctx, id)
	if err != nil {
		return false
	}
	info, err := up.GetInfo(ctx)
	if err != nil || info.SizeIsDeferred || info.Offset != info.Size {
		return false
	}
	resp, err := a.finish(ctx, info)
	if err != nil {
		var te tus.Error
		if !errors.As(err, &te) {
			te = tusError(http.StatusInternalServerError, "internal", "internal error")
		}
		resp = te.HTTPResponse
	}
	c.Abort()
	h := c.Writer.Header()
	h.Set("Tus-Resumable", "1.0.0")
	h.Set("Upload-Offset", strconv.FormatInt(info.Offset, 10))
	for k, v := range resp.Header {
		h.Set(k, v)
	}
	c.Status(resp.StatusCode)
	c.Writer.WriteHeaderNow()
	_, _ = c.Writer.Write([]byte(resp.Body))
	return true
}

// checkNewUpload vets a creation: a known length that fits on the data
// volume (507 before anything is created) and sane metadata.
func (a *API) checkNewUpload(hook tus.HookEvent) (tus.HTTPResponse, tus.FileInfoChanges, error) {
	info := hook.Upload
	if info.SizeIsDeferred {
		return tus.HTTPResponse{}, tus.FileInfoChanges{}, tusError(http.StatusBadRequest, "invalid_request", "the upload length must be declared (Upload-Length)")
	}
	if info.Size == 0 {
		return tus.HTTPResponse{}, tus.FileInfoChanges{}, tusError(http.StatusUnprocessableEntity, "invalid_media", "the uploaded file is empty")
	}
	opts := strings.TrimSpace(info.MetaData["options"])
	if len(opts) > maxOptionsBytes {
		return tus.HTTPResponse{}, tus.FileInfoChanges{}, tusError(http.StatusBadRequest, "invalid_request", "options are too long")
	}
	if opts != "" && !json.Valid([]byte(opts)) {
		return tus.HTTPResponse{}, tus.FileInfoChanges{}, tusError(http.StatusBadRequest, "invalid_request", "the options metadata is not JSON")
	}
	if a.space != nil {
		if err := a.space.Admit(info.Size); err != nil {
			return tus.HTTPResponse{}, tus.FileInfoChanges{}, noSpaceTusError(err)
		}
	}
	// Only the two keys gosty reads are kept.
	meta := tus.MetaData{"filename": cleanName(info.MetaData["filename"])}
	if opts != "" {
		meta["options"] = opts
	}
	return tus.HTTPResponse{}, tus.FileInfoChanges{ID: newUploadID(a.tus.owner), MetaData: meta}, nil
}

// finishUpload turns a complete upload into a job, exactly as a POST does,
// then deletes the upload's files. Bad media or options delete it too (the
// client must fix the file); a server-side failure (no leader, say) keeps it
// so that a retried PATCH finishes it again.
func (a *API) finishUpload(hook tus.HookEvent) (tus.HTTPResponse, error) {
	return a.finish(hook.Context, hook.Upload)
}

func (a *API) finish(ctx context.Context, info tus.FileInfo) (tus.HTTPResponse, error) {
	u := a.tus
	u.mu.Lock()
	m := u.finishMu[info.ID]
	if m == nil {
		m = new(sync.Mutex)
		u.finishMu[info.ID] = m
	}
	u.mu.Unlock()
	m.Lock()
	defer func() {
		m.Unlock()
		u.mu.Lock()
		delete(u.finishMu, info.ID)
		u.mu.Unlock()
	}()

	c, _ := ctx.Value(ginContextKey{}).(*gin.Context)
	if c != nil {
		// Storing and probing a large file takes a while: no write
		// deadline, and no read deadline either (the body is in; one that
		// passed would cancel the request, and the submit with it).
		rc := http.NewResponseController(c.Writer)
		_ = rc.SetWriteDeadline(time.Time{})
		_ = rc.SetReadDeadline(time.Time{})
	}
	u.mu.Lock()
	res, done := u.results[info.ID]
	u.mu.Unlock()
	if done {
		return u.resultResponse(a, c, res)
	}

	name := info.MetaData["filename"]
	if name == "" {
		name = "upload"
	}
	var options []byte
	if o := info.MetaData["options"]; o != "" {
		options = []byte(o)
	}
	f, err := os.Open(filepath.Join(u.dir, info.ID))
	if err != nil {
		return tus.HTTPResponse{}, err
	}
	job, err := a.jobs.Submit(ctx, Upload{Filename: name, Body: f, Options: options, By: submitterFrom(ctx)})
	f.Close()
	res = uploadResult{at: time.Now(), size: info.Size}
	if err != nil {
		res.status, res.body = a.errorResponse(ctx, c, err)
		if res.status >= 500 {
			return tus.HTTPResponse{}, tus.Error{ErrorCode: "gosty", Message: err.Error(),
				HTTPResponse: jsonResponse(res.status, res.body)}
		}
	} else {
		res.jobID = job.ID
		a.log.Info("resumable upload finished", "upload", info.ID, "job", job.ID, "bytes", info.Size)
	}
	u.remove(info.ID)
	u.mu.Lock()
	u.results[info.ID] = res
	u.mu.Unlock()
	return u.resultResponse(a, c, res)
}

func (u *tusUploads) resultResponse(a *API, c *gin.Context, res uploadResult) (tus.HTTPResponse, error) {
	if res.jobID == "" {
		return tus.HTTPResponse{}, tus.Error{ErrorCode: "gosty", Message: string(res.body),
			HTTPResponse: jsonResponse(res.status, res.body)}
	}
	resp := tus.HTTPResponse{StatusCode: http.StatusNoContent, Header: tus.HTTPHeader{JobIDHeader: res.jobID}}
	if j, ok := a.jobs.Job(res.jobID); ok {
		var v JobView
		if c != nil {
			v = a.view(c, j, true)
		} else {
			v = NewJobView(j, a.jobs.Progress(j.ID))
		}
		if b, err := json.Marshal(v); err == nil {
			resp.StatusCode = http.StatusOK
			resp.Header["Content-Type"] = "application/json; charset=utf-8"
			resp.Body = string(append(b, '\n'))
		}
	}
	return resp, nil
}

// errorResponse renders err as writeError would: its status and JSON body.
func (a *API) errorResponse(ctx context.Context, c *gin.Context, err error) (int, []byte) {
	w := &captureWriter{header: http.Header{}}
	rc, _ := gin.CreateTestContext(w)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPatch, UploadsRoute, nil)
	if c != nil {
		req = c.Request.Clone(ctx)
		req.Method = http.MethodPatch
	}
	rc.Request = req
	a.writeError(rc, err)
	return cmpStatus(w.status), w.body
}

func cmpStatus(s int) int {
	if s == 0 {
		return http.StatusInternalServerError
	}
	return s
}

type captureWriter struct {
	header http.Header
	status int
	body   []byte
}

func (w *captureWriter) Header() http.Header { return w.header }
func (w *captureWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.body = append(w.body, b...)
	return len(b), nil
}
func (w *captureWriter) WriteHeader(s int) {
	if w.status == 0 {
		w.status = s
	}
}

func jsonResponse(status int, body []byte) tus.HTTPResponse {
	return tus.HTTPResponse{StatusCode: status, Body: string(body),
		Header: tus.HTTPHeader{"Content-Type": "application/json; charset=utf-8"}}
}

func tusError(status int, code, message string) tus.Error {
	b, _ := json.Marshal(peerproto.ErrorBody{Error: peerproto.ErrorDetail{Code: code, Message: message}})
	return tus.Error{ErrorCode: code, Message: message, HTTPResponse: jsonResponse(status, append(b, '\n'))}
}
