package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Listed is an object of a listing.
type Listed struct {
	Key  string
	ETag string
	Size int64
}

// ListPage lists one page (at most max keys) of the objects directly
// under prefix (not in its sub-"folders"), from token on ("": the start).
// next is "" after the last page.
func (s *S3) ListPage(ctx context.Context, bucket, prefix, token string, max int32) (objs []Listed, next string, err error) {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix), Delimiter: aws.String("/"),
		MaxKeys: aws.Int32(max)}
	if token != "" {
		in.ContinuationToken = aws.String(token)
	}
	out, err := s.client.ListObjectsV2(ctx, in)
	if err != nil {
		return nil, "", Explain("list", bucket, prefix, err)
	}
	for _, o := range out.Contents {
		objs = append(objs, Listed{Key: aws.ToString(o.Key), ETag: aws.ToString(o.ETag), Size: aws.ToInt64(o.Size)})
	}
	if aws.ToBool(out.IsTruncated) {
		next = aws.ToString(out.NextContinuationToken)
	}
	return objs, next, nil
}

// ReadSmall reads a whole object of at most limit bytes; found is false
// when there is no such key.
func (s *S3) ReadSmall(ctx context.Context, bucket, key string, limit int64) (b []byte, found bool, err error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		err = Explain("get", bucket, key, err)
		if e := (*Error)(nil); asError(err, &e) && (e.Code == "NoSuchKey" || e.Code == "NotFound") {
			return nil, false, nil
		}
		return nil, false, err
	}
	defer out.Body.Close()
	b, err = io.ReadAll(io.LimitReader(out.Body, limit+1))
	if err != nil {
		return nil, true, fmt.Errorf("s3 get s3://%s/%s: %w", bucket, key, err)
	}
	if int64(len(b)) > limit {
		return nil, true, fmt.Errorf("s3 get s3://%s/%s: more than %d bytes", bucket, key, limit)
	}
	return b, true, nil
}

// Move copies an object to dst in the same bucket and deletes it (a
// missing source is no error: an earlier move got there).
func (s *S3) Move(ctx context.Context, bucket, src, dst string) error {
	_, err := s.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String(dst),
		CopySource: aws.String(url.PathEscape(bucket) + "/" + escapeKey(src))})
	if err != nil {
		err = Explain("copy", bucket, src, err)
		if e := (*Error)(nil); asError(err, &e) && (e.Code == "NoSuchKey" || e.Code == "NotFound") {
			return nil
		}
		return err
	}
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(src)}); err != nil {
		return Explain("delete", bucket, src, err)
	}
	return nil
}

func asError(err error, e **Error) bool { return errors.As(err, e) }
