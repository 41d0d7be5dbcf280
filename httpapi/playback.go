package httpapi

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gosty/gosty/cluster/peerlink"
)

// Signed playback. With a playback key, a job's files are served only to
// requests that carry ?exp=<unix seconds>&sig=<hex HMAC-SHA256(key,
// "<job id>\n<exp>")> (or a valid API token). One signature covers the
// whole job directory, so a player resolving a manifest's relative segment
// URLs needs only the query string: every playlist served with a valid
// signature has its URIs rewritten to carry the same exp and sig (HLS: URI
// lines and URI="..." attributes; DASH: the media, initialization, index
// and sourceURL attributes). The job JSON hands out signed URLs to
// authorized callers; every node derives the same key, so any node
// verifies any node's signature.

// DefaultPlaybackTTL is how long signed URLs in the job JSON stay valid
// when Config.PlaybackTTL is 0.
const DefaultPlaybackTTL = 6 * time.Hour

// DerivePlaybackKey is the playback key a node uses when none is
// configured: the cluster key's HKDF key of the playback purpose
// (peerlink.DeriveKey). Every node with the same cluster key derives the
// same playback key, and it reveals neither the cluster key nor the keys of
// other purposes. (Before the peer link release it was an HMAC of a label:
// signed URLs made by older nodes do not verify on newer ones.)
func DerivePlaybackKey(clusterKey string) []byte {
	return peerlink.DeriveKey(clusterKey, peerlink.Playback)
}

// SignPlayback returns the hex signature of a job's files valid until exp
// (unix seconds).
func SignPlayback(key []byte, jobID string, exp int64) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(jobID + "\n" + strconv.FormatInt(exp, 10)))
	return hex.EncodeToString(m.Sum(nil))
}

// PlaybackQuery is the query string ("exp=...&sig=...") that opens a job's
// files until exp.
func PlaybackQuery(key []byte, jobID string, exp int64) string {
	return "exp=" + strconv.FormatInt(exp, 10) + "&sig=" + SignPlayback(key, jobID, exp)
}

var (
	errNoSignature  = errors.New("a signed URL is required (exp and sig query parameters)")
	errBadSignature = errors.New("the URL signature is not valid")
	errExpired      = errors.New("the signed URL has expired")
)

type signer struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

// expiry is the exp handed out now: the TTL from now, rounded up to the
// minute so that repeated reads of a job give the same URLs for a while
// (cache friendly) and never less than the TTL.
func (s *signer) expiry() int64 {
	t := s.now().Add(s.ttl)
	return (t.Unix() + 59) / 60 * 60
}

// query mints a fresh query string for a job.
func (s *signer) query(jobID string) string { return PlaybackQuery(s.key, jobID, s.expiry()) }

// check verifies exp and sig for a job and returns exp.
func (s *signer) check(jobID, exp, sig string) (int64, error) {
	if exp == "" || sig == "" {
		return 0, errNoSignature
	}
	e, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || e <= 0 || len(sig) != 2*sha256.Size {
		return 0, errBadSignature
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return 0, errBadSignature
	}
	want, _ := hex.DecodeString(SignPlayback(s.key, jobID, e))
	if !hmac.Equal(got, want) {
		return 0, errBadSignature
	}
	if s.now().Unix() > e {
		return 0, errExpired
	}
	return e, nil
}

// withQuery appends q to a relative URI from a manifest. Absolute URIs
// (another host, a data: URI) are left alone: the signature is for this
// service only.
func withQuery(u, q string) string {
	if u == "" || strings.Contains(u, "://") || strings.HasPrefix(u, "//") || strings.HasPrefix(strings.ToLower(u), "data:") {
		return u
	}
	if strings.Contains(u, "?") {
		return u + "&" + q
	}
	return u + "?" + q
}

var hlsURIAttr = regexp.MustCompile(`URI="([^"]*)"`)

// signHLS rewrites every URI of an HLS playlist (media playlists and
// variant streams on their own lines, URI="..." attributes of EXT-X-MAP,
// EXT-X-MEDIA, EXT-X-I-FRAME-STREAM-INF and the like) to carry q.
func signHLS(b []byte, q string) []byte {
	var out bytes.Buffer
	out.Grow(len(b) + 128)
	for line := range bytes.Lines(b) {
		body := bytes.TrimRight(line, "\r\n")
		eol := line[len(body):]
		t := strings.TrimSpace(string(body))
		switch {
		case t == "":
			out.Write(line)
			continue
		case strings.HasPrefix(t, "#"):
			out.WriteString(hlsURIAttr.ReplaceAllStringFunc(string(body), func(m string) string {
				u := hlsURIAttr.FindStringSubmatch(m)[1]
				return `URI="` + withQuery(u, q) + `"`
			}))
		default:
			out.WriteString(withQuery(t, q))
		}
		out.Write(eol)
	}
	return out.Bytes()
}

var dashURLAttr = regexp.MustCompile(`(\s(?:media|initialization|index|sourceURL)=")([^"]*)(")`)

// signDASH rewrites the segment URL attributes of an MPD (SegmentTemplate
// media/initialization/index, SegmentURL media, Initialization sourceURL)
// to carry q. BaseURL is not enough: resolving a relative URL against a
// base drops the base's query.
func signDASH(b []byte, q string) []byte {
	xq := strings.ReplaceAll(q, "&", "&amp;")
	return dashURLAttr.ReplaceAllFunc(b, func(m []byte) []byte {
		p := dashURLAttr.FindSubmatch(m)
		return append(append(append([]byte{}, p[1]...), withQuery(string(p[2]), xq)...), p[3]...)
	})
}
