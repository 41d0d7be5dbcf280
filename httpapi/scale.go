package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"
)

// Scaler changes how many nodes the cluster runs. In Kubernetes it patches
// the StatefulSet's scale subresource; outside Kubernetes there is none
// (Config.Scaler is nil) and the scale endpoint answers 501.
type Scaler interface {
	// Scale asks for replicas nodes and returns the number of replicas now
	// requested. An error that has an HTTPStatus() int method (the platform
	// refused, e.g. 403 when the node's ServiceAccount lacks the Role) is
	// answered according to that status with the error's message; other
	// errors are 502.
	Scale(ctx context.Context, replicas int) (int, error)
}

// MaxScaleReplicas bounds POST /api/v1/cluster/scale.
const MaxScaleReplicas = 100

type scaleRequest struct {
	Replicas *int `json:"replicas"`
}

type scaleResponse struct {
	Replicas int `json:"replicas"`
}

// scale handles POST /api/v1/cluster/scale with {"replicas": n}: 202 with
// the replicas now requested (pods start and stop after the answer), 400 for
// a malformed body or n outside 1..MaxScaleReplicas, 501 when the node does
// not run where it can scale itself.
func (a *API) scale(c *gin.Context) {
	if a.scaler == nil {
		writeErrorCode(c, http.StatusNotImplemented, "not_implemented",
			"scaling is only available when gosty runs as a Kubernetes StatefulSet (in-cluster, with the shipped Role); scale your nodes by other means")
		return
	}
	var req scaleRequest
	if !a.decodeJSON(c, &req) {
		return
	}
	if req.Replicas == nil {
		writeErrorCode(c, http.StatusBadRequest, "invalid_request", `"replicas" is required`)
		return
	}
	n := *req.Replicas
	if n < 1 || n > MaxScaleReplicas {
		writeErrorCode(c, http.StatusBadRequest, "invalid_request",
			fmt.Sprintf("replicas must be 1..%d, got %d", MaxScaleReplicas, n))
		return
	}
	got, err := a.scaler.Scale(c.Request.Context(), n)
	if err != nil {
		a.writeScaleError(c, err)
		return
	}
	a.log.LogAttrs(c.Request.Context(), slog.LevelInfo, "scaled", slog.String("node", a.node), slog.Int("replicas", got))
	writeJSON(c, http.StatusAccepted, scaleResponse{Replicas: got})
}

// writeScaleError passes on a refusal of the platform with a fitting status.
func (a *API) writeScaleError(c *gin.Context, err error) {
	if c.Request.Context().Err() != nil {
		a.writeError(c, err) // the client is gone
		return
	}
	var se interface{ HTTPStatus() int }
	if !errors.As(err, &se) {
		a.log.LogAttrs(c.Request.Context(), slog.LevelWarn, "scale failed", slog.String("node", a.node), slog.Any("err", err))
		writeErrorCode(c, http.StatusBadGateway, "scale_failed", "scaling failed: "+err.Error())
		return
	}
	a.log.LogAttrs(c.Request.Context(), slog.LevelWarn, "scale refused", slog.String("node", a.node),
		slog.Int("status", se.HTTPStatus()), slog.Any("err", err))
	switch s := se.HTTPStatus(); {
	case s == http.StatusForbidden:
		writeErrorCode(c, http.StatusForbidden, "forbidden", err.Error())
	case s == http.StatusConflict:
		writeErrorCode(c, http.StatusConflict, "conflict", err.Error())
	case s == http.StatusBadRequest || s == http.StatusUnprocessableEntity:
		writeErrorCode(c, http.StatusBadRequest, "invalid_request", err.Error())
	case s == http.StatusTooManyRequests || s == http.StatusServiceUnavailable:
		c.Header("Retry-After", "1")
		writeErrorCode(c, http.StatusServiceUnavailable, "unavailable", err.Error())
	default: // 401 (the node's own credentials), 404 (no such StatefulSet), 5xx
		writeErrorCode(c, http.StatusBadGateway, "scale_failed", err.Error())
	}
}
