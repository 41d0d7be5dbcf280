package node

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gosty/gosty/cluster/peerlink/peerlinktest"
	"github.com/gosty/gosty/cluster/peerproto"
	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/node/nodetest"
)

// writeSecret writes a secret file for a node under test.
func writeSecret(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// request sends one request with optional bearer token and returns the
// status and body.
func request(t *testing.T, method, u, token string, body io.Reader, hdr map[string]string) (int, []byte) {
	t.Helper()
	return requestVia(t, http.DefaultClient, method, u, token, body, hdr)
}

func requestVia(t *testing.T, hc *http.Client, method, u, token string, body io.Reader, hdr map[string]string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestPortsServeOnlyTheirAPI: the public port answers no internal route
// (with the cluster key or without), the internal port no public route,
// and the internal port answers only peers with the cluster key (TLS and
// the key's exchange): plain HTTP gets no answer, another key no
// connection.
func TestPortsServeOnlyTheirAPI(t *testing.T) {
	dir := t.TempDir()
	key := writeSecret(t, dir, "cluster.key", "the-cluster-key\n")
	n := startNode(t, filepath.Join(dir, "data"), func(c *Config) { c.ClusterKeyFile = key })
	internal := "https://" + n.iln.Addr().String()
	peer := peerlinktest.Client(t, "the-cluster-key")
	withKey := map[string]string{"Authorization": "Bearer the-cluster-key"}

	upload := peerproto.Prefix + "/uploads/" + n.cfg.Name + "." + strings.Repeat("0", 32)
	for _, p := range []string{
		peerproto.Prefix + "/raft/status",
		peerproto.Prefix + "/blobs/" + strings.Repeat("a", 64),
		upload,
	} {
		for _, method := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			if code, b := request(t, method, n.base+p, "", nil, withKey); code != http.StatusNotFound && code != http.StatusMethodNotAllowed {
				t.Errorf("public port %s %s: %d %s", method, p, code, b)
			}
		}
	}
	for _, p := range []string{peerproto.Prefix + "/propose", peerproto.Prefix + "/raft/join", peerproto.Prefix + "/heartbeat"} {
		if code, b := request(t, "POST", n.base+p, "", strings.NewReader("{}"), withKey); code != http.StatusNotFound {
			t.Errorf("public port POST %s: %d %s", p, code, b)
		}
	}
	for _, p := range []string{"/api/v1/jobs", "/api/v1/cluster", "/healthz", "/readyz", "/metrics", "/"} {
		if code, b := requestVia(t, peer, "GET", internal+p, "", nil, nil); code != http.StatusNotFound {
			t.Errorf("internal port GET %s: %d %s", p, code, b)
		}
	}
	if code, _ := requestVia(t, peer, "POST", internal+"/api/v1/jobs?filename=x.mp4", "", strings.NewReader("x"), nil); code != http.StatusNotFound {
		t.Errorf("internal port takes uploads: %d", code)
	}
	// The internal API itself: with the key, served.
	if code, _ := requestVia(t, peer, "GET", internal+peerproto.Prefix+"/raft/status", "", nil, nil); code != http.StatusOK {
		t.Errorf("internal status with the key: %d", code)
	}
	// Plain HTTP, even with the key as a bearer token: no HTTP answer.
	if resp, err := http.Get("http://" + n.iln.Addr().String() + peerproto.Prefix + "/raft/status"); err == nil {
		resp.Body.Close()
		t.Errorf("plain HTTP to the internal port answered %d", resp.StatusCode)
	}
	// Another key, or none: the connection is cut before any request.
	for _, key := range []string{"wrong", ""} {
		for _, method := range []string{"GET", "PATCH"} {
			req, _ := http.NewRequest(method, internal+upload, strings.NewReader("x"))
			if resp, err := peerlinktest.Client(t, key).Do(req); err == nil {
				resp.Body.Close()
				t.Errorf("internal %s with key %q answered %d", method, key, resp.StatusCode)
			}
		}
	}
	// With the key: served (this node holds no such upload: tus's 404).
	if code, b := requestVia(t, peer, "DELETE", internal+upload, "", nil,
		map[string]string{"Tus-Resumable": "1.0.0"}); code != http.StatusNotFound || !strings.HasPrefix(string(b), "ERR_UPLOAD_NOT_FOUND") {
		t.Errorf("internal DELETE of an unknown upload with the key: %d %s", code, b)
	}
}

// TestSignedPlaybackEndToEnd runs a job on a node with signed playback and
// two API tokens, then plays what it published the way a player does:
// ffprobe opens the signed HLS master playlist (and the MPD, and an MP4)
// by URL and finds every rendition, following the relative URIs that the
// served playlists carry the signature in; unsigned, tampered and expired
// URLs get 403.
func TestSignedPlaybackEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	dir := t.TempDir()
	ckey := writeSecret(t, dir, "cluster.key", "signed-playback-cluster-key\n")
	tokens := writeSecret(t, dir, "tokens", "# rotated monthly\nold-token\n\nnew-token\n")
	n := startNode(t, filepath.Join(dir, "data"), func(c *Config) {
		c.ClusterKeyFile, c.APITokenFile = ckey, tokens
		c.Playback, c.PlaybackTTL = PlaybackSigned, 2*time.Hour
	})
	src := genClip(t, filepath.Join(dir, "clip.mp4"), "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=4",
		"-f", "lavfi", "-i", "sine=duration=4", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
		"-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest")

	body, ct := nodetest.Form(t, src, "")
	if code, b := request(t, "POST", n.base+"/api/v1/jobs", "", bytes.NewReader(body.Bytes()), map[string]string{"Content-Type": ct}); code != http.StatusUnauthorized {
		t.Fatalf("upload without a token: %d %s", code, b)
	}
	code, b := request(t, "POST", n.base+"/api/v1/jobs", "old-token", body, map[string]string{"Content-Type": ct})
	if code != http.StatusCreated {
		t.Fatalf("upload with a token: %d %s", code, b)
	}
	var j apiJob
	json.Unmarshal(b, &j)
	waitFor(t, 3*time.Minute, "the job to finish", func() bool {
		_, b := request(t, "GET", n.base+"/api/v1/jobs/"+j.ID, "new-token", nil, nil)
		json.Unmarshal(b, &j)
		return j.State == "done" || j.State == "failed"
	})
	if j.State != "done" {
		t.Fatalf("job %s: %s", j.State, j.Error)
	}
	hls, err := url.Parse(j.Outputs.HLS)
	if err != nil || hls.Query().Get("sig") == "" {
		t.Fatalf("HLS URL not signed: %q", j.Outputs.HLS)
	}
	exp, _ := strconv.ParseInt(hls.Query().Get("exp"), 10, 64)
	if d := time.Until(time.Unix(exp, 0)); d < 2*time.Hour-time.Minute || d > 2*time.Hour+2*time.Minute {
		t.Errorf("exp is %v away, want the 2h TTL", d)
	}
	// Every node derives the same key from the cluster key.
	if want := httpapi.PlaybackQuery(httpapi.DerivePlaybackKey("signed-playback-cluster-key"), j.ID, exp); hls.RawQuery != want {
		t.Errorf("query %q, want %q", hls.RawQuery, want)
	}

	// A player: ffprobe follows master → media playlists → init and
	// segments, each by a relative URI.
	for _, u := range []string{j.Outputs.HLS, j.Outputs.DASH} {
		v := probeURL(t, n.base+u, "-show_streams")
		var videos, audios int
		for _, s := range v["streams"].([]any) {
			switch s.(map[string]any)["codec_type"] {
			case "video":
				videos++
			case "audio":
				audios++
			}
		}
		if videos != len(j.Renditions) || audios == 0 {
			t.Errorf("%s: %d video and %d audio streams, want %d and some", u, videos, audios, len(j.Renditions))
		}
	}
	for name, u := range j.Outputs.MP4 {
		vd, _, _ := streamDurations(t, n.base+u)
		if vd < 3.5 {
			t.Errorf("%s: %.2fs of video", name, vd)
		}
	}
	// Decoding the whole signed HLS presentation reads every segment.
	out, err := exec.Command("ffmpeg", "-v", "error", "-protocol_whitelist", "http,tcp", "-i", n.base+j.Outputs.HLS,
		"-map", "0:v:0", "-map", "0:a:0", "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("decoding the signed HLS: %v\n%s", err, out)
	}

	// Refused: no signature, a tampered one, an expired one, another
	// job's; and a file in a playlist, fetched without the query.
	files := n.base + "/api/v1/jobs/" + j.ID + "/files/"
	key := httpapi.DerivePlaybackKey("signed-playback-cluster-key")
	past := time.Now().Add(-time.Second).Unix()
	for name, q := range map[string]string{
		"unsigned":  "",
		"tampered":  "exp=" + strconv.FormatInt(exp+1, 10) + "&sig=" + hls.Query().Get("sig"),
		"expired":   httpapi.PlaybackQuery(key, j.ID, past),
		"other job": httpapi.PlaybackQuery(key, "someotherjob", exp),
	} {
		for _, rel := range []string{"master.m3u8", "manifest.mpd", "media_0.m3u8"} {
			code, b := request(t, "GET", files+rel+"?"+q, "", nil, nil)
			if code != http.StatusForbidden || !strings.Contains(string(b), `"code":"forbidden"`) {
				t.Errorf("%s %s: %d %s", name, rel, code, b)
			}
		}
	}
	// An API token opens files without a signature.
	if code, _ := request(t, "GET", files+"master.m3u8", "new-token", nil, nil); code != http.StatusOK {
		t.Errorf("file with a token: %d", code)
	}
	if code, _ := request(t, "GET", files+"master.m3u8", "bad-token", nil, nil); code != http.StatusForbidden {
		t.Errorf("file with a bad token: %d", code)
	}
}

