package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gosty/gosty/cluster"
)

// TestEveryStateChangingRouteNeedsAToken walks the router: every route
// with a state-changing method answers 401 without a token, with a wrong
// one and with the right one in the wrong scheme, and passes auth with any
// of the configured tokens (several, for rotation). Reads stay open with
// PublicRead (TestEveryRouteClassified checks them closed without). Under
// the uploads route it does so for an upload this node holds and for one
// another node holds: no request without a token is relayed there.
func TestEveryStateChangingRouteNeedsAToken(t *testing.T) {
	tokens := []string{"tok-old", "tok-new"}
	relay := &countingRelay{}
	e := newEnv(t, func(c *Config) {
		c.APIToken, c.APITokens = "", tokens
		c.PublicRead = true
		c.UploadDir, c.UploadRelay = t.TempDir(), relay
	})
	e.jobs.put(sampleJob())
	mutating := 0
	for _, r := range e.api.engine.Routes() {
		paths := []string{strings.NewReplacer(":id", "j1", "*path", "master.m3u8").Replace(r.Path)}
		if strings.HasPrefix(r.Path, "/api/v1/uploads/") {
			paths = append(paths, strings.Replace(r.Path, "*path", newUploadID("n1"), 1),
				strings.Replace(r.Path, "*path", newUploadID("elsewhere"), 1))
		}
		for _, path := range paths {
			switch r.Method {
			case http.MethodGet, http.MethodHead, http.MethodOptions:
				if strings.HasSuffix(r.Path, "/events") || strings.Contains(r.Path, "/files/") {
					continue // streams; files are covered by the playback tests
				}
				resp, b := do(t, r.Method, e.srv.URL+path, nil, nil)
				if resp.StatusCode == http.StatusUnauthorized {
					t.Errorf("%s %s needs a token: %s", r.Method, path, b)
				}
				continue
			}
			mutating++
			relayed := relay.calls.Load()
			for _, hdr := range []string{"", "Bearer nope", "Bearer tok-ol", "Basic dG9rLW5ldw==", "tok-new", "Bearer tok-new tok-old"} {
				h := map[string]string{}
				if hdr != "" {
					h["Authorization"] = hdr
				}
				resp, b := do(t, r.Method, e.srv.URL+path, strings.NewReader("x"), h)
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("%s %s with %q: %d %s", r.Method, path, hdr, resp.StatusCode, b)
					continue
				}
				if code, msg := errCode(t, b); code != "unauthorized" || strings.Contains(msg, "tok-") {
					t.Errorf("%s %s: %s %q", r.Method, path, code, msg)
				}
				if resp.Header.Get("WWW-Authenticate") == "" {
					t.Errorf("%s %s: no WWW-Authenticate", r.Method, path)
				}
			}
			if n := relay.calls.Load() - relayed; n != 0 {
				t.Errorf("%s %s: %d requests without a valid token were relayed", r.Method, path, n)
			}
			for _, tok := range tokens {
				resp, b := do(t, r.Method, e.srv.URL+path, strings.NewReader("x"), map[string]string{"Authorization": "Bearer " + tok})
				if resp.StatusCode == http.StatusUnauthorized {
					t.Errorf("%s %s with %s: %d %s", r.Method, path, tok, resp.StatusCode, b)
				}
			}
		}
	}
	if mutating < 2 {
		t.Fatalf("only %d state-changing routes found", mutating)
	}
	if relay.calls.Load() == 0 {
		t.Fatal("no request for another node's upload was relayed")
	}
}

// countingRelay counts the requests relayed to other nodes, none of which
// answers.
type countingRelay struct{ calls atomic.Int32 }

func (r *countingRelay) RelayUpload(ctx context.Context, owner string, call cluster.UploadCall) (*http.Response, error) {
	r.calls.Add(1)
	return nil, fmt.Errorf("relay upload %s: node %s is not alive", call.ID, owner)
}

