package objstore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/gosty/gosty/objstore"
	"github.com/gosty/gosty/objstore/s3test"
)

func TestParseTarget(t *testing.T) {
	good := map[string]objstore.Target{
		"s3://media":                {Bucket: "media"},
		"s3://media/":               {Bucket: "media"},
		"s3://media/out":            {Bucket: "media", Prefix: "out/"},
		"s3://media/out/":           {Bucket: "media", Prefix: "out/"},
		"s3://my.bucket-1/a/b c/d/": {Bucket: "my.bucket-1", Prefix: "a/b c/d/"},
		"s3://123/vod/2026/":        {Bucket: "123", Prefix: "vod/2026/"},
	}
	for in, want := range good {
		got, err := objstore.ParseTarget(in)
		if err != nil || got != want {
			t.Errorf("ParseTarget(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if got.Key("j1", "master.m3u8") != want.Prefix+"j1/master.m3u8" {
			t.Errorf("%q: key %q", in, got.Key("j1", "master.m3u8"))
		}
	}
	bad := []string{"", "media", "http://media/x", "s3://", "s3:///x", "s3://ab/", "s3://Media/", "s3://a_b/",
		"s3://-media/", "s3://media-/", "s3://me..dia/", "s3://media//x/", "s3://media/a//b/", "s3://media/../x/",
		"s3://media/./x", "s3://media/x/..", "s3://media/x?y", "s3://media/x#y", "s3://media/x\\y", "s3://media/a\nb",
		"s3://" + strings.Repeat("a", 64) + "/", "s3://media/" + strings.Repeat("x", 1100)}
	for _, in := range bad {
		if got, err := objstore.ParseTarget(in); err == nil {
			t.Errorf("ParseTarget(%q) = %+v, want an error", in, got)
		}
	}
}

func TestContentTypeAndCacheControl(t *testing.T) {
	for rel, want := range map[string]string{
		"master.m3u8": "application/vnd.apple.mpegurl", "hls/720p.m3u8": "application/vnd.apple.mpegurl",
		"manifest.mpd": "application/dash+xml", "seg-0-00001.m4s": "video/iso.segment",
		"init-0.mp4": "video/mp4", "mp4/720p.mp4": "video/mp4", "subs/0-en.vtt": "text/vtt",
		"poster.jpg": "image/jpeg", "THUMB.JPG": "image/jpeg", "x.bin": "application/octet-stream",
	} {
		if got := objstore.ContentType(rel); got != want {
			t.Errorf("ContentType(%q) = %q, want %q", rel, got, want)
		}
	}
	for rel, want := range map[string]string{"master.m3u8": objstore.CacheShort, "manifest.mpd": objstore.CacheShort,
		"seg-0-00001.m4s": objstore.CacheLong, "mp4/720p.mp4": objstore.CacheLong, "poster.jpg": objstore.CacheLong} {
		if got := objstore.CacheControl(rel); got != want {
			t.Errorf("CacheControl(%q) = %q, want %q", rel, got, want)
		}
	}
}

// TestS3 puts (one small object, one multipart), reads back the headers,
// deletes a prefix, and fails clearly with wrong keys, on a real server.
func TestS3(t *testing.T) {
	srv := s3test.Start(t, "media")
	srv.Env(t, s3test.AccessKey, s3test.SecretKey)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := objstore.NewS3(ctx, objstore.Config{Endpoint: srv.Endpoint, PathStyle: true, PartSize: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	small := []byte("#EXTM3U\n")
	if err := st.Put(ctx, "media", "p/j/master.m3u8", bytes.NewReader(small), int64(len(small)),
		objstore.Meta{ContentType: objstore.ContentType("master.m3u8"), CacheControl: objstore.CacheShort}); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), (11<<20)/16) // 11 MiB: three parts
	if err := st.Put(ctx, "media", "p/j/mp4/720p.mp4", bytes.NewReader(big), int64(len(big)),
		objstore.Meta{ContentType: "video/mp4", CacheControl: objstore.CacheLong}); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string][]byte{"p/j/master.m3u8": small, "p/j/mp4/720p.mp4": big} {
		out, err := srv.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("media"), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		b, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if !bytes.Equal(b, want) {
			t.Errorf("%s: %d bytes back, want %d", key, len(b), len(want))
		}
		if ct := aws.ToString(out.ContentType); ct != objstore.ContentType(key) {
			t.Errorf("%s: Content-Type %q", key, ct)
		}
		if cc := aws.ToString(out.CacheControl); cc != objstore.CacheControl(key) {
			t.Errorf("%s: Cache-Control %q", key, cc)
		}
	}
	if got, want := st.URL("media", "p/j/master.m3u8"), srv.Endpoint+"/media/p/j/master.m3u8"; got != want {
		t.Errorf("URL = %q, want %q", got, want)
	}
	n, err := st.DeletePrefix(ctx, "media", "p/j/")
	if err != nil || n != 2 {
		t.Fatalf("DeletePrefix = %d, %v; want 2", n, err)
	}
	list, err := srv.Client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("media")})
	if err != nil || len(list.Contents) != 0 {
		t.Fatalf("after delete: %d objects, %v", len(list.Contents), err)
	}

	srv.Env(t, "AKIAWRONGWRONGWRONG", "not-the-secret")
	bad, err := objstore.NewS3(ctx, objstore.Config{Endpoint: srv.Endpoint, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	err = bad.Put(ctx, "media", "p/k/master.m3u8", bytes.NewReader(small), int64(len(small)), objstore.Meta{})
	var oe *objstore.Error
	if !errors.As(err, &oe) || oe.Code == "" || !strings.Contains(err.Error(), "s3://media/p/k/master.m3u8") ||
		!strings.Contains(err.Error(), oe.Code) || !objstore.Permanent(err) {
		t.Fatalf("wrong keys: %v (code %q); want an error naming the bucket and the S3 code", err, codeOf(oe))
	}
	if strings.Contains(err.Error(), "not-the-secret") {
		t.Fatalf("the error shows the secret: %v", err)
	}
	t.Logf("wrong keys: %v", err)
}

func codeOf(e *objstore.Error) string {
	if e == nil {
		return ""
	}
	return e.Code
}
