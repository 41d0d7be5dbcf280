package httpapi

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/gosty/gosty/cluster"
)

// maxOptionsBytes bounds the `options` JSON of an upload.
const maxOptionsBytes = 64 << 10

// maxNameBytes bounds the display name taken from the client.
const maxNameBytes = 255

// listJobs answers GET /api/v1/jobs?limit=N&cursor=C&state=S: a page of
// jobs, newest first (limit 1 to 500, default 50), and the cursor of the
// next page.
func (a *API) listJobs(c *gin.Context) {
	q, ok := listQuery(c)
	if !ok {
		return
	}
	jobs, next, err := a.jobs.List(q)
	if err != nil {
		a.writeError(c, err)
		return
	}
	out := JobList{Jobs: make([]JobView, 0, len(jobs)), NextCursor: next}
	for _, j := range jobs {
		out.Jobs = append(out.Jobs, a.view(c, j, false))
	}
	writeJSON(c, http.StatusOK, out)
}

// listQuery reads the paging parameters, or answers 400.
func listQuery(c *gin.Context) (cluster.ListQuery, bool) {
	q := cluster.ListQuery{Cursor: c.Query("cursor"), State: cluster.JobState(c.Query("state"))}
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > cluster.MaxPageSize {
			writeErrorCode(c, http.StatusBadRequest, "invalid_request",
				fmt.Sprintf("limit must be a number from 1 to %d", cluster.MaxPageSize))
			return q, false
		}
		q.Limit = n
	}
	return q, true
}

func (a *API) getJob(c *gin.Context) {
	id, ok := jobID(c)
	if !ok {
		return
	}
	j, ok := a.job(c, id)
	if !ok {
		return
	}
	writeJSON(c, http.StatusOK, a.view(c, j, true))
}

// cancelJob cancels a running job or deletes a finished one. It answers 200
// with the job view when the job still exists afterwards (canceled) and 204
// when it is gone (deleted with its media).
func (a *API) cancelJob(c *gin.Context) {
	id, ok := jobID(c)
	if !ok {
		return
	}
	if err := a.jobs.Cancel(c.Request.Context(), id); err != nil {
		a.writeError(c, err)
		return
	}
	j, ok := a.jobs.Job(id)
	if !ok {
		c.Status(http.StatusNoContent)
		c.Writer.WriteHeaderNow()
		return
	}
	writeJSON(c, http.StatusOK, a.view(c, j, true))
}

func (a *API) clusterStatus(c *gin.Context) {
	st := a.cluster.Status()
	st.Scalable = a.scaler != nil
	writeJSON(c, http.StatusOK, st)
}

func (a *API) healthz(c *gin.Context) {
	writeJSON(c, http.StatusOK, map[string]string{"status": "ok"})
}

func (a *API) readyz(c *gin.Context) {
	if err := a.health.Ready(); err != nil {
		writeErrorCode(c, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	}
	writeJSON(c, http.StatusOK, map[string]string{"status": "ready"})
}

// submit handles POST /api/v1/jobs: multipart/form-data with `options`
// and `subtitles` files (optional, first) and `file`, or a raw body with
// ?filename= and optional ?options=. The media streams straight into
// Jobs.Submit; subtitle files are small and read whole (subtitles.go).
func (a *API) submit(c *gin.Context) {
	r := c.Request
	by := a.submitterOf(r)
	if r.ContentLength > a.maxBody {
		c.Header("Connection", "close")
		writeErrorCode(c, http.StatusRequestEntityTooLarge, "too_large", tooLargeMessage(a.maxBody))
		return
	}
	idle := &idleReader{r: r.Body, rc: http.NewResponseController(c.Writer), idle: a.uploadIdle}
	body := &trackedBody{rc: http.MaxBytesReader(c.Writer, readCloser{idle, r.Body}, a.maxBody), idle: idle}
	defer restoreBody(r)()
	r.Body = body

	ct := r.Header.Get("Content-Type")
	if ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil {
			writeErrorCode(c, http.StatusBadRequest, "invalid_request", "malformed Content-Type header")
			return
		}
		if mt == "multipart/form-data" {
			a.submitMultipart(c, body, by)
			return
		}
		if mt == "application/json" {
			a.submitURL(c, by) // ingest.go
			return
		}
	}
	a.submitRaw(c, body, by)
}

