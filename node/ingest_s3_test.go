package node

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/objstore"
	"github.com/gosty/gosty/objstore/s3test"
)

// TestS3Ingest: an s3://bucket/key source on a real S3 server (versitygw)
// is read while the job shows ingesting with progress (bytes / object
// size), then runs to done, on a node without --ingest-allow; a bucket
// not in --ingest-s3 and a malformed address are 400; a missing key, an
// object over --max-upload-bytes and wrong credentials fail the job with
// a reason that names the cause (and never the secret).
func TestS3Ingest(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	srv := s3test.Start(t, "inbox")
	srv.Env(t, s3test.AccessKey, s3test.SecretKey)
	dir := t.TempDir()
	clip, err := os.ReadFile(genClip(t, filepath.Join(dir, "clip.mp4"), "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=2",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for key, body := range map[string][]byte{"in/clip.mp4": clip, "in/big.mp4": make([]byte, 3<<20)} {
		if _, err := srv.Client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("inbox"), Key: aws.String(key),
			Body: bytes.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	gate := make(chan struct{})
	proxy := s3test.Proxy(t, strings.TrimPrefix(srv.Endpoint, "http://"), int64(len(clip)/2), func() bool { <-gate; return false })
	n := startNode(t, filepath.Join(dir, "data"), func(c *Config) {
		c.IngestS3 = "inbox"
		c.S3 = objstore.Config{Endpoint: "http://" + proxy, PathStyle: true}
		c.MaxUploadBytes = 2 << 20
	})
	heldIngest(t, n, "s3://inbox/in/clip.mp4", "s3://inbox/in/clip.mp4", func() { close(gate) })

	// Refused up front.
	for _, u := range []string{"s3://other/in/clip.mp4", "s3://inbox/in/", "s3://inbox/a/../b.mp4"} {
		if code, body := postSource(t, n.base, u, ""); code != http.StatusBadRequest || !strings.Contains(string(body), "source_url") {
			t.Errorf("%s: %d %s", u, code, body)
		}
	}
	// Failed with a reason.
	var j apiJob
	failed := func(u, want string) string {
		t.Helper()
		code, body := postSource(t, n.base, u, "")
		if code != http.StatusAccepted {
			t.Fatalf("%s: %d %s", u, code, body)
		}
		json.Unmarshal(body, &j)
		got := waitJob(t, n.base, j.ID, 30*time.Second)
		if got.State != "failed" || !strings.Contains(got.Error, want) {
			t.Errorf("%s: %s %q, want failed with %q", u, got.State, got.Error, want)
		}
		return got.Error
	}
	failed("s3://inbox/in/gone.mp4", "no such key s3://inbox/in/gone.mp4")
	failed("s3://inbox/in/big.mp4", "--max-upload-bytes")
	// Credentials are read for each fetch: wrong ones now.
	srv.Env(t, "AKIAWRONGWRONGWRONG", "not-the-secret")
	reason := failed("s3://inbox/in/clip.mp4", "check the node's S3 credentials")
	if strings.Contains(reason, "not-the-secret") || !strings.Contains(reason, "s3://inbox/in/clip.mp4") {
		t.Errorf("wrong keys: %q", reason)
	}
	t.Logf("wrong keys: %s", reason)
}

// Without --ingest-s3 an s3:// source is refused, naming the flag, even
// with --ingest-allow set.
func TestS3IngestOff(t *testing.T) {
	n := startNode(t, t.TempDir(), func(c *Config) { c.IngestAllow = "127.0.0.1" })
	code, body := postSource(t, n.base, "s3://inbox/in/clip.mp4", "")
	if code != http.StatusBadRequest || !strings.Contains(string(body), "--ingest-s3") {
		t.Fatalf("%d %s", code, body)
	}
}

// A watched object's job ID is a valid job ID, the same for the same
// object and another for another key or ETag.
func TestWatchJobID(t *testing.T) {
	a := watchJobID("inbox", "in/a.mp4", `"e1"`)
	if !cluster.ValidJobID(a) || a != watchJobID("inbox", "in/a.mp4", `"e1"`) {
		t.Fatalf("watchJobID = %q", a)
	}
	for _, b := range []string{watchJobID("inbox", "in/b.mp4", `"e1"`), watchJobID("inbox", "in/a.mp4", `"e2"`), watchJobID("other", "in/a.mp4", `"e1"`)} {
		if b == a {
			t.Fatalf("two objects share the job ID %q", a)
		}
	}
}