const (
	testMaster = "#EXTM3U\n#EXT-X-VERSION:7\n\n" +
		`#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="group_A1",NAME="audio_0",DEFAULT=YES,URI="media_1.m3u8"` + "\n" +
		`#EXT-X-STREAM-INF:BANDWIDTH=1000,RESOLUTION=160x90,CODECS="avc1.64000c,mp4a.40.2",AUDIO="group_A1"` + "\n" +
		"media_0.m3u8\n"
	testMedia = "#EXTM3U\r\n#EXT-X-VERSION:7\r\n#EXT-X-TARGETDURATION:2\r\n#EXT-X-PLAYLIST-TYPE:VOD\r\n" +
		`#EXT-X-MAP:URI="init-0.m4s"` + "\r\n#EXTINF:2.000,\r\nseg-0-00001.m4s\r\n#EXTINF:2.000,\r\nhttps://cdn.example/abs.m4s\r\n#EXT-X-ENDLIST\r\n"
	testMPD = `<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" mediaPresentationDuration="PT4.0S">
	<Period id="0" start="PT0.0S">
		<AdaptationSet id="0" contentType="video" segmentAlignment="true">
			<Representation id="0" mimeType="video/mp4" codecs="avc1.64000c" bandwidth="1000" width="160" height="90">
				<SegmentTemplate timescale="12800" initialization="init-$RepresentationID$.m4s" media="seg-$RepresentationID$-$Number%05d$.m4s" startNumber="1">
				</SegmentTemplate>
			</Representation>
		</AdaptationSet>
	</Period>
</MPD>
`
)

func TestSignPlaylists(t *testing.T) {
	q := "exp=100&sig=abc"
	hls := string(signHLS([]byte(testMaster), q))
	for _, want := range []string{`URI="media_1.m3u8?exp=100&sig=abc"`, "\nmedia_0.m3u8?exp=100&sig=abc\n",
		`CODECS="avc1.64000c,mp4a.40.2"`, "#EXT-X-VERSION:7\n\n"} {
		if !strings.Contains(hls, want) {
			t.Errorf("signed master lacks %q:\n%s", want, hls)
		}
	}
	media := string(signHLS([]byte(testMedia), q))
	for _, want := range []string{`#EXT-X-MAP:URI="init-0.m4s?exp=100&sig=abc"` + "\r\n", "\r\nseg-0-00001.m4s?exp=100&sig=abc\r\n",
		"\r\nhttps://cdn.example/abs.m4s\r\n", "#EXT-X-ENDLIST\r\n"} {
		if !strings.Contains(media, want) {
			t.Errorf("signed media playlist lacks %q:\n%q", want, media)
		}
	}
	if got := withQuery("a.m4s?x=1", q); got != "a.m4s?x=1&"+q {
		t.Errorf("withQuery with a query: %q", got)
	}
	mpd := string(signDASH([]byte(testMPD), q))
	for _, want := range []string{`initialization="init-$RepresentationID$.m4s?exp=100&amp;sig=abc"`,
		`media="seg-$RepresentationID$-$Number%05d$.m4s?exp=100&amp;sig=abc"`, `mimeType="video/mp4"`,
		`mediaPresentationDuration="PT4.0S"`} {
		if !strings.Contains(mpd, want) {
			t.Errorf("signed MPD lacks %q:\n%s", want, mpd)
		}
	}
}

