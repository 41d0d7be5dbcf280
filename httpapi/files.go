package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/cluster/peerproto"
)

const (
	cacheImmutable  = "public, max-age=31536000, immutable"
	cacheRevalidate = "no-cache"
)

// contentTypes maps the extensions gosty publishes to their media types.
var contentTypes = map[string]string{
	".m3u8": "application/vnd.apple.mpegurl",
	".mpd":  "application/dash+xml",
	".m4s":  "video/iso.segment",
	".mp4":  "video/mp4",
	".m4a":  "audio/mp4",
	".m4v":  "video/mp4",
	".ts":   "video/mp2t",
	".aac":  "audio/aac",
	".vtt":  "text/vtt; charset=utf-8",
	".json": "application/json",
	".jpg":  "image/jpeg",
	".png":  "image/png",
}

func contentTypeOf(rel string) string {
	if t, ok := contentTypes[strings.ToLower(path.Ext(rel))]; ok {
		return t
	}
	return "application/octet-stream"
}

func isPlaylist(rel string) bool {
	switch strings.ToLower(path.Ext(rel)) {
	case ".m3u8", ".mpd":
		return true
	}
	return false
}

func setFileCORS(h http.Header) {
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Expose-Headers", "Accept-Ranges, Content-Length, Content-Range, Content-Type, ETag")
}

// filePreflight answers CORS preflights for the file routes (players send
// Range, which is not always a safelisted header).
func (a *API) filePreflight(c *gin.Context) {
	h := c.Writer.Header()
	setFileCORS(h)
	h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Range, If-Range, If-None-Match, If-Modified-Since")
	h.Set("Access-Control-Max-Age", "86400")
	c.Status(http.StatusNoContent)
	c.Writer.WriteHeaderNow()
}

// serveFile serves one published file of a job. The path is only ever a key
// into the job's manifest (or, for a job from the first log format not
// compacted yet, Job.Outputs): no filesystem path is built from it.
func (a *API) serveFile(c *gin.Context) {
	setFileCORS(c.Writer.Header())
	id, ok := jobID(c)
	if !ok {
		return
	}
	rel, ok := filePath(c)
	if !ok {
		return
	}
	// Signed playback is checked before the job is looked up, so that an
	// unsigned request cannot even learn which jobs exist.
	query, exp, ok := a.fileAccess(c, id)
	if !ok {
		return
	}
	j, ok := a.job(c, id)
	if !ok {
		return
	}
	if live, ok := strings.CutPrefix(rel, liveDir); ok {
		a.serveLive(c, j, live, query, exp)
		return
	}
	ref, ok, err := a.outputFile(c, j, rel)
	if err != nil {
		a.writeError(c, err)
		return
	}
	if !ok {
		writeErrorCode(c, http.StatusNotFound, "not_found", "no such file")
		return
	}
	var f io.ReadSeekCloser
	if query != "" && (isPlaylist(rel) || isStoryboard(j, rel)) {
		f, err = a.signedPlaylist(c, ref, j.Manifest, rel, query)
	} else {
		f, err = a.blobs.OpenBlob(c.Request.Context(), ref, j.Manifest)
	}
	if err != nil {
		a.writeError(c, err)
		return
	}
	defer f.Close()

	// A large download outlives any server-wide write timeout.
	_ = http.NewResponseController(c.Writer).SetWriteDeadline(time.Time{})

	a.setFileHeaders(c.Writer.Header(), j, rel, ref.Hash, query, exp)
	// The blob is content-addressed: the ETag is the validator, so no
	// modification time is sent.
	w := &jsonErrorWriter{ResponseWriter: c.Writer}
	http.ServeContent(w, c.Request, rel, time.Time{}, f)
	w.finish()
	if w.status == http.StatusInternalServerError {
		a.log.Error("serving a file failed", "route", routeOf(c), "job", id,
			"file", rel, "blob", ref.Hash, "err", w.message)
	}
}

// fileAccess lets a file request through: with signed playback it must
// carry a valid signature, whose query is carried into playlists and whose
// expiry bounds caching; otherwise it needs read access. When it answers
// false the response is written.
func (a *API) fileAccess(c *gin.Context, id string) (query string, exp int64, ok bool) {
	switch {
	case a.playback != nil:
		return a.playbackGrant(c, id)
	case !a.readable(c):
		// Public playback, but reads are closed: a token it is.
		unauthorized(c)
		return "", 0, false
	}
	return "", 0, true
}

// setFileHeaders sets the type, validator and caching of a published file
// served from blob hash.
func (a *API) setFileHeaders(h http.Header, j cluster.Job, rel, hash, query string, exp int64) {
	h.Set("Content-Type", contentTypeOf(rel))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("ETag", `"`+hash+`"`)
	switch {
	case a.playback != nil:
		// Signed URLs are for one viewer and expire: shared caches keep
		// nothing, the viewer's own cache no longer than the URL lives.
		if query != "" && (isPlaylist(rel) || isStoryboard(j, rel)) {
			// The body carries the signature: it differs per exp.
			h.Set("ETag", `"`+hash+"-"+strconv.FormatInt(exp, 10)+`"`)
		}
		if isPlaylist(rel) && j.State != cluster.JobDone || exp == 0 {
			h.Set("Cache-Control", "private, no-cache")
		} else {
			h.Set("Cache-Control", "private, max-age="+strconv.FormatInt(max(exp-time.Now().Unix(), 0), 10))
		}
	case isPlaylist(rel) && j.State != cluster.JobDone:
		h.Set("Cache-Control", cacheRevalidate)
	default:
		h.Set("Cache-Control", cacheImmutable)
	}
}

