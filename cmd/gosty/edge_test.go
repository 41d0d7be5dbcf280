package main

import (
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gosty/gosty/cluster/peerlink/peerlinktest"
	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/node/nodetest"
)

// Subnets of these tests: 127.0.30.x (secrets) and 127.0.31.x (gossip key).

func send(t *testing.T, hc *http.Client, method, url, auth string, body io.Reader) int {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestSecretsNeverLogged runs a node at debug level with a known cluster
// key, gossip key, API tokens and signed playback, sends it good and bad
// requests (secrets in the wrong places included), stops it, and checks
// that no secret, in any encoding, is anywhere in its log.
func TestSecretsNeverLogged(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a node process")
	}
	dir := t.TempDir()
	const (
		clusterKey = e2e.ClusterKey // written by e2e.New
		gossipKey  = "gossip-secret-0123456789abcdef!!"
		tokenA     = "api-token-alpha-5f3c9e"
		tokenB     = "api-token-beta-77aa01"
	)
	gk := filepath.Join(dir, "gossip.key")
	os.WriteFile(gk, []byte(base64.StdEncoding.EncodeToString([]byte(gossipKey))+"\n"), 0o600)
	tf := filepath.Join(dir, "tokens")
	os.WriteFile(tf, []byte(tokenA+"\n"+tokenB+"\n"), 0o600)
	c := e2e.FastCluster(t, 30, 1, "--log-level", "debug", "--gossip-key-file", gk, "--api-token-file", tf,
		"--playback", "signed")
	if err := c.Start(0); err != nil {
		t.Fatal(err)
	}
	base := c.HTTP(0)
	nodetest.WaitReady(t, base, 30*time.Second)
	internal := "http://127.0.30.1:7948/internal/v1"
	internalTLS := "https://127.0.30.1:7948/internal/v1"

	checks := []struct {
		method, url, auth, body string
		want                    int
	}{
		{"POST", base + "/api/v1/jobs?filename=a.mp4", "", "x", 401},
		{"POST", base + "/api/v1/jobs?filename=a.mp4", "Bearer " + clusterKey, "x", 401},
		{"POST", base + "/api/v1/jobs?filename=a.mp4", "Bearer " + tokenA + "x", "x", 401},
		{"POST", base + "/api/v1/jobs?filename=a.mp4", "Basic " + base64.StdEncoding.EncodeToString([]byte("u:"+tokenB)), "x", 401},
		{"POST", base + "/api/v1/jobs?filename=a.mp4", "Bearer " + tokenA, "not a video", 422},
		{"DELETE", base + "/api/v1/jobs/nosuchjob", "Bearer " + tokenB, "", 404},
		{"DELETE", base + "/api/v1/jobs/nosuchjob", "Bearer " + gossipKey, "", 401},
		// Reads need the token too, in the header: not in the URL.
		{"GET", base + "/api/v1/jobs?access_token=" + tokenA, "", "", 401},
		{"GET", base + "/api/v1/jobs", "Bearer " + tokenB, "", 200},
		{"GET", base + "/api/v1/jobs/nosuchjob/files/master.m3u8?exp=1&sig=00", "", "", 403},
		{"GET", base + "/api/v1/jobs/nosuchjob/files/master.m3u8", "Bearer " + tokenA, "", 404},
		{"GET", base + "/metrics", "", "", 200},
		{"DELETE", base + "/api/v1/uploads/nosuchnode." + strings.Repeat("0", 32), "Bearer " + tokenA, "", 404},
		{"DELETE", base + "/api/v1/uploads/nosuchnode." + strings.Repeat("0", 32), "Bearer " + clusterKey, "", 401},
	}
	for _, ch := range checks {
		var body io.Reader
		if ch.body != "" {
			body = strings.NewReader(ch.body)
		}
		if got := send(t, http.DefaultClient, ch.method, ch.url, ch.auth, body); got != ch.want {
			t.Errorf("%s %s: %d, want %d", ch.method, ch.url, got, ch.want)
		}
	}
	// The internal API: over a peer link with the cluster key (no
	// credential in any request); plain HTTP or another key get no answer.
	peer := peerlinktest.Client(t, clusterKey)
	for _, ch := range []struct {
		method, path, auth, body string
		want                     int
	}{
		{"GET", "/raft/status", "", "", 200},
		{"GET", "/raft/status", "Bearer " + tokenA, "", 200}, // a token means nothing here
		{"GET", "/blobs/%2e%2e", "", "", 400},
		{"POST", "/propose", "", "{not json", 400},
	} {
		var body io.Reader
		if ch.body != "" {
			body = strings.NewReader(ch.body)
		}
		if got := send(t, peer, ch.method, internalTLS+ch.path, ch.auth, body); got != ch.want {
			t.Errorf("internal %s %s: %d, want %d", ch.method, ch.path, got, ch.want)
		}
	}
	for _, hc := range []*http.Client{http.DefaultClient, peerlinktest.Client(t, clusterKey+"x")} {
		base := internal
		if hc != http.DefaultClient {
			base = internalTLS
		}
		req, _ := http.NewRequest("GET", base+"/raft/status", nil)
		req.Header.Set("Authorization", "Bearer "+clusterKey)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			t.Errorf("internal port without the link's key answered %d", resp.StatusCode)
		}
	}
	if err := c.Stop(0, 30*time.Second); err != nil {
		t.Errorf("stop: %v", err)
	}

	log := c.Log(0)
	// The log is not vacuous: debug lines, the refusals and the stop are in it.
	for _, want := range []string{`"level":"DEBUG"`, `"status":401`, `"status":403`, `"msg":"stopped"`, `"encrypted":true`} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %s", want)
		}
	}
	secrets := map[string]string{
		"cluster key":        clusterKey,
		"gossip key":         gossipKey,
		"gossip key, base64": base64.StdEncoding.EncodeToString([]byte(gossipKey)),
		"gossip key, hex":    hex.EncodeToString([]byte(gossipKey)),
		"token A":            tokenA,
		"token B":            tokenB,
		"playback key, hex":  hex.EncodeToString(httpapi.DerivePlaybackKey(clusterKey)),
		"playback key, b64":  base64.StdEncoding.EncodeToString(httpapi.DerivePlaybackKey(clusterKey)),
	}
	for name, s := range secrets {
		if i := strings.Index(log, s); i >= 0 {
			t.Errorf("the %s is in the log: …%s…", name, log[max(i-200, 0):min(i+len(s)+50, len(log))])
		}
	}
	t.Logf("%d log lines checked", strings.Count(log, "\n"))
}

