package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// tokenSet holds the SHA-256 of every accepted API token (never the token
// itself, so that no token can end up in a log or an error by accident).
type tokenSet [][sha256.Size]byte

func newTokenSet(tokens ...string) tokenSet {
	var s tokenSet
	seen := map[[sha256.Size]byte]bool{}
	for _, t := range tokens {
		if t = strings.TrimSpace(t); t == "" {
			continue
		}
		h := sha256.Sum256([]byte(t))
		if !seen[h] {
			seen[h] = true
			s = append(s, h)
		}
	}
	return s
}

// match reports whether an Authorization header carries one of the tokens.
// Every token is compared, in constant time, whatever matches.
func (s tokenSet) match(header string) bool {
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	found := 0
	for i := range s {
		found |= subtle.ConstantTimeCompare(got[:], s[i][:])
	}
	return found == 1
}

// authorized reports whether the caller may change state: it carries one
// of the API tokens, or no token is configured, or it is an upload request
// relayed by a peer that checked the client's token (uploadrelay.go).
func (a *API) authorized(c *gin.Context) bool {
	return len(a.tokens) == 0 || a.tokens.match(c.GetHeader("Authorization")) || isRelayed(c)
}

// hasToken reports whether the caller presented a configured API token
// (false when none is configured).
func (a *API) hasToken(c *gin.Context) bool {
	return len(a.tokens) > 0 && a.tokens.match(c.GetHeader("Authorization"))
}

// readable reports whether the caller may read the API: reads are closed
// like writes when API tokens are configured, unless Config.PublicRead
// opens them.
func (a *API) readable(c *gin.Context) bool {
	return len(a.tokens) == 0 || a.publicRead || a.tokens.match(c.GetHeader("Authorization"))
}

// auth enforces the API token on state-changing routes.
func (a *API) auth(c *gin.Context) {
	if a.authorized(c) {
		return
	}
	unauthorized(c)
}

// readAuth enforces the API token on reads (see readable).
func (a *API) readAuth(c *gin.Context) {
	if a.readable(c) {
		return
	}
	unauthorized(c)
}

// unauthorized answers 401 with the API's JSON error shape.
func unauthorized(c *gin.Context) {
	c.Header("WWW-Authenticate", `Bearer realm="gosty"`)
	writeErrorCode(c, http.StatusUnauthorized, "unauthorized", "a valid API token is required (Authorization: Bearer <token>)")
}

// submitter names the caller for fair sharing: "token:" and a short hash of
// the presented token when it is one of the configured tokens (the token
// itself is never kept), else "".
func (s tokenSet) submitter(header string) string {
	if !s.match(header) {
		return ""
	}
	_, tok, _ := strings.Cut(header, " ")
	h := sha256.Sum256([]byte("gosty submitter\x00" + strings.TrimSpace(tok)))
	return "token:" + hex.EncodeToString(h[:8])
}

// submitterOf is who sends a request (Submitter), from its Authorization
// header.
func (a *API) submitterOf(r *http.Request) Submitter {
	if len(a.tokens) == 0 {
		return Submitter{}
	}
	return Submitter{ID: a.tokens.submitter(r.Header.Get("Authorization")), Tokens: true}
}

// A resumable upload's submitter reaches Jobs.Submit through tusd, which
// hands its hooks only the request's context: withSubmitter puts it there
// and submitterFrom takes it out.
type submitterKey struct{}

func withSubmitter(ctx context.Context, s Submitter) context.Context {
	return context.WithValue(ctx, submitterKey{}, s)
}

func submitterFrom(ctx context.Context) Submitter {
	s, _ := ctx.Value(submitterKey{}).(Submitter)
	return s
}