func signedEnv(t *testing.T, tokens ...string) (*env, []byte) {
	t.Helper()
	key := DerivePlaybackKey("cluster-secret")
	e := newEnv(t, func(c *Config) {
		c.APITokens = tokens
		c.PlaybackKey = key
		c.PlaybackTTL = time.Hour
	})
	j := sampleJob()
	j.State = cluster.JobDone
	j.Outputs = map[string]cluster.BlobRef{
		"master.m3u8":     e.blobs.add("h-master", []byte(testMaster)),
		"media_0.m3u8":    e.blobs.add("h-media", []byte(testMedia)),
		"manifest.mpd":    e.blobs.add("h-mpd", []byte(testMPD)),
		"seg-0-00001.m4s": e.blobs.add("h-seg", []byte("0123456789")),
		"mp4/720p.mp4":    e.blobs.add("h-mp4", []byte("mp4data")),
	}
	j.HLS, j.DASH, j.MP4 = "master.m3u8", "manifest.mpd", map[string]string{"720p": "mp4/720p.mp4"}
	e.jobs.put(j)
	return e, key
}

func getView(t *testing.T, url string, hdr map[string]string) JobView {
	t.Helper()
	resp, b := do(t, "GET", url, nil, hdr)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	var v JobView
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestSignedPlayback: with a playback key, files need a valid, unexpired
// signature for their job (or an API token); the job JSON gives
// authorized callers signed URLs; playlists come back with every URI
// signed the same way, so that relative segment URLs keep working.
func TestSignedPlayback(t *testing.T) {
	e, key := signedEnv(t, "tok")
	auth := map[string]string{"Authorization": "Bearer tok"}
	base := e.srv.URL + "/api/v1/jobs/j1/files/"

	// Readers without a token see nothing (reads are closed with tokens).
	if resp, b := do(t, "GET", e.srv.URL+"/api/v1/jobs/j1", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous job read: %d %s", resp.StatusCode, b)
	}
	v := getView(t, e.srv.URL+"/api/v1/jobs/j1", auth)
	u, err := url.Parse(v.Outputs.HLS)
	if err != nil || u.Path != "/api/v1/jobs/j1/files/master.m3u8" {
		t.Fatalf("signed HLS URL %q", v.Outputs.HLS)
	}
	exp, _ := strconv.ParseInt(u.Query().Get("exp"), 10, 64)
	if left := time.Until(time.Unix(exp, 0)); left < time.Hour-time.Second || left > time.Hour+time.Minute {
		t.Fatalf("exp %d is %v from now, want the 1h TTL", exp, left)
	}
	if u.Query().Get("sig") != SignPlayback(key, "j1", exp) {
		t.Fatalf("sig %q", u.Query().Get("sig"))
	}
	for _, s := range []string{v.Outputs.DASH, v.Outputs.MP4["720p"]} {
		if !strings.HasSuffix(s, "?"+u.RawQuery) {
			t.Errorf("URL %q is not signed like the HLS one", s)
		}
	}
	list := getView(t, e.srv.URL+"/api/v1/jobs", auth)
	_ = list

	// The signed master playlist plays: every URI carries the signature.
	resp, b := do(t, "GET", e.srv.URL+v.Outputs.HLS, nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(b), "\nmedia_0.m3u8?"+u.RawQuery+"\n") ||
		!strings.Contains(string(b), `URI="media_1.m3u8?`+u.RawQuery+`"`) {
		t.Fatalf("signed master: %d\n%s", resp.StatusCode, b)
	}
	if etag := resp.Header.Get("ETag"); etag != fmt.Sprintf(`"h-master-%d"`, exp) {
		t.Errorf("ETag of a signed playlist %q", etag)
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.HasPrefix(cc, "private, max-age=") {
		t.Errorf("Cache-Control %q", cc)
	}
	resp, b = do(t, "GET", base+"manifest.mpd?"+u.RawQuery, nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `.m4s?exp=`+strconv.FormatInt(exp, 10)+`&amp;sig=`) {
		t.Fatalf("signed MPD: %d\n%s", resp.StatusCode, b)
	}
	// Segments: the same query, with Range.
	resp, b = do(t, "GET", base+"seg-0-00001.m4s?"+u.RawQuery, nil, map[string]string{"Range": "bytes=2-4"})
	if resp.StatusCode != 206 || string(b) != "234" {
		t.Fatalf("signed segment range: %d %q", resp.StatusCode, b)
	}

	expired := time.Now().Add(-time.Minute).Unix()
	refused := map[string]string{
		"no signature":    "",
		"exp only":        fmt.Sprintf("exp=%d", exp),
		"sig only":        "sig=" + SignPlayback(key, "j1", exp),
		"bad signature":   fmt.Sprintf("exp=%d&sig=%s", exp, strings.Repeat("0", 64)),
		"short signature": fmt.Sprintf("exp=%d&sig=abcd", exp),
		"not hex":         fmt.Sprintf("exp=%d&sig=%s", exp, strings.Repeat("z", 64)),
		"later exp":       fmt.Sprintf("exp=%d&sig=%s", exp+60, SignPlayback(key, "j1", exp)),
		"bad exp":         "exp=soon&sig=" + SignPlayback(key, "j1", exp),
		"other job":       PlaybackQuery(key, "j2", exp),
		"other key":       PlaybackQuery(DerivePlaybackKey("other"), "j1", exp),
		"expired":         PlaybackQuery(key, "j1", expired),
		"wrong token":     "",
	}
	for name, q := range refused {
		for _, rel := range []string{"master.m3u8", "seg-0-00001.m4s", "mp4/720p.mp4"} {
			hdr := map[string]string{}
			if name == "wrong token" {
				hdr["Authorization"] = "Bearer nope"
			}
			for _, method := range []string{"GET", "HEAD"} {
				resp, b := do(t, method, base+rel+"?"+q, nil, hdr)
				if resp.StatusCode != http.StatusForbidden {
					t.Errorf("%s %s with %s: %d", method, rel, name, resp.StatusCode)
					continue
				}
				if method == "GET" {
					code, msg := errCode(t, b)
					if code != "forbidden" || (name == "expired") != strings.Contains(msg, "expired") {
						t.Errorf("%s with %s: %s %q", rel, name, code, msg)
					}
				}
			}
		}
	}
	// Refused before the lookup: an unsigned request cannot tell whether a
	// job exists.
	if resp, _ := do(t, "GET", e.srv.URL+"/api/v1/jobs/nosuchjob/files/master.m3u8", nil, nil); resp.StatusCode != 403 {
		t.Errorf("unknown job without signature: %d", resp.StatusCode)
	}

	// An API token opens files too, and the playlists it gets are signed.
	resp, b = do(t, "GET", base+"media_0.m3u8", nil, auth)
	if resp.StatusCode != 200 || !strings.Contains(string(b), "seg-0-00001.m4s?exp=") {
		t.Fatalf("playlist with a token: %d\n%s", resp.StatusCode, b)
	}
	// Preflights need nothing.
	resp, _ = do(t, "OPTIONS", base+"seg-0-00001.m4s", nil, map[string]string{"Origin": "https://p.example", "Access-Control-Request-Method": "GET"})
	if resp.StatusCode != 204 {
		t.Errorf("preflight: %d", resp.StatusCode)
	}
}

// TestSignedPlaybackWithoutTokens: with no API token configured everyone
// is authorized, so every job view carries signed URLs, and files still
// need them.
func TestSignedPlaybackWithoutTokens(t *testing.T) {
	e, key := signedEnv(t)
	v := getView(t, e.srv.URL+"/api/v1/jobs/j1", nil)
	if !strings.Contains(v.Outputs.HLS, "?exp=") {
		t.Fatalf("view without tokens: %q", v.Outputs.HLS)
	}
	if resp, _ := do(t, "GET", e.srv.URL+"/api/v1/jobs/j1/files/master.m3u8", nil, nil); resp.StatusCode != 403 {
		t.Fatalf("unsigned file: %d", resp.StatusCode)
	}
	if resp, _ := do(t, "GET", e.srv.URL+v.Outputs.MP4["720p"], nil, nil); resp.StatusCode != 200 {
		t.Fatalf("signed file: %d", resp.StatusCode)
	}
	// Public playback (no key): bare URLs, open files.
	p := newEnv(t, nil)
	j := sampleJob()
	j.State, j.HLS = cluster.JobDone, "master.m3u8"
	j.Outputs = map[string]cluster.BlobRef{"master.m3u8": p.blobs.add("h", []byte(testMaster))}
	p.jobs.put(j)
	if v := getView(t, p.srv.URL+"/api/v1/jobs/j1", nil); strings.Contains(v.Outputs.HLS, "?") {
		t.Fatalf("public view: %q", v.Outputs.HLS)
	}
	resp, b := do(t, "GET", p.srv.URL+"/api/v1/jobs/j1/files/master.m3u8", nil, nil)
	if resp.StatusCode != 200 || string(b) != testMaster {
		t.Fatalf("public playlist: %d %q", resp.StatusCode, b)
	}
	_ = key
}

// TestFilePathValidation: whatever reaches files/* is checked before any
// lookup: traversal, absolute paths, NUL and control bytes, backslashes
// and encoded separators are 400; a well-formed unknown name is 404; only
// published names are 200. Requests are written raw so that no client
// cleans the path first.
func TestFilePathValidation(t *testing.T) {
	e := newEnv(t, nil)
	j := sampleJob()
	j.State = cluster.JobDone
	j.Outputs = map[string]cluster.BlobRef{
		"master.m3u8":  e.blobs.add("h-master", []byte("#EXTM3U\n")),
		"mp4/720p.mp4": e.blobs.add("h-mp4", []byte("mp4")),
	}
	e.jobs.put(j)
	host := strings.TrimPrefix(e.srv.URL, "http://")
	cases := []struct {
		path string
		want int
	}{
		{"/api/v1/jobs/j1/files/master.m3u8", 200},
		{"/api/v1/jobs/j1/files/mp4/720p.mp4", 200},
		{"/api/v1/jobs/j1/files/nope.m4s", 404},
		{"/api/v1/jobs/j1/files/", 400},
		{"/api/v1/jobs/j1/files/../../../etc/passwd", 400},
		{"/api/v1/jobs/j1/files/mp4/../master.m3u8", 400},
		{"/api/v1/jobs/j1/files/./master.m3u8", 400},
		{"/api/v1/jobs/j1/files//etc/passwd", 400},
		{"/api/v1/jobs/j1/files/mp4//720p.mp4", 400},
		{"/api/v1/jobs/j1/files/%2e%2e/%2e%2e/etc/passwd", 400},
		{"/api/v1/jobs/j1/files/%2E%2E%2Fmaster.m3u8", 400},
		{"/api/v1/jobs/j1/files/mp4%2f720p.mp4", 400},
		{"/api/v1/jobs/j1/files/mp4%5c720p.mp4", 400},
		{`/api/v1/jobs/j1/files/mp4\720p.mp4`, 400},
		{"/api/v1/jobs/j1/files/master.m3u8%00.mp4", 400},
		{"/api/v1/jobs/j1/files/a%0ab", 400},
		{"/api/v1/jobs/j1/files/%252e%252e/x", 400},
		{"/api/v1/jobs/j1/files/c:/windows", 400},
		{"/api/v1/jobs/j1/files/%ff%fe", 400},
		{"/api/v1/jobs/j1/files/" + strings.Repeat("a", 600), 400},
		// Job IDs: only [A-Za-z0-9_-]{1,64}.
		{"/api/v1/jobs/%2e%2e/files/master.m3u8", 400},
		{"/api/v1/jobs/j1%00/files/master.m3u8", 400},
		{"/api/v1/jobs/j.1/files/master.m3u8", 400},
		{"/api/v1/jobs/" + strings.Repeat("j", 65), 400},
		{"/api/v1/jobs/%2e%2e", 400},
		{"/api/v1/jobs/j1%2f..%2f..", 404}, // routed on the decoded path: no such route
	}
	for _, tc := range cases {
		got := rawGet(t, host, tc.path)
		if got != tc.want {
			t.Errorf("GET %s: %d, want %d", tc.path, got, tc.want)
		}
	}
}

// rawGet sends a GET with the path exactly as given and returns the status.
func rawGet(t *testing.T, host, path string) int {
	t.Helper()
	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, host)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// blockingUpload starts a raw upload whose body stays open until the
// returned cancel is called; it returns once the backend is reading it.
func blockingUpload(t *testing.T, e *env, reads <-chan int) (cancel func(), result <-chan int) {
	t.Helper()
	pr, pw := io.Pipe()
	ctx, cancelReq := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "POST", e.srv.URL+"/api/v1/jobs?filename=a.mp4", pr)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			out <- 0
			return
		}
		resp.Body.Close()
		out <- resp.StatusCode
	}()
	go pw.Write([]byte("some bytes"))
	select {
	case <-reads:
	case <-time.After(10 * time.Second):
		t.Fatal("the upload never reached the backend")
	}
	return func() { cancelReq(); pw.CloseWithError(io.ErrClosedPipe) }, out
}

