package httpapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// The web UI: GET / is index.html, GET /assets/{name} its scripts and
// styles, all held in memory from Config.UI (the embedded build by
// default). The UI routes itself with the URL fragment (#/jobs/{id},
// #/cluster), so no other path needs to serve the page, and it uses only
// the public API.

// uiCSP lets the page load its own scripts and styles only. hls.js plays
// through Media Source (blob: media URLs) and may run its demuxer in a
// worker made from a blob: URL. Posters and storyboard sprites fetched with
// the API token (closed reads) are shown from blob: URLs. hls.js gives the
// text tracks of a master's subtitles a placeholder source 'data:,WEBVTT'
// (media-src data:; such a URL carries nothing out).
const uiCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"media-src 'self' blob: data:; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; " +
	"base-uri 'self'; form-action 'self'; frame-ancestors 'none'"

// uiNotBuilt is served at / when the binary was built without the UI.
const uiNotBuilt = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>gosty: UI not built</title></head>
<body>
<h1>gosty</h1>
<p><strong>The web UI was not built into this binary.</strong> Run <code>make ui</code>
(it needs Node.js and npm) and build again, or use <code>make build</code>, which does both.</p>
<p>The API works without it: <a href="/api/v1/jobs">/api/v1/jobs</a>,
<a href="/api/v1/cluster">/api/v1/cluster</a>, <a href="/metrics">/metrics</a>.</p>
</body></html>
`

// hashedName matches the names esbuild gives with [name]-[hash]: their
// content never changes, so browsers may cache them for good.
var hashedName = regexp.MustCompile(`-[A-Z0-9]{8}\.[A-Za-z0-9.]+$`)

var uiTypes = map[string]string{
	".js":    "text/javascript; charset=utf-8",
	".mjs":   "text/javascript; charset=utf-8",
	".css":   "text/css; charset=utf-8",
	".map":   "application/json",
	".json":  "application/json",
	".txt":   "text/plain; charset=utf-8",
	".svg":   "image/svg+xml",
	".png":   "image/png",
	".ico":   "image/x-icon",
	".woff2": "font/woff2",
}

type uiAsset struct {
	data, gz    []byte // gz: the build's precompressed copy, if any
	etag, gzTag string
	ctype       string
	immutable   bool
}

type uiFiles struct {
	index     []byte
	indexETag string
	built     bool
	assets    map[string]*uiAsset // by path under assets/
}

func etagOf(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}

// loadUI reads index.html and assets/ from fsys into memory. A missing
// index.html means the UI was not built: / then explains how to build it.
func loadUI(fsys fs.FS) (*uiFiles, error) {
	u := &uiFiles{assets: map[string]*uiAsset{}}
	index, err := fs.ReadFile(fsys, "index.html")
	switch {
	case err == nil:
		u.index, u.built = index, true
	case errors.Is(err, fs.ErrNotExist):
		u.index = []byte(uiNotBuilt)
	default:
		return nil, fmt.Errorf("httpapi: reading the UI's index.html: %w", err)
	}
	u.indexETag = etagOf(u.index)
	err = fs.WalkDir(fsys, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == "assets" && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipDir
			}
			return err
		}
		if d.IsDir() || strings.HasSuffix(p, ".gz") {
			return nil
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "assets/")
		a := &uiAsset{data: data, etag: etagOf(data), ctype: uiTypes[strings.ToLower(path.Ext(p))],
			immutable: hashedName.MatchString(path.Base(p))}
		if a.ctype == "" {
			a.ctype = "application/octet-stream"
		}
		if gz, err := fs.ReadFile(fsys, p+".gz"); err == nil {
			a.gz, a.gzTag = gz, strings.TrimSuffix(a.etag, `"`)+`-gz"`
		}
		u.assets[name] = a
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("httpapi: reading the UI's assets: %w", err)
	}
	return u, nil
}

func setPageHeaders(h http.Header) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
}

// uiIndex serves the page. It is revalidated on every load (ETag), so a
// new build takes effect at once while the hashed assets stay cached.
func (a *API) uiIndex(c *gin.Context) {
	h := c.Writer.Header()
	setPageHeaders(h)
	h.Set("Content-Security-Policy", uiCSP)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", cacheRevalidate)
	h.Set("ETag", a.ui.indexETag)
	http.ServeContent(c.Writer, c.Request, "index.html", time.Time{}, bytes.NewReader(a.ui.index))
}

// uiAsset serves one file of assets/, gzip-compressed when the build
// holds a compressed copy and the client accepts it.
func (a *API) uiAsset(c *gin.Context) {
	f, ok := a.ui.assets[strings.TrimPrefix(c.Param("path"), "/")]
	if !ok {
		writeErrorCode(c, http.StatusNotFound, "not_found", "no such file")
		return
	}
	h := c.Writer.Header()
	setPageHeaders(h)
	h.Set("Content-Type", f.ctype)
	if f.immutable {
		h.Set("Cache-Control", cacheImmutable)
	} else {
		h.Set("Cache-Control", cacheRevalidate)
	}
	body, etag := f.data, f.etag
	if f.gz != nil {
		h.Add("Vary", "Accept-Encoding")
		if acceptsGzip(c.GetHeader("Accept-Encoding")) {
			body, etag = f.gz, f.gzTag
			h.Set("Content-Encoding", "gzip")
		}
	}
	h.Set("ETag", etag)
	http.ServeContent(c.Writer, c.Request, "", time.Time{}, bytes.NewReader(body))
}

// acceptsGzip reports whether an Accept-Encoding header names gzip with a
// non-zero quality (browsers always name it).
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q, ok := strings.CutPrefix(strings.ReplaceAll(strings.ToLower(params), " ", ""), "q=")
		if !ok {
			return true
		}
		f, err := strconv.ParseFloat(q, 64)
		return err == nil && f > 0
	}
	return false
}
