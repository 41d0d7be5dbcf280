package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/cluster/peerproto"
	"github.com/gosty/gosty/transcoder"
)

// statusClientClosed is recorded (never really seen by a client) when the
// client went away before the backend answered.
const statusClientClosed = 499

// writeJSON writes v as JSON with the given status.
func writeJSON(c *gin.Context, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(peerproto.ErrorBody{Error: peerproto.ErrorDetail{Code: "internal", Message: "internal error"}})
	}
	h := c.Writer.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	c.Status(status)
	if c.Request.Method == http.MethodHead {
		c.Writer.WriteHeaderNow()
		return
	}
	b = append(b, '\n')
	_, _ = c.Writer.Write(b)
}

// writeErrorCode writes the JSON error body and stops the handler chain.
func writeErrorCode(c *gin.Context, status int, code, message string) {
	c.Abort()
	writeJSON(c, status, peerproto.ErrorBody{Error: peerproto.ErrorDetail{Code: code, Message: message}})
}

// writeError maps a backend error to its response. Unknown errors are logged
// and answered with a bare "internal error".
func (a *API) writeError(c *gin.Context, err error) {
	var (
		tooBig *http.MaxBytesError
		media  *transcoder.MediaError
	)
	switch {
	case errors.As(err, &tooBig):
		c.Header("Connection", "close")
		msg := "the request body exceeds the limit of " + formatBytes(tooBig.Limit)
		if tooBig.Limit == a.maxBody {
			msg = tooLargeMessage(tooBig.Limit)
		}
		writeErrorCode(c, http.StatusRequestEntityTooLarge, "too_large", msg)
	case errors.As(err, &media):
		writeErrorCode(c, http.StatusUnprocessableEntity, "invalid_media", media.Reason)
	case errors.Is(err, cluster.ErrNotFound):
		writeErrorCode(c, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, cluster.ErrInvalid):
		writeErrorCode(c, http.StatusBadRequest, "invalid_request", err.Error())
	case errors.Is(err, cluster.ErrConflict):
		writeErrorCode(c, http.StatusConflict, "conflict", err.Error())
	case errors.Is(err, cluster.ErrTooFewCopies):
		// The upload's message says how many copies were made and why the
		// others failed; nothing was committed.
		c.Header("Retry-After", "5")
		writeErrorCode(c, http.StatusServiceUnavailable, "insufficient_replicas", err.Error())
	case errors.Is(err, ErrTooManyIngests): // ingest.go
		c.Header("Retry-After", "5")
		writeErrorCode(c, http.StatusTooManyRequests, "too_many_uploads", err.Error())
	case errors.Is(err, cluster.ErrNotLeader):
		c.Header("Retry-After", "1")
		writeErrorCode(c, http.StatusServiceUnavailable, "unavailable", "the cluster has no leader right now; retry shortly")
	case cluster.IsNoSpace(err):
		a.log.LogAttrs(c.Request.Context(), slog.LevelWarn, "no room on the data volume",
			slog.String("method", c.Request.Method), slog.String("route", routeOf(c)), slog.Any("err", err))
		c.Header("Connection", "close") // an upload's body may still be coming: do not read it
		writeErrorCode(c, http.StatusInsufficientStorage, "insufficient_storage", noSpaceMessage(err))
	case c.Request.Context().Err() != nil && errors.Is(err, context.Canceled):
		// The client is gone; nobody reads this, but metrics and logs see 499.
		writeErrorCode(c, statusClientClosed, "canceled", "request canceled")
	case errors.Is(err, context.DeadlineExceeded):
		a.log.LogAttrs(c.Request.Context(), slog.LevelWarn, "request timed out",
			slog.String("route", routeOf(c)), slog.Any("err", err))
		writeErrorCode(c, http.StatusGatewayTimeout, "timeout", "the request timed out")
	default:
		a.log.LogAttrs(c.Request.Context(), slog.LevelError, "request failed",
			slog.String("method", c.Request.Method), slog.String("route", routeOf(c)),
			slog.Any("err", err))
		writeErrorCode(c, http.StatusInternalServerError, "internal", "internal error")
	}
}

// noSpaceMessage says why an upload had no room: the admission's numbers
// when it was refused, else that the volume is full.
func noSpaceMessage(err error) string {
	const prefix = "there is no room for the upload on this node's disk"
	msg := err.Error()
	if i := strings.Index(msg, cluster.ErrNoSpace.Error()+": "); i >= 0 {
		return prefix + ": " + msg[i+len(cluster.ErrNoSpace.Error())+2:]
	}
	return prefix + ": its data volume is full"
}

func tooLargeMessage(limit int64) string {
	return "the upload exceeds the limit of " + formatBytes(limit)
}
