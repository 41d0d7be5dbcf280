package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/node/nodetest"
	"github.com/gosty/gosty/objstore/s3test"
)

// TestPublishFlags: a node process started with --publish, --s3-endpoint
// and --s3-path-style (keys in the AWS environment variables) publishes
// what `gosty submit --publish` sends to that target, and a plain upload
// to its default; with --ingest-s3, `gosty submit --url s3://...` reads
// its source from the bucket. Loopback subnet 127.0.117.x: the node on .1, the S3
// server on .21 and up.
func TestPublishFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a node process and ffmpeg")
	}
	srv := s3test.Start(t, "media")
	env := e2e.S3Env()
	c := e2e.New(t, e2e.Opts{Subnet: 117, Size: 1, Fast: true, Env: env}, "--preset", "ultrafast",
		"--publish", "s3://media/flags/", "--s3-endpoint", srv.Endpoint, "--s3-path-style", "--s3-region", "us-east-1",
		"--ingest-s3", "media")
	if err := c.Start(0); err != nil {
		t.Fatal(err)
	}
	server := c.HTTP(0)
	nodetest.WaitReady(t, server, time.Minute)
	clip := nodetest.GenClip(t, filepath.Join(t.TempDir(), "clip.mp4"), "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=2",
		"-c:v", "libx264", "-pix_fmt", "yuv420p")

	stdout, stderr, code := gosty(t, "submit", "--server", server, "--wait", "--output", "json",
		"--renditions", "180p@300k", "--publish", "s3://media/cli/", clip)
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	var out httpapi.JobList
	if err := json.Unmarshal([]byte(stdout), &out); err != nil || len(out.Jobs) != 1 {
		t.Fatalf("stdout: %v\n%s", err, stdout)
	}
	viaCLI := out.Jobs[0].ID
	code2, body := nodetest.Upload(t, server, clip, `{"renditions":["180p@300k"]}`)
	if code2 != http.StatusCreated {
		t.Fatalf("upload: %d %s", code2, body)
	}
	var plain httpapi.JobView
	json.Unmarshal(body, &plain)

	for id, prefix := range map[string]string{viaCLI: "cli/", plain.ID: "flags/"} {
		j := e2e.WaitJob(t, time.Minute, "job "+id+" published", "", id, func(j httpapi.JobView) bool {
			return j.Publish != nil && (j.Publish.State == "published" || j.Publish.State == "failed")
		}, server)
		if j.Publish.State != "published" || j.Publish.Target != "s3://media/"+prefix {
			t.Fatalf("job %s: publish %+v", id, *j.Publish)
		}
		list, err := srv.Client.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String("media"),
			Prefix: aws.String(prefix + id + "/")})
		if err != nil || len(list.Contents) != j.Publish.Files || j.Publish.Files == 0 {
			t.Fatalf("job %s: %d objects under %s, %d published (%v)", id, len(list.Contents), prefix, j.Publish.Files, err)
		}
	}

	// An s3:// source through the CLI.
	b, err := os.ReadFile(clip)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("media"),
		Key: aws.String("in/clip.mp4"), Body: bytes.NewReader(b)}); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code = gosty(t, "submit", "--server", server, "--wait", "--output", "json",
		"--renditions", "180p@300k", "--publish", "none", "--url", "s3://media/in/clip.mp4")
	out = httpapi.JobList{}
	if err := json.Unmarshal([]byte(stdout), &out); code != 0 || err != nil || len(out.Jobs) != 1 || out.Jobs[0].State != "done" {
		t.Fatalf("submit --url s3://: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
}
