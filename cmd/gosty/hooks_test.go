package main

import (
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/node/nodetest"
	"github.com/gosty/gosty/node/webhook"
)

// hookReceiver is a webhook endpoint on loopback that answers 503 until
// told to accept, and counts the deliveries it acknowledged with a 2xx.
type hookReceiver struct {
	key    []byte
	accept atomic.Bool

	mu      sync.Mutex
	seen    int      // every request
	acked   []string // Gosty-Delivery of each valid delivery answered 2xx
	invalid []string // why a request was not a valid signed delivery
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seen++
	ts := r.Header.Get(webhook.HeaderTimestamp)
	want := webhook.Sign(h.key, ts, body)
	if r.Method != http.MethodPost || !hmac.Equal([]byte(want), []byte(r.Header.Get(webhook.HeaderSignature))) {
		h.invalid = append(h.invalid, "bad signature or method")
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		h.invalid = append(h.invalid, "stale timestamp "+ts)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var j struct{ ID, State string }
	if json.Unmarshal(body, &j) != nil || j.ID != r.Header.Get(webhook.HeaderDelivery) || j.State != "done" {
		h.invalid = append(h.invalid, "body does not match the delivery: "+string(body[:min(len(body), 200)]))
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if !h.accept.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	h.acked = append(h.acked, j.ID)
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookReceiver) counts() (seen int, acked []string, invalid []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seen, append([]string(nil), h.acked...), append([]string(nil), h.invalid...)
}

// TestWebhookExactlyOnceAcrossLeaderKill: a job with a callback finishes
// while the receiver answers 503, the leader is SIGKILLed with the delivery
// still pending, then the receiver accepts: it acknowledges exactly one
// validly signed delivery, and the job JSON says delivered.
func TestWebhookExactlyOnceAcrossLeaderKill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node processes and ffmpeg")
	}
	start := time.Now()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "webhook.key")
	key := "webhook-test-key-0123456789"
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.71.200:0")
	if err != nil {
		t.Fatal(err)
	}
	recv := &hookReceiver{key: []byte(key)}
	srv := &http.Server{Handler: recv}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	c := e2e.FastCluster(t, 71, 3, "--slots", "2", "--webhook-allow", "127.0.71.200", "--webhook-key-file", keyFile)
	c.StartAll(t, 3)
	v := c.Agree(t, []int{0, 1, 2}, 3, 3)
	leader := c.Ordinal(v.Leader)
	follower := (leader + 1) % 3

	src := filepath.Join(dir, "clip.mp4")
	nodetest.GenClip(t, src, "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=4",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p")

	// A callback outside the allow list is refused at submit.
	code, body := nodetest.Upload(t, c.HTTP(follower), src, `{"callback_url":"http://127.0.71.201:9/hook"}`)
	if code != http.StatusBadRequest || !strings.Contains(string(body), "--webhook-allow") {
		t.Fatalf("callback outside the allow list: %d %s", code, body)
	}

	hook := fmt.Sprintf("http://%s/hook", ln.Addr())
	id := e2e.Upload(t, c.HTTP(follower), src, fmt.Sprintf(`{"renditions":["180p@300k"],"chunk_seconds":2,"callback_url":%q}`, hook))
	nodetest.WaitFor(t, 90*time.Second, "the job done with a refused delivery", func() bool {
		var j httpapi.JobView
		return e2e.GetJSON(c.HTTP(follower)+"/api/v1/jobs/"+id, &j) == nil && j.State == "done" &&
			j.Webhook != nil && j.Webhook.State == "pending" && j.Webhook.Attempts >= 1
	})
	old := c.Name(leader)
	c.Kill(leader)
	var survivors []int
	for i := range 3 {
		if i != leader {
			survivors = append(survivors, i)
		}
	}
	c.WaitNewLeader(t, survivors[0], old, 15*time.Second)
	recv.accept.Store(true)
	var final httpapi.JobView
	nodetest.WaitFor(t, 45*time.Second, "the delivery recorded", func() bool {
		final = httpapi.JobView{}
		return e2e.GetJSON(c.HTTP(survivors[0])+"/api/v1/jobs/"+id, &final) == nil &&
			final.Webhook != nil && final.Webhook.State == "delivered"
	})
	time.Sleep(3 * time.Second) // room for a duplicate to show up
	seen, acked, invalid := recv.counts()
	if len(invalid) > 0 {
		t.Fatalf("invalid deliveries: %q", invalid)
	}
	if len(acked) != 1 || acked[0] != id {
		t.Fatalf("acknowledged deliveries %q, want exactly one for %s", acked, id)
	}
	t.Logf("%d requests, 1 acknowledged after %d attempts; test took %v", seen, final.Webhook.Attempts, time.Since(start).Round(time.Second))
}
