package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/node/nodetest"
	"github.com/gosty/gosty/objstore/s3test"
)

// watchJob is the job JSON as the API writes it.
type watchJob = httpapi.JobView

// TestWatchBucket: three node processes watch s3://inbox/in/ (--watch).
// Two objects put there (one with a sidecar of options) become jobs; the
// leader is killed once they exist; a third object put then is taken by
// the new leader. Each object is one job exactly once (the job ID comes
// from the object, so the new leader does not submit again what the old
// one did), and every object ends in in/done/ or in/failed/ with its
// sidecar; an object whose sidecar's options are refused moves to
// in/failed/ without a job. Loopback subnet 127.0.119.x; the S3 server on 127.0.117.21+.
func TestWatchBucket(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node processes and ffmpeg")
	}
	srv := s3test.Start(t, "inbox")
	env := []string{"AWS_ACCESS_KEY_ID=" + s3test.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s3test.SecretKey,
		"AWS_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent"}
	c, _ := newCluster(t, clusterOpts{subnet: 119, size: 3, fast: true, env: env}, "--preset", "ultrafast",
		"--s3-endpoint", srv.Endpoint, "--s3-path-style", "--watch", "s3://inbox/in/",
		"--watch-options", `{"renditions":["180p@300k"]}`)
	for i := range 3 {
		if err := c.Start(i); err != nil {
			t.Fatal(err)
		}
	}
	v := agree(t, c, []int{0, 1, 2}, 3, 3)
	leader := podOf(c, v.Leader)
	clip, err := os.ReadFile(nodetest.GenClip(t, filepath.Join(t.TempDir(), "clip.mp4"), "-f", "lavfi", "-i",
		"testsrc2=size=320x180:rate=25:duration=2", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	put := func(key string, body []byte) {
		t.Helper()
		if _, err := srv.Client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("inbox"), Key: aws.String(key),
			Body: bytes.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	put("in/a.mp4.json", []byte(`{"renditions":["180p@300k"],"chunk_seconds":3}`))
	put("in/bad.mp4.json", []byte(`{"chunk_seconds":1}`)) // out of range: no job
	put("in/bad.mp4", clip)
	put("in/a.mp4", clip)
	put("in/b.mp4", clip)

	jobs := func(pod int) []watchJob {
		var l httpapi.JobList
		if err := getJSON(c.HTTP(pod)+"/api/v1/jobs?limit=100", &l); err != nil {
			return nil
		}
		return l.Jobs
	}
	nodetest.WaitFor(t, 30*time.Second, "jobs of a and b", func() bool { return len(jobs(leader)) == 2 })
	c.Kill(leader)
	var other int
	for i := range 3 {
		if i != leader {
			other = i
			break
		}
	}
	put("in/c.mp4", clip)

	list := func(prefix string) []string {
		out, err := srv.Client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("inbox"), Prefix: aws.String(prefix)})
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, o := range out.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
		return keys
	}
	var js []watchJob
	nodetest.WaitFor(t, 90*time.Second, "three finished jobs and an empty inbox", func() bool {
		js = jobs(other)
		if len(js) < 3 {
			return false
		}
		for _, j := range js {
			if j.State != "done" && j.State != "failed" && j.State != "canceled" {
				return false
			}
		}
		for _, k := range list("in/") {
			if !strings.HasPrefix(k, "in/done/") && !strings.HasPrefix(k, "in/failed/") {
				return false
			}
		}
		return true
	})
	var sources []string
	for _, j := range js {
		sources = append(sources, j.SourceURL)
		t.Logf("job %s %s %s %q", j.ID, j.SourceURL, j.State, j.Error)
		if j.SourceURL == "s3://inbox/in/a.mp4" && j.Options.ChunkSeconds != 3 {
			t.Errorf("job of a.mp4: chunk_seconds %v, want the sidecar's 3", j.Options.ChunkSeconds)
		}
	}
	slices.Sort(sources)
	if want := []string{"s3://inbox/in/a.mp4", "s3://inbox/in/b.mp4", "s3://inbox/in/c.mp4"}; !slices.Equal(sources, want) {
		t.Fatalf("jobs' sources %v, want one job each of %v", sources, want)
	}
	if moved := list("in/failed/bad.mp4"); len(moved) != 2 {
		t.Errorf("bad.mp4 (options refused) and its sidecar: %v, want both in in/failed/", moved)
	}
	// c came after the kill: the new leader took it, and it ran to done.
	moved := list("in/")
	for _, j := range js {
		name := strings.TrimPrefix(j.SourceURL, "s3://inbox/in/")
		dir := "in/done/"
		if j.State != "done" {
			dir = "in/failed/"
		}
		if !slices.Contains(moved, dir+name) {
			t.Errorf("%s (%s): not in %s: %v", name, j.State, dir, moved)
		}
		if name == "c.mp4" && j.State != "done" {
			t.Errorf("c.mp4, put after the failover: %s %q", j.State, j.Error)
		}
		if name == "a.mp4" && !slices.Contains(moved, dir+"a.mp4.json") {
			t.Errorf("the sidecar of a.mp4 did not move with it: %v", moved)
		}
	}
}
