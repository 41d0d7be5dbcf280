package httpapi

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
)

// openAPIDoc is the OpenAPI 3.1 description of the public API, served at
// OpenAPIRoute. TestOpenAPIRoutes keeps it and the router in step, and
// every API test checks its requests and answers against it.
//
//go:embed openapi.yaml
var openAPIDoc []byte

// OpenAPIRoute is where the API serves its description.
const OpenAPIRoute = "/api/v1/openapi.yaml"

var openAPIETag = func() string {
	sum := sha256.Sum256(openAPIDoc)
	return `"` + hex.EncodeToString(sum[:8]) + `"`
}()

// OpenAPI returns the OpenAPI 3.1 document of the public API (YAML).
func OpenAPI() []byte { return bytes.Clone(openAPIDoc) }

// openAPI serves the document (GET and HEAD; a read like any other).
func (a *API) openAPI(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Type", "application/yaml")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", openAPIETag)
	h.Set("Content-Length", strconv.Itoa(len(openAPIDoc)))
	c.Status(http.StatusOK)
	c.Writer.WriteHeaderNow()
	if c.Request.Method != http.MethodHead {
		_, _ = c.Writer.Write(openAPIDoc)
	}
}