func (a *API) submitRaw(c *gin.Context, body *trackedBody, by Submitter) {
	name := cleanName(c.Query("filename"))
	if name == "" {
		writeErrorCode(c, http.StatusBadRequest, "invalid_request",
			"a raw upload needs the ?filename= query parameter (or send multipart/form-data with a file field)")
		return
	}
	var options []byte
	if o := strings.TrimSpace(c.Query("options")); o != "" {
		if len(o) > maxOptionsBytes {
			writeErrorCode(c, http.StatusBadRequest, "invalid_request", "options are too long")
			return
		}
		options = []byte(o)
	}
	job, err := a.jobs.Submit(c.Request.Context(), Upload{Filename: name, Body: body, Options: options, By: by})
	if err != nil {
		a.uploadError(c, body, nil, err)
		return
	}
	a.created(c, job)
}

func (a *API) submitMultipart(c *gin.Context, body *trackedBody, by Submitter) {
	mr, err := c.Request.MultipartReader()
	if err != nil {
		writeErrorCode(c, http.StatusBadRequest, "invalid_request", "malformed multipart body: "+err.Error())
		return
	}
	var options []byte
	sawOptions := false
	var subs sidecarForm // subtitles.go
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			writeErrorCode(c, http.StatusBadRequest, "invalid_request", "the multipart body has no file field")
			return
		}
		if err != nil {
			a.uploadError(c, body, nil, fmt.Errorf("malformed multipart body: %v: %w", err, cluster.ErrInvalid))
			return
		}
		switch part.FormName() {
		case "options":
			if sawOptions {
				writeErrorCode(c, http.StatusBadRequest, "invalid_request", "more than one options field")
				return
			}
			sawOptions = true
			b, err := io.ReadAll(io.LimitReader(part, maxOptionsBytes+1))
			if err != nil {
				a.uploadError(c, body, nil, fmt.Errorf("reading options: %v: %w", err, cluster.ErrInvalid))
				return
			}
			if len(b) > maxOptionsBytes {
				writeErrorCode(c, http.StatusBadRequest, "invalid_request", "options are too long")
				return
			}
			if s := strings.TrimSpace(string(b)); s != "" {
				options = []byte(s)
			}
		case "subtitles", "subtitles_lang", "subtitles_name":
			if err := subs.add(part); err != nil {
				a.uploadError(c, body, nil, err)
				return
			}
		case "file":
			name := cleanName(part.FileName())
			if name == "" {
				name = "upload"
			}
			file := &filePart{part: part, mr: mr}
			job, err := a.jobs.Submit(c.Request.Context(),
				Upload{Filename: name, Body: file, Options: options, By: by, Sidecars: subs.files})
			if err != nil {
				a.uploadError(c, body, file, err)
				return
			}
			a.created(c, job)
			return
		default:
			// Unknown fields are ignored (the body limit still applies).
			if _, err := io.Copy(io.Discard, part); err != nil {
				a.uploadError(c, body, nil, fmt.Errorf("malformed multipart body: %v: %w", err, cluster.ErrInvalid))
				return
			}
		}
	}
}