// TestUploadConcurrencyLimit: uploads beyond MaxConcurrentUploads get 429
// with Retry-After at once, and a slot comes back when an upload's client
// disconnects mid-body.
func TestUploadConcurrencyLimit(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxConcurrentUploads = 2 })
	reads := make(chan int, 1000)
	e.jobs.received = reads
	cancel1, res1 := blockingUpload(t, e, reads)
	cancel2, res2 := blockingUpload(t, e, reads)
	defer cancel2()

	resp, b := do(t, "POST", e.srv.URL+"/api/v1/jobs?filename=c.mp4", strings.NewReader("data"), nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third upload: %d %v %s", resp.StatusCode, resp.Header, b)
	}
	if code, _ := errCode(t, b); code != "too_many_uploads" {
		t.Fatalf("code %q", code)
	}
	// Over-size uploads are refused for their size even when busy.
	e.api.maxBody = 100
	resp, _ = do(t, "POST", e.srv.URL+"/api/v1/jobs?filename=c.mp4", strings.NewReader(strings.Repeat("x", 200)), nil)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("over-size upload while busy: %d", resp.StatusCode)
	}
	e.api.maxBody = DefaultMaxUploadBytes

	// The first client goes away: its slot is released.
	cancel1()
	<-res1
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, b := do(t, "POST", e.srv.URL+"/api/v1/jobs?filename=d.mp4", strings.NewReader("data"), nil)
		if resp.StatusCode == http.StatusCreated {
			break
		}
		if resp.StatusCode != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("after a client left: %d %s", resp.StatusCode, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel2()
	<-res2
	if n := len(e.api.uploads); n != 0 {
		// The handler may still be unwinding; give it a moment.
		deadline := time.Now().Add(5 * time.Second)
		for len(e.api.uploads) != 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := len(e.api.uploads); n != 0 {
			t.Fatalf("%d upload slots still taken", n)
		}
	}
}

