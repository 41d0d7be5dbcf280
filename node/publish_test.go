package node

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/objstore"
	"github.com/gosty/gosty/objstore/s3test"
)

// publishJob is the job JSON as the API writes it.
type publishJob = httpapi.JobView

func getPublishJob(t *testing.T, base, id string) publishJob {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/jobs/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var j publishJob
	if err := json.NewDecoder(resp.Body).Decode(&j); err != nil {
		t.Fatal(err)
	}
	return j
}

// waitPublish polls the job until its publish state is one of states.
func waitPublish(t *testing.T, base, id string, d time.Duration, states ...string) publishJob {
	t.Helper()
	var j publishJob
	waitFor(t, d, "job "+id+" publish "+strings.Join(states, "/"), func() bool {
		j = getPublishJob(t, base, id)
		if j.State == "failed" || j.State == "canceled" {
			t.Fatalf("job %s %s: %s", id, j.State, j.Error)
		}
		for _, s := range states {
			if j.Publish != nil && j.Publish.State == s {
				return true
			}
		}
		return false
	})
	return j
}

func listKeys(t *testing.T, c *s3.Client, bucket, prefix string) []string {
	t.Helper()
	out, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}

// TestPublishToS3 runs jobs on a node that publishes to a real S3 server
// (versitygw): a job's publish option, the node's --publish default with
// publish_expire, and "none". Every file of the job's manifest is in the
// bucket with its Content-Type and Cache-Control, ffprobe reads the HLS
// master back from the bucket's copy, the job JSON lists the remote URLs,
// the webhook fires after the upload, and at expiry the copies go.
func TestPublishToS3(t *testing.T) {
	if testing.Short() {
		t.Skip("transcodes")
	}
	srv := s3test.Start(t, "media")
	srv.Env(t, s3test.AccessKey, s3test.SecretKey)

	var mu sync.Mutex
	var hooks []publishJob
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var j publishJob
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &j); err == nil {
			mu.Lock()
			hooks = append(hooks, j)
			mu.Unlock()
		}
	}))
	defer hook.Close()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "hook.key")
	if err := os.WriteFile(keyFile, []byte("0123456789abcdef0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, filepath.Join(dir, "data"), func(c *Config) {
		c.Fast = true
		c.Publish = "s3://media/default"
		c.S3 = objstore.Config{Endpoint: srv.Endpoint, PathStyle: true}
		c.WebhookAllow = "127.0.0.1"
		c.WebhookKeyFile = keyFile
	})
	clip := genClip(t, filepath.Join(dir, "clip.mp4"), "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=3",
		"-f", "lavfi", "-i", "sine=duration=3", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest")

	a := submit(t, n.base, clip, `{"renditions":["180p@300k"],"chunk_seconds":2,"publish":"s3://media/vod/","callback_url":"`+hook.URL+`/a"}`)
	b := submit(t, n.base, clip, `{"renditions":["180p@300k"],"chunk_seconds":2,"ttl":"5s","publish_expire":true}`)
	c := submit(t, n.base, clip, `{"renditions":["180p@300k"],"chunk_seconds":2,"publish":"none"}`)

	// The job's own target.
	aj := waitPublish(t, n.base, a.ID, 60*time.Second, cluster.PublishPublished, cluster.PublishFailed)
	if aj.Publish.State != cluster.PublishPublished || aj.State != "done" {
		t.Fatalf("job a: %s, publish %+v", aj.State, aj.Publish)
	}
	prefix := "vod/" + a.ID + "/"
	if aj.Publish.Target != "s3://media/vod/" || aj.Publish.BaseURL != srv.Endpoint+"/media/"+prefix {
		t.Fatalf("publish: %+v", aj.Publish)
	}
	if aj.Outputs == nil || aj.Outputs.Published == nil || aj.Outputs.Published.HLS != srv.Endpoint+"/media/"+prefix+"master.m3u8" ||
		aj.Outputs.Published.DASH != srv.Endpoint+"/media/"+prefix+"manifest.mpd" {
		t.Fatalf("outputs: %+v", aj.Outputs)
	}
	var job cluster.Job
	n.store.FSM().Read(func(st *cluster.State) {
		r, _ := st.JobRecord(a.ID)
		job = *r
	})
	m, err := n.manifest(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	keys := listKeys(t, srv.Client, "media", prefix)
	if len(keys) != len(m.Files) || aj.Publish.Files != len(m.Files) {
		t.Fatalf("%d objects in the bucket, %d files in the manifest, %d published", len(keys), len(m.Files), aj.Publish.Files)
	}
	local := t.TempDir()
	var size int64
	for _, f := range m.Files {
		out, err := srv.Client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("media"), Key: aws.String(prefix + f.Path)})
		if err != nil {
			t.Fatalf("%s: %v", f.Path, err)
		}
		if ct, cc := aws.ToString(out.ContentType), aws.ToString(out.CacheControl); ct != objstore.ContentType(f.Path) || cc != objstore.CacheControl(f.Path) {
			t.Errorf("%s: Content-Type %q, Cache-Control %q", f.Path, ct, cc)
		}
		p := filepath.Join(local, filepath.FromSlash(f.Path))
		os.MkdirAll(filepath.Dir(p), 0o755)
		body, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if int64(len(body)) != f.Size {
			t.Errorf("%s: %d bytes in the bucket, %d in the manifest", f.Path, len(body), f.Size)
		}
		size += int64(len(body))
		os.WriteFile(p, body, 0o644)
	}
	if size != aj.Publish.Bytes {
		t.Errorf("%d bytes in the bucket, publish says %d", size, aj.Publish.Bytes)
	}
	for _, want := range []string{"master.m3u8", "manifest.mpd"} {
		if _, ok := m.File(want); !ok {
			t.Fatalf("no %s in the manifest", want)
		}
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_type,height", "-of", "json",
		filepath.Join(local, "master.m3u8")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"height": 180`) || !strings.Contains(string(out), `"audio"`) {
		t.Fatalf("ffprobe of the bucket's master.m3u8: %v\n%s", err, out)
	}
	waitFor(t, 20*time.Second, "the webhook of job a", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(hooks) > 0
	})
	mu.Lock()
	h := hooks[0]
	mu.Unlock()
	if h.ID != a.ID || h.Publish == nil || h.Publish.State != cluster.PublishPublished || h.Outputs == nil || h.Outputs.Published == nil {
		t.Fatalf("the webhook came before the upload: %+v", h)
	}

	// The node's default, deleted at expiry.
	bj := waitPublish(t, n.base, b.ID, 60*time.Second, cluster.PublishPublished, cluster.PublishFailed)
	if bj.Publish.State != cluster.PublishPublished || bj.Publish.Target != "s3://media/default/" || !bj.Publish.Expire {
		t.Fatalf("job b: %+v", bj.Publish)
	}
	if keys := listKeys(t, srv.Client, "media", "default/"+b.ID+"/"); len(keys) != bj.Publish.Files || len(keys) == 0 {
		t.Fatalf("job b: %d objects, %d published", len(keys), bj.Publish.Files)
	}
	waitPublish(t, n.base, b.ID, 30*time.Second, cluster.PublishRemoved)
	if keys := listKeys(t, srv.Client, "media", "default/"+b.ID+"/"); len(keys) != 0 {
		t.Fatalf("job b expired, %d objects left: %v", len(keys), keys)
	}

	// Opted out.
	waitJob(t, n.base, c.ID, 60*time.Second)
	if cj := getPublishJob(t, n.base, c.ID); cj.Publish != nil || cj.State != "done" {
		t.Fatalf("job c: %s publish %+v", cj.State, cj.Publish)
	}
	for _, bad := range []string{`{"publish":"s3://Bad_Bucket/"}`, `{"publish":"http://x/"}`, `{"publish":"none","publish_expire":true}`} {
		if code, body := upload(t, n.base, clip, bad); code != http.StatusBadRequest || !strings.Contains(string(body), "publish") {
			t.Errorf("options %s: %d %s", bad, code, body)
		}
	}
}

// TestPublishWrongCredentials: with keys the store does not know, the job
// is done (its files are served by the cluster) but publishing fails after
// the bounded attempts with a reason naming the bucket and the S3 error
// code, and no secret.
func TestPublishWrongCredentials(t *testing.T) {
	if testing.Short() {
		t.Skip("transcodes")
	}
	srv := s3test.Start(t, "media")
	srv.Env(t, "AKIANOTAKEYOFTHISSTORE", "wrong-secret-value")
	dir := t.TempDir()
	n := startNode(t, filepath.Join(dir, "data"), func(c *Config) {
		c.Fast = true
		c.S3 = objstore.Config{Endpoint: srv.Endpoint, PathStyle: true}
		c.PublishAttempts = 3
	})
	clip := genClip(t, filepath.Join(dir, "clip.mp4"), "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=2",
		"-c:v", "libx264", "-pix_fmt", "yuv420p")
	a := submit(t, n.base, clip, `{"renditions":["180p@300k"],"publish":"s3://media/out/"}`)
	j := waitPublish(t, n.base, a.ID, 60*time.Second, cluster.PublishFailed, cluster.PublishPublished)
	p := j.Publish
	if j.State != "done" || p.State != cluster.PublishFailed || p.Attempts != 3 {
		t.Fatalf("job %s, publish %+v", j.State, p)
	}
	if !strings.Contains(p.LastError, "s3://media/out/"+a.ID+"/") || !strings.Contains(p.LastError, "XAdminUserNotFound") ||
		strings.Contains(p.LastError, "wrong-secret-value") {
		t.Fatalf("last_error %q: want the bucket and the S3 error code, and no secret", p.LastError)
	}
	if j.Outputs == nil || j.Outputs.Published != nil {
		t.Fatalf("outputs %+v: no published URLs for a failed publish", j.Outputs)
	}
	if keys := listKeys(t, srv.Client, "media", ""); len(keys) != 0 {
		t.Fatalf("objects in the bucket: %v", keys)
	}
	t.Logf("publish failed as expected: %s", p.LastError)
}
