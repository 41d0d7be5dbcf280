package httpapi

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/gosty/gosty/cluster"
)

// validID reports whether id may name a job (cluster.ValidJobID). IDs are
// checked before any lookup so that odd bytes never reach the backend.
func validID(id string) bool { return cluster.ValidJobID(id) }

// jobID returns the :id path parameter, or writes 400 and returns false.
func jobID(c *gin.Context) (string, bool) {
	id := c.Param("id")
	if !validID(id) {
		writeErrorCode(c, 400, "invalid_request", "malformed job id")
		return "", false
	}
	return id, true
}

// job returns the job id names, or writes 404 and returns false.
func (a *API) job(c *gin.Context, id string) (cluster.Job, bool) {
	j, ok := a.jobs.Job(id)
	if !ok {
		writeErrorCode(c, http.StatusNotFound, "not_found", "no such job")
	}
	return j, ok
}

// routeOf is the route template for logs and metric labels, never the raw
// path.
func routeOf(c *gin.Context) string {
	if r := c.FullPath(); r != "" {
		return r
	}
	return "unmatched"
}

func formatBytes(n int64) string {
	const unit = 1024
	if n < unit || n%unit != 0 {
		return strconv.FormatInt(n, 10) + " bytes"
	}
	suffix := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	exp := 0
	for n /= unit; n%unit == 0 && n >= unit && exp < len(suffix)-1; n /= unit {
		exp++
	}
	return strconv.FormatInt(n, 10) + " " + suffix[exp]
}