// jsonErrorWriter turns the plain-text errors http.ServeContent writes (416,
// 412, 500) into the API's JSON error shape. Successful responses pass
// straight through, unbuffered.
type jsonErrorWriter struct {
	http.ResponseWriter
	status  int    // error status held back, 0 when passing through
	message string // what ServeContent said
	done    bool
}

func (w *jsonErrorWriter) WriteHeader(code int) {
	if code < 400 || w.status != 0 {
		if w.status == 0 {
			w.ResponseWriter.WriteHeader(code)
		}
		return
	}
	w.status = code
}

func (w *jsonErrorWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		return w.ResponseWriter.Write(p)
	}
	if !w.done {
		w.message += string(p)
	}
	return len(p), nil
}

// Unwrap lets http.ResponseController reach the connection.
func (w *jsonErrorWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *jsonErrorWriter) finish() {
	if w.status == 0 || w.done {
		return
	}
	w.done = true
	var code, msg string
	switch w.status {
	case http.StatusRequestedRangeNotSatisfiable:
		code, msg = "range_not_satisfiable", strings.TrimSpace(w.message)
	case http.StatusPreconditionFailed:
		code, msg = "precondition_failed", "precondition failed"
	case http.StatusInternalServerError:
		code, msg = "internal", "internal error"
	default:
		code, msg = "error", http.StatusText(w.status)
	}
	b, _ := json.Marshal(peerproto.ErrorBody{Error: peerproto.ErrorDetail{Code: code, Message: msg}})
	h := w.ResponseWriter.Header()
	h.Del("Content-Length")
	h.Del("Content-Encoding")
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.ResponseWriter.WriteHeader(w.status)
	_, _ = w.ResponseWriter.Write(append(b, '\n'))
}

// filePath returns the published file a request names, or answers 400:
// the path must pass cluster.CheckFilePath (relative, no "." or ".."
// segments, no backslash, NUL or control character, no '%'), and the raw
// request path may not smuggle a separator in as %2F or %5C.
func filePath(c *gin.Context) (string, bool) {
	rel := strings.TrimPrefix(c.Param("path"), "/")
	if raw := strings.ToLower(c.Request.URL.RawPath); strings.Contains(raw, "%2f") || strings.Contains(raw, "%5c") {
		writeErrorCode(c, http.StatusBadRequest, "invalid_request", "malformed file path: encoded separator")
		return "", false
	}
	if err := cluster.CheckFilePath(rel); err != nil {
		writeErrorCode(c, http.StatusBadRequest, "invalid_request", "malformed file path: "+err.Error())
		return "", false
	}
	return rel, true
}

// playbackGrant checks a request for a job's files under signed playback
// and returns the query string that playlists served to it carry (its own
// exp and sig, or a fresh one when it came with an API token) and the
// expiry. On failure it has answered 403.
func (a *API) playbackGrant(c *gin.Context, id string) (query string, exp int64, ok bool) {
	q := c.Request.URL.Query()
	e, err := a.playback.check(id, q.Get("exp"), q.Get("sig"))
	if err == nil {
		return "exp=" + q.Get("exp") + "&sig=" + q.Get("sig"), e, true
	}
	if a.hasToken(c) {
		e := a.playback.expiry()
		return PlaybackQuery(a.playback.key, id, e), e, true
	}
	writeErrorCode(c, http.StatusForbidden, "forbidden", err.Error())
	return "", 0, false
}

// maxPlaylistBytes bounds a playlist read into memory to be signed.
const maxPlaylistBytes = 16 << 20

// outputFile finds the blob a done job published at rel: in its manifest,
// or in the per-file outputs of a job not compacted yet. The error says
// why the manifest could not be read.
func (a *API) outputFile(c *gin.Context, j cluster.Job, rel string) (cluster.BlobRef, bool, error) {
	if ref, ok := j.Outputs[rel]; ok {
		return ref, !ref.IsZero(), nil
	}
	if j.Manifest.IsZero() {
		return cluster.BlobRef{}, false, nil
	}
	m, err := a.jobs.Manifest(c.Request.Context(), j)
	if err != nil {
		return cluster.BlobRef{}, false, fmt.Errorf("job %s: manifest: %w", j.ID, err)
	}
	ref, ok := m.File(rel)
	return ref, ok, nil
}

// signedPlaylist reads a playlist and rewrites its URIs to carry query.
func (a *API) signedPlaylist(c *gin.Context, ref, set cluster.BlobRef, rel, query string) (io.ReadSeekCloser, error) {
	if ref.Size > maxPlaylistBytes {
		return nil, fmt.Errorf("playlist %s is %d bytes, more than signing reads", rel, ref.Size)
	}
	f, err := a.blobs.OpenBlob(c.Request.Context(), ref, set)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPlaylistBytes))
	if err != nil {
		return nil, err
	}
	switch {
	case strings.EqualFold(path.Ext(rel), ".mpd"):
		b = signDASH(b, query)
	case strings.EqualFold(path.Ext(rel), ".vtt"):
		b = signStoryboard(b, query) // storyboard.go
	default:
		b = signHLS(b, query)
	}
	return nopCloser{bytes.NewReader(b)}, nil
}

type nopCloser struct{ io.ReadSeeker }

func (nopCloser) Close() error { return nil }
