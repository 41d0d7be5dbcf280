package objstore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/gosty/gosty/objstore"
	"github.com/gosty/gosty/objstore/s3test"
)

func TestParseObject(t *testing.T) {
	good := map[string][2]string{
		"s3://media/in/clip.mp4": {"media", "in/clip.mp4"},
		"s3://a.b-c/x":           {"a.b-c", "x"},
	}
	for s, want := range good {
		b, k, err := objstore.ParseObject(s)
		if err != nil || b != want[0] || k != want[1] {
			t.Errorf("ParseObject(%q) = %q, %q, %v; want %v", s, b, k, err, want)
		}
	}
	for _, s := range []string{"", "http://media/x", "s3://media", "s3://media/", "s3://media/in/", "s3://Media/x",
		"s3://media/a//b", "s3://media/../x", "s3://media/a/./b", "s3://media/x?y", "s3://media/x#y", "s3://media/a\\b",
		"s3://media/a\nb", "s3://media/" + strings.Repeat("x", 1100)} {
		if _, _, err := objstore.ParseObject(s); err == nil {
			t.Errorf("ParseObject(%q) accepted", s)
		}
	}
}

// TestS3Open reads an object whole, through a connection that drops
// half-way (resumed with a ranged GetObject), and fails clearly for a
// missing key and wrong keys.
func TestS3Open(t *testing.T) {
	srv := s3test.Start(t, "media")
	srv.Env(t, s3test.AccessKey, s3test.SecretKey)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	body := bytes.Repeat([]byte("0123456789abcdef"), (2<<20)/16)
	if _, err := srv.Client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("media"), Key: aws.String("in/clip.mp4"),
		Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	var cuts atomic.Int32
	addr := s3test.Proxy(t, strings.TrimPrefix(srv.Endpoint, "http://"), 1<<20, func() bool { cuts.Add(1); return true })
	st, err := objstore.NewS3(ctx, objstore.Config{Endpoint: "http://" + addr, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	o, err := st.Open(ctx, "media", "in/clip.mp4")
	if err != nil {
		t.Fatal(err)
	}
	if o.Size() != int64(len(body)) {
		t.Fatalf("Size = %d, want %d", o.Size(), len(body))
	}
	got, err := io.ReadAll(o)
	o.Close()
	if err != nil || !bytes.Equal(got, body) || o.Got() != int64(len(body)) {
		t.Fatalf("read %d bytes (Got %d), %v; want %d", len(got), o.Got(), err, len(body))
	}
	if cuts.Load() != 1 || o.Retried() != 1 {
		t.Fatalf("cuts %d, reconnections %d; want the connection dropped once and resumed", cuts.Load(), o.Retried())
	}

	_, err = st.Open(ctx, "media", "in/gone.mp4")
	var oe *objstore.Error
	if !errors.As(err, &oe) || oe.Code != "NoSuchKey" || !strings.Contains(err.Error(), "s3://media/in/gone.mp4") {
		t.Fatalf("missing key: %v", err)
	}

	srv.Env(t, "AKIAWRONGWRONGWRONG", "not-the-secret")
	bad, err := objstore.NewS3(ctx, objstore.Config{Endpoint: srv.Endpoint, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.Open(ctx, "media", "in/clip.mp4")
	if !errors.As(err, &oe) || oe.Code == "" || !objstore.Permanent(err) || strings.Contains(err.Error(), "not-the-secret") {
		t.Fatalf("wrong keys: %v", err)
	}
}
