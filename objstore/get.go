package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// ParseObject reads an object's address, "s3://bucket/key": the bucket
// follows S3's naming rules (as ParseTarget's), the key is a clean
// relative path (no "." or ".." or empty segment, no trailing slash) of at
// most MaxTargetLen characters without control characters, "?", "#" or
// "\" (so that the address reads the same as a URL: nothing of it is taken
// for a query).
func ParseObject(s string) (bucket, key string, err error) {
	if len(s) > MaxTargetLen {
		return "", "", fmt.Errorf("s3 source is longer than %d characters", MaxTargetLen)
	}
	rest, ok := strings.CutPrefix(s, "s3://")
	if !ok {
		return "", "", fmt.Errorf("s3 source %q: want s3://bucket/key", s)
	}
	bucket, key, _ = strings.Cut(rest, "/")
	if err := checkBucket(bucket); err != nil {
		return "", "", fmt.Errorf("s3 source %q: %w", s, err)
	}
	if key == "" || strings.HasSuffix(key, "/") {
		return "", "", fmt.Errorf("s3 source %q: want s3://bucket/key, the key of one object", s)
	}
	if strings.ContainsAny(key, "?#\\") {
		return "", "", fmt.Errorf("s3 source %q: the key may not contain ? # or \\", s)
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f {
			return "", "", fmt.Errorf("s3 source %q: control character in the key", s)
		}
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", "", fmt.Errorf("s3 source %q: empty, . or .. segment in the key", s)
		}
	}
	if path.Clean(key) != key {
		return "", "", fmt.Errorf("s3 source %q: the key is not a clean path", s)
	}
	return bucket, key, nil
}

// Object is an object being read (GetObject): an io.ReadCloser that
// resumes after a dropped connection with a ranged GetObject from the
// bytes read so far, If-Match the first answer's ETag (an object replaced
// meanwhile fails the read rather than splicing two versions), up to
// Retries times. Size is the object's length, Got the bytes read so far
// (safe from any goroutine).
type Object struct {
	s       *S3
	ctx     context.Context
	bucket  string
	key     string
	size    int64
	etag    string
	body    io.ReadCloser
	retries int
	err     error

	// Retries bounds reconnections (Open sets 5); Backoff is the wait
	// before the first, doubling (Open sets 200 ms).
	Retries int
	Backoff time.Duration

	mu  sync.Mutex
	got int64
}

// Open starts reading an object. Errors name the bucket, the key and the
// service's error code (Explain); a missing object is an *Error with Code
// "NoSuchKey".
func (s *S3) Open(ctx context.Context, bucket, key string) (*Object, error) {
	o := &Object{s: s, ctx: ctx, bucket: bucket, key: key, size: -1, Retries: 5, Backoff: 200 * time.Millisecond}
	if err := o.connect(0); err != nil {
		return nil, err
	}
	return o, nil
}

// Size is the object's length (-1: the service did not say).
func (o *Object) Size() int64 { return o.size }

// ETag is the object's ETag as the first answer gave it.
func (o *Object) ETag() string { return o.etag }

// Got is the bytes read so far.
func (o *Object) Got() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.got
}

func (o *Object) connect(off int64) error {
	in := &s3.GetObjectInput{Bucket: aws.String(o.bucket), Key: aws.String(o.key)}
	if off > 0 {
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", off))
		if o.etag != "" {
			in.IfMatch = aws.String(o.etag)
		}
	}
	out, err := o.s.client.GetObject(o.ctx, in)
	if err != nil {
		if o.ctx.Err() != nil {
			return o.ctx.Err()
		}
		var e *Error
		if err = Explain("get", o.bucket, o.key, err); errors.As(err, &e) && off > 0 && e.Code == "PreconditionFailed" {
			return &Error{Op: "get", Where: e.Where, Code: e.Code, Status: e.Status,
				err: fmt.Errorf("s3 get %s: the object changed while it was read (%w)", e.Where, err)}
		}
		return err
	}
	if off == 0 {
		if out.ContentLength != nil {
			o.size = *out.ContentLength
		}
		o.etag = aws.ToString(out.ETag)
	}
	o.body = out.Body
	return nil
}

// Read reads the object, reconnecting from where it stopped when the
// connection drops.
func (o *Object) Read(p []byte) (int, error) {
	if o.err != nil {
		return 0, o.err
	}
	n, err := o.read(p)
	if err != nil && err != io.EOF {
		o.err = err // sticky: a failed reconnection leaves no body to read
	}
	return n, err
}

func (o *Object) read(p []byte) (int, error) {
	for {
		n, err := o.body.Read(p)
		if n > 0 {
			o.mu.Lock()
			o.got += int64(n)
			got := o.got
			o.mu.Unlock()
			if o.size >= 0 && got > o.size {
				return 0, fmt.Errorf("s3 get s3://%s/%s: more bytes than the object's length (%d)", o.bucket, o.key, o.size)
			}
			return n, nil
		}
		if err == nil {
			continue
		}
		got := o.Got()
		if err == io.EOF {
			if o.size < 0 || got == o.size {
				return 0, io.EOF
			}
			err = io.ErrUnexpectedEOF // cut short without an error
		}
		if o.ctx.Err() != nil {
			return 0, o.ctx.Err()
		}
		if o.retries >= o.Retries {
			return 0, fmt.Errorf("s3 get s3://%s/%s: the connection dropped at %d bytes, %d times: %w", o.bucket, o.key, got, o.retries+1, err)
		}
		o.retries++
		o.body.Close()
		o.body = nil
		select {
		case <-o.ctx.Done():
			return 0, o.ctx.Err()
		case <-time.After(o.Backoff << (o.retries - 1)):
		}
		if err := o.connect(got); err != nil {
			return 0, err
		}
	}
}

// Retried is how many times the read reconnected.
func (o *Object) Retried() int { return o.retries }

// Close ends the read.
func (o *Object) Close() error {
	if o.body != nil {
		err := o.body.Close()
		o.body = nil
		return err
	}
	return nil
}