// uploadError answers a failed upload. What went wrong with the request
// body itself (too large, a field after the file) wins over however the
// backend wrapped the read error.
func (a *API) uploadError(c *gin.Context, body *trackedBody, file *filePart, err error) {
	if tooBig := body.tooLarge(); tooBig != nil {
		a.writeError(c, tooBig)
		body.linger(c)
		return
	}
	if body.idle.timedOut {
		c.Header("Connection", "close")
		writeErrorCode(c, http.StatusRequestTimeout, "upload_timeout",
			"the upload sent nothing for "+a.uploadIdle.String()+"; it was cut")
		return
	}
	if file != nil && file.trailing != nil {
		a.writeError(c, file.trailing)
		return
	}
	if body.readErr != nil {
		// The client went away mid-upload: nobody reads this answer, but
		// logs and metrics see 499 rather than a server error.
		c.Header("Connection", "close")
		writeErrorCode(c, statusClientClosed, "upload_incomplete", "the upload ended before its end")
		return
	}
	a.writeError(c, err)
}

func (a *API) created(c *gin.Context, job cluster.Job) {
	c.Header("Location", "/api/v1/jobs/"+job.ID)
	writeJSON(c, http.StatusCreated, a.view(c, job, true))
}

// trackedBody is the request body under the size limit; it remembers
// whether the limit was hit.
type trackedBody struct {
	rc      io.ReadCloser
	idle    *idleReader
	big     *http.MaxBytesError
	readErr error // the first read error other than io.EOF
}

func (t *trackedBody) Read(p []byte) (int, error) {
	n, err := t.rc.Read(p)
	if err != nil && err != io.EOF && t.readErr == nil {
		t.readErr = err
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			t.big = mb
		}
	}
	return n, err
}

type readCloser struct {
	io.Reader
	io.Closer
}

func (t *trackedBody) Close() error { return t.rc.Close() }

// Bounds of the read after an early answer (linger).
const (
	lingerBytes = 8 << 20
	lingerTime  = 3 * time.Second
)

// linger sends the answer already written and then reads on, discarding,
// for at most lingerBytes and lingerTime, so that a client still sending
// the rest of a refused body can read the answer. Closing a connection
// with unread bytes in its receive queue resets it, and a reset makes the
// client's kernel drop the answer it has not read yet: the server's own
// half-second grace is too short when the client is busy or slow. A
// client that ends its body within the bounds then sees a clean close.
func (t *trackedBody) linger(c *gin.Context) {
	rc := http.NewResponseController(c.Writer)
	if rc.Flush() != nil {
		return
	}
	_ = rc.SetReadDeadline(time.Now().Add(lingerTime))
	_, _ = io.CopyN(io.Discard, t.idle.r, lingerBytes)
}

func (t *trackedBody) tooLarge() error {
	if t.big == nil {
		return nil
	}
	return t.big
}

// filePart is the body given to Submit for a multipart upload. When the file
// part ends it reads the rest of the multipart stream: another `options` or
// `file` field there fails the read (wrapping cluster.ErrInvalid), so the
// backend never commits a job whose options came too late.
type filePart struct {
	part     *multipart.Part
	mr       *multipart.Reader
	err      error // sticky
	trailing error // set when a field came after the file
}

func (f *filePart) Read(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	n, err := f.part.Read(p)
	if err == io.EOF {
		err = f.checkTail()
	}
	if err != nil {
		f.err = err
	}
	return n, err
}

func (f *filePart) checkTail() error {
	for {
		next, err := f.mr.NextPart()
		if err == io.EOF {
			return io.EOF
		}
		if err != nil {
			return err
		}
		switch name := next.FormName(); name {
		case "options", "file", "subtitles", "subtitles_lang", "subtitles_name":
			f.trailing = fmt.Errorf("multipart field %q after the file: send options and subtitles before the file, and one file per upload: %w",
				name, cluster.ErrInvalid)
			return f.trailing
		}
		if _, err := io.Copy(io.Discard, next); err != nil {
			return err
		}
	}
}

// cleanName makes a client-supplied file name fit for display: the last path
// element, no control characters, valid UTF-8, at most maxNameBytes.
func cleanName(s string) string {
	if i := strings.LastIndexAny(s, `/\`); i >= 0 {
		s = s[i+1:]
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if s == "." || s == ".." {
		return ""
	}
	for len(s) > maxNameBytes {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}
