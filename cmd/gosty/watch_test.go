package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/node/nodetest"
	"github.com/gosty/gosty/objstore/s3test"
)

// watchJob is the job JSON as the API writes it.
type watchJob = httpapi.JobView

// TestWatchBucket: three node processes watch s3://inbox/in/ (--watch),
// reading the bucket through a proxy that holds the first transfer half-way.
// Two objects put there (one with a sidecar of options) become jobs; the
// leader is killed while it fetches one of them, and a third object is put
// then. The new leader takes the held fetch over and takes the third
// object: each object is one job exactly once (the job ID comes from the
// object, so the new leader does not submit again what the old one did),
// all three run to done, and every object ends in in/done/ or in/failed/
// with its sidecar; an object whose sidecar's options are refused is one
// failed job with the reason and moves to in/failed/. Loopback subnet
// 127.0.119.x; the S3 server on 127.0.117.21+.
func TestWatchBucket(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node processes and ffmpeg")
	}
	srv := s3test.Start(t, "inbox")
	env := e2e.S3Env()
	// A noisy clip of about 1.8 MB: the first answer to pass 1 MiB is a
	// source being fetched (listings and sidecars are a few KiB).
	clip, err := os.ReadFile(nodetest.GenClip(t, filepath.Join(t.TempDir(), "clip.mp4"), "-f", "lavfi", "-i",
		"testsrc2=size=320x180:rate=25:duration=2", "-vf", "noise=alls=60:allf=t", "-c:v", "libx264", "-preset", "ultrafast",
		"-pix_fmt", "yuv420p"))
	if err != nil {
		t.Fatal(err)
	}
	held, release := make(chan struct{}), make(chan struct{})
	proxy := s3test.Proxy(t, strings.TrimPrefix(srv.Endpoint, "http://"), 1<<20, func() bool {
		close(held)
		<-release
		return false
	})
	var releaseOnce sync.Once
	defer releaseOnce.Do(func() { close(release) })
	c := e2e.New(t, e2e.Opts{Subnet: 119, Size: 3, Fast: true, Env: env}, "--preset", "ultrafast",
		"--s3-endpoint", "http://"+proxy, "--s3-path-style", "--watch", "s3://inbox/in/",
		"--watch-options", `{"renditions":["180p@300k"]}`)
	c.StartAll(t, 3)
	v := c.Agree(t, []int{0, 1, 2}, 3, 3)
	leader := c.Ordinal(v.Leader)
	ctx := context.Background()
	put := func(key string, body []byte) {
		t.Helper()
		if _, err := srv.Client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("inbox"), Key: aws.String(key),
			Body: bytes.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	put("in/a.mp4.json", []byte(`{"renditions":["180p@300k"],"chunk_seconds":3}`))
	put("in/bad.mp4.json", []byte(`{"chunk_seconds":1}`)) // out of range: a failed job
	put("in/bad.mp4", clip)
	put("in/a.mp4", clip)
	put("in/b.mp4", clip)

	jobs := func(pod int) []watchJob {
		var l httpapi.JobList
		if err := e2e.GetJSON(c.HTTP(pod)+"/api/v1/jobs?limit=100", &l); err != nil {
			return nil
		}
		return l.Jobs
	}
	nodetest.WaitFor(t, 30*time.Second, "jobs of a, b and bad, and a fetch held", func() bool {
		select {
		case <-held:
			return len(jobs(leader)) == 3
		default:
			return false
		}
	})
	fetching := 0
	for _, j := range jobs(leader) {
		if j.State == "ingesting" {
			fetching++
		}
	}
	if fetching == 0 {
		t.Fatalf("no job is ingesting while the proxy holds a transfer: %+v", jobs(leader))
	}
	c.Kill(leader)
	releaseOnce.Do(func() { close(release) })
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
	nodetest.WaitFor(t, 90*time.Second, "four finished jobs and an empty inbox", func() bool {
		js = jobs(other)
		if len(js) < 4 {
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
		switch name := strings.TrimPrefix(j.SourceURL, "s3://inbox/in/"); {
		case name == "bad.mp4":
			if j.State != "failed" || !strings.Contains(j.Error, "chunk_seconds") {
				t.Errorf("bad.mp4 (options refused): %s %q, want failed naming chunk_seconds", j.State, j.Error)
			}
		case j.State != "done":
			// a or b was being fetched by the killed leader: taken over.
			t.Errorf("%s: %s %q, want done", name, j.State, j.Error)
		case name == "a.mp4" && j.Options.ChunkSeconds != 3:
			t.Errorf("job of a.mp4: chunk_seconds %v, want the sidecar's 3", j.Options.ChunkSeconds)
		}
	}
	slices.Sort(sources)
	if want := []string{"s3://inbox/in/a.mp4", "s3://inbox/in/b.mp4", "s3://inbox/in/bad.mp4", "s3://inbox/in/c.mp4"}; !slices.Equal(sources, want) {
		t.Fatalf("jobs' sources %v, want one job each of %v", sources, want)
	}
	moved := list("in/")
	for _, want := range []string{"in/done/a.mp4", "in/done/a.mp4.json", "in/done/b.mp4", "in/done/c.mp4",
		"in/failed/bad.mp4", "in/failed/bad.mp4.json"} {
		if !slices.Contains(moved, want) {
			t.Errorf("%s missing: %v", want, moved)
		}
	}
}