func TestReadTokensAndPlaybackKey(t *testing.T) {
	dir := t.TempDir()
	for content, want := range map[string]string{
		"one\n":                         "one",
		"# comment\n\n one \r\ntwo\n\n": "one,two",
		"":                              "error",
		"# only a comment\n":            "error",
		"two words\n":                   "error",
	} {
		got, err := readTokens(writeSecret(t, dir, "tokens", content))
		if err != nil {
			if want != "error" {
				t.Errorf("%q: %v", content, err)
			} else if strings.Contains(err.Error(), "words") {
				t.Errorf("the error quotes the file: %v", err)
			}
			continue
		}
		if strings.Join(got, ",") != want {
			t.Errorf("%q: %q, want %q", content, got, want)
		}
	}

	ck := writeSecret(t, dir, "cluster.key", "ck\n")
	cfg := DefaultConfig()
	if k, err := playbackKey(cfg, "ck"); k != nil || err != nil {
		t.Errorf("public playback has a key: %x %v", k, err)
	}
	cfg.Playback = PlaybackSigned
	if k, err := playbackKey(cfg, "ck"); err != nil || !bytes.Equal(k, httpapi.DerivePlaybackKey("ck")) {
		t.Errorf("derived key: %x %v", k, err)
	}
	cfg.PlaybackKeyFile = writeSecret(t, dir, "pk", "0123456789abcdef-playback\n")
	if k, err := playbackKey(cfg, "ck"); err != nil || string(k) != "0123456789abcdef-playback" {
		t.Errorf("key from the file: %q %v", k, err)
	}
	cfg.PlaybackKeyFile = writeSecret(t, dir, "short", "short\n")
	if _, err := playbackKey(cfg, "ck"); err == nil || strings.Contains(err.Error(), "short\n") {
		t.Errorf("short key: %v", err)
	}

	// Validation of the new settings.
	for _, tc := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Playback = "private" }, "playback"},
		{func(c *Config) { c.Playback = PlaybackSigned }, "signed playback needs"},
		{func(c *Config) { c.Playback, c.ClusterKeyFile, c.PlaybackTTL = PlaybackSigned, ck, time.Second }, "TTL"},
		{func(c *Config) { c.MaxConcurrentUploads = 0 }, "concurrent uploads"},
		{func(c *Config) { c.Playback, c.ClusterKeyFile = PlaybackSigned, ck }, ""},
	} {
		c := DefaultConfig()
		tc.mod(&c)
		err := c.Validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("want %q, got %v", tc.want, err)
		}
	}
}
