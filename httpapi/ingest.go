package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/gosty/gosty/cluster"
)

// URLIngest is implemented by a Jobs backend that fetches sources from
// URLs (the node package). POST /api/v1/jobs with Content-Type
// application/json and {"source_url": "...", "options": {...}} calls
// SubmitURL, which checks the URL against the node's allow list, commits
// the job in state ingesting and returns it; the fetch goes on after the
// answer (202 Accepted, Location: /api/v1/jobs/{id}). A backend without
// it answers 501.
type URLIngest interface {
	SubmitURL(ctx context.Context, sourceURL string, options []byte, by Submitter) (cluster.Job, error)
}

// ErrTooManyIngests is what a URLIngest wraps when its node fetches as
// many sources as it takes at once: 429 too_many_uploads, Retry-After.
var ErrTooManyIngests = errors.New("too many sources being fetched")

// SourceRequest is the JSON body of a URL submit.
type SourceRequest struct {
	SourceURL string          `json:"source_url"`
	Options   json.RawMessage `json:"options,omitempty"`
}

// submitURL handles a JSON submit: a source the node fetches.
func (a *API) submitURL(c *gin.Context, by Submitter) {
	ing, ok := a.jobs.(URLIngest)
	if !ok {
		writeErrorCode(c, http.StatusNotImplemented, "not_implemented", "this server does not fetch sources from URLs")
		return
	}
	body, err := io.ReadAll(io.LimitReader(c.Request.Body, maxOptionsBytes+4096))
	if err != nil {
		a.writeError(c, err)
		return
	}
	if len(body) > maxOptionsBytes+2048 {
		writeErrorCode(c, http.StatusRequestEntityTooLarge, "too_large", "a JSON submit is at most 64 KiB")
		return
	}
	var req SourceRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || dec.More() {
		if err == nil {
			err = errors.New("trailing data after the object")
		}
		writeErrorCode(c, http.StatusBadRequest, "invalid_request", "malformed JSON submit (want {\"source_url\": ..., \"options\": {...}}): "+err.Error())
		return
	}
	req.SourceURL = strings.TrimSpace(req.SourceURL)
	if req.SourceURL == "" {
		writeErrorCode(c, http.StatusBadRequest, "invalid_request", "source_url is required in a JSON submit")
		return
	}
	var options []byte
	if o := bytes.TrimSpace(req.Options); len(o) > 0 && !bytes.Equal(o, []byte("null")) {
		options = o
	}
	job, err := ing.SubmitURL(c.Request.Context(), req.SourceURL, options, by)
	if err != nil {
		a.writeError(c, err)
		return
	}
	c.Header("Location", "/api/v1/jobs/"+job.ID)
	writeJSON(c, http.StatusAccepted, a.view(c, job, true))
}