// TestJSONBodyLimit: every request but an upload is capped at
// MaxJSONBytes: a declared length beyond it is 413 at once, a chunked body
// fails its read with 413 too.
func TestJSONBodyLimit(t *testing.T) {
	api, err := New(Config{Jobs: newFakeJobs(), Blobs: &fakeBlobs{blobs: map[string][]byte{}}, Cluster: fakeCluster{},
		Health: &fakeHealth{}, Registry: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	// A JSON endpoint as later routes write them.
	api.engine.POST("/api/v1/test-json", func(c *gin.Context) {
		var v map[string]any
		if !api.decodeJSON(c, &v) {
			return
		}
		writeJSON(c, 200, v)
	})
	// Not checked against openapi.yaml: test-json is no route of the API.
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()

	big := `{"a":"` + strings.Repeat("x", int(MaxJSONBytes)) + `"}`
	for _, tc := range []struct {
		name, method, path string
		body               io.Reader
		want               int
	}{
		{"small JSON", "POST", "/api/v1/test-json", strings.NewReader(`{"a":1}`), 200},
		{"malformed JSON", "POST", "/api/v1/test-json", strings.NewReader(`{"a":`), 400},
		{"trailing data", "POST", "/api/v1/test-json", strings.NewReader(`{"a":1} {}`), 400},
		{"declared too large", "POST", "/api/v1/test-json", strings.NewReader(big), 413},
		{"chunked too large", "POST", "/api/v1/test-json", io.MultiReader(strings.NewReader(big)), 413},
		{"DELETE with a large body", "DELETE", "/api/v1/jobs/j1", strings.NewReader(big), 413},
		{"unknown route, large body", "PUT", "/nowhere", strings.NewReader(big), 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := do(t, tc.method, srv.URL+tc.path, tc.body, map[string]string{"Content-Type": "application/json"})
			if resp.StatusCode != tc.want {
				t.Fatalf("%d, want %d: %s", resp.StatusCode, tc.want, b)
			}
			if tc.want == 413 {
				if code, _ := errCode(t, b); code != "too_large" {
					t.Fatalf("code %q", code)
				}
			}
		})
	}
	// The upload route is not capped at MaxJSONBytes.
	resp, b := do(t, "POST", srv.URL+"/api/v1/jobs?filename=a.mp4", strings.NewReader(big), nil)
	if resp.StatusCode != 201 {
		t.Fatalf("upload larger than the JSON cap: %d %s", resp.StatusCode, b)
	}
}

// TestUploadIdleTimeout: with a server ReadTimeout much shorter than the
// upload, an upload that keeps sending completes (the read deadline moves
// with the bytes); one that stalls longer than UploadIdleTimeout is cut
// with 408 and gives its slot back.
func TestUploadIdleTimeout(t *testing.T) {
	jobs := newFakeJobs()
	api, err := New(Config{Jobs: jobs, Blobs: &fakeBlobs{blobs: map[string][]byte{}}, Cluster: fakeCluster{},
		Health: &fakeHealth{}, Registry: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler),
		UploadIdleTimeout: 400 * time.Millisecond, MaxConcurrentUploads: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(contractHandler(t, api.Handler()))
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Start()
	defer srv.Close()

	trickle := func(gaps ...time.Duration) (int, error) {
		pr, pw := io.Pipe()
		go func() {
			for _, g := range gaps {
				time.Sleep(g)
				if _, err := pw.Write([]byte("abcd")); err != nil {
					return
				}
			}
			pw.Close()
		}()
		resp, err := http.Post(srv.URL+"/api/v1/jobs?filename=slow.mp4", "application/octet-stream", pr)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		return resp.StatusCode, nil
	}
	// 1.2 s in all, never idle for 400 ms.
	var gaps []time.Duration
	for range 12 {
		gaps = append(gaps, 100*time.Millisecond)
	}
	if code, err := trickle(gaps...); code != 201 {
		t.Fatalf("slow but steady upload: %d %v", code, err)
	}
	subs := jobs.submissions()
	if len(subs) != 1 || len(subs[0].data) != 48 {
		t.Fatalf("submissions %+v", subs)
	}
	// A stall of 1.5 s is cut.
	code, err := trickle(0, 1500*time.Millisecond, 0)
	if err == nil && code != http.StatusRequestTimeout {
		t.Fatalf("stalled upload: %d", code)
	}
	t.Logf("stalled upload: %d %v", code, err)
	// Its slot is free again.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		deadline := time.Now().Add(5 * time.Second)
		for {
			code, err := trickle(0)
			if code == 201 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("after a stalled upload: %d %v", code, err)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	wg.Wait()
}