// TestGossipWrongKeyNotAccepted: two nodes with the same --gossip-key-file
// form a cluster; a third with another key is never seen by them (nor sees
// them) however long it tries; the same node restarted with the right key
// joins, which shows the check can fail.
func TestGossipWrongKeyNotAccepted(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node processes")
	}
	dir := t.TempDir()
	right := filepath.Join(dir, "right.key")
	wrong := filepath.Join(dir, "wrong.key")
	os.WriteFile(right, []byte("0123456789abcdef0123456789abcdef"), 0o600)
	os.WriteFile(wrong, []byte(base64.StdEncoding.EncodeToString([]byte("fedcba9876543210"))), 0o600)
	c := e2e.FastCluster(t, 31, 3)
	base := slices.Clone(c.Args)
	withKey := func(k string) { c.Args = append(slices.Clone(base), "--gossip-key-file", k) }

	withKey(right)
	c.StartAll(t, 2)
	c.Agree(t, []int{0, 1}, 2, 2)

	withKey(wrong)
	if err := c.Start(2); err != nil {
		t.Fatal(err)
	}
	names := func(i int) ([]string, error) {
		var v httpapi.ClusterStatus
		if err := e2e.GetJSON(c.HTTP(i)+"/api/v1/cluster", &v); err != nil {
			return nil, err
		}
		var out []string
		for _, m := range v.Members {
			out = append(out, m.Name)
		}
		return out, nil
	}
	// The outsider serves its API (so it runs and tries to join) ...
	nodetest.WaitFor(t, 30*time.Second, "the outsider's API", func() bool {
		_, err := names(2)
		return err == nil
	})
	// ... and for 10 s of join attempts nobody lets it in.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		for i := range 2 {
			got, err := names(i)
			if err != nil {
				t.Fatalf("gosty-%d: %v", i, err)
			}
			if slices.Contains(got, "gosty-2") {
				t.Fatalf("gosty-%d accepted the node with the wrong gossip key: %v", i, got)
			}
		}
		if got, err := names(2); err == nil && (len(got) != 1 || got[0] != "gosty-2") {
			t.Fatalf("the node with the wrong gossip key sees %v", got)
		}
	}
	log := c.Log(2)
	if !strings.Contains(log, "join") {
		t.Errorf("the outsider never tried to join:\n%s", e2e.Tail(log, 4000))
	}

	// The same node with the right key is a member at once.
	c.Kill(2)
	withKey(right)
	if err := c.Start(2); err != nil {
		t.Fatal(err)
	}
	v := c.Agree(t, []int{0, 1, 2}, 3, 3)
	t.Logf("with the right key: %s", e2e.Summary(v))
}

func TestClientTokenIsTheFirstOfTheFile(t *testing.T) {
	dir := t.TempDir()
	for content, want := range map[string]string{
		"tok\n":                         "tok",
		"  tok  ":                       "tok",
		"# rotated\n\nnew-tok\nold-tok": "new-tok",
		"\n# nothing\n":                 "",
	} {
		p := filepath.Join(dir, "t")
		os.WriteFile(p, []byte(content), 0o600)
		got, err := readClientToken(p)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("%q: %q, %v", content, got, err)
		}
	}
}
