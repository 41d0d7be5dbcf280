package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// Config says which S3-compatible service to talk to. Credentials are not
// here: they come from the standard AWS chain (AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY, AWS_PROFILE and the shared files,
// AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN for IRSA and workload
// identity, then the instance or container role).
type Config struct {
	Endpoint  string // "" for AWS itself; e.g. http://127.0.0.1:7070, https://storage.googleapis.com
	Region    string // "" reads AWS_REGION, else us-east-1
	PathStyle bool   // address buckets by path (most non-AWS stores)
	// PartSize is the multipart part size (0: 8 MiB); files larger than
	// twice that go up in parts, Concurrency (0: 2) parts at a time, each
	// part buffered when the body cannot be read at an offset (a stream
	// from a peer): PartSize × Concurrency bytes per upload at most.
	PartSize    int64
	Concurrency int
}

// S3 is a Store on an S3-compatible service.
type S3 struct {
	cfg    Config
	client *s3.Client
	tm     *transfermanager.Client
	region string
}

// NewS3 loads the credential chain and makes a client. It does not reach
// the service: a wrong key shows on the first request.
func NewS3(ctx context.Context, c Config) (*S3, error) {
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("s3 endpoint %q: want http(s)://host[:port]", c.Endpoint)
		}
	}
	opts := []func(*config.LoadOptions) error{}
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	}
	ac, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: load the AWS configuration: %w", err)
	}
	if ac.Region == "" {
		ac.Region = "us-east-1"
	}
	client := s3.NewFromConfig(ac, func(o *s3.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(strings.TrimSuffix(c.Endpoint, "/"))
		}
		o.UsePathStyle = c.PathStyle
		// Checksums only where the API requires them: many S3-compatible
		// stores do not know the newer default ones.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	part := c.PartSize
	if part <= 0 {
		part = 8 << 20
	}
	conc := c.Concurrency
	if conc <= 0 {
		conc = 2
	}
	tm := transfermanager.New(client, func(o *transfermanager.Options) {
		o.PartSizeBytes = part
		o.MultipartUploadThreshold = 2 * part
		o.Concurrency = conc
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	})
	return &S3{cfg: c, client: client, tm: tm, region: ac.Region}, nil
}

// Client is the underlying SDK client (tests list and read with it).
func (s *S3) Client() *s3.Client { return s.client }

// Put uploads one object, in parts when it is large.
func (s *S3) Put(ctx context.Context, bucket, key string, body io.Reader, size int64, meta Meta) error {
	in := &transfermanager.UploadObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: body,
	}
	if size >= 0 {
		in.ContentLength = aws.Int64(size)
	}
	if meta.ContentType != "" {
		in.ContentType = aws.String(meta.ContentType)
	}
	if meta.CacheControl != "" {
		in.CacheControl = aws.String(meta.CacheControl)
	}
	if _, err := s.tm.UploadObject(ctx, in); err != nil {
		return Explain("put", bucket, key, err)
	}
	return nil
}

// DeletePrefix deletes every object under prefix, 1000 per request.
func (s *S3) DeletePrefix(ctx context.Context, bucket, prefix string) (int, error) {
	n := 0
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return n, Explain("list", bucket, prefix, err)
		}
		if len(page.Contents) == 0 {
			continue
		}
		ids := make([]types.ObjectIdentifier, 0, len(page.Contents))
		for _, o := range page.Contents {
			ids = append(ids, types.ObjectIdentifier{Key: o.Key})
		}
		out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket),
			Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)}})
		if err != nil {
			return n, Explain("delete", bucket, prefix, err)
		}
		if len(out.Errors) > 0 {
			e := out.Errors[0]
			return n, fmt.Errorf("s3 delete s3://%s/%s: %s: %s (%d of %d objects refused)", bucket, aws.ToString(e.Key),
				aws.ToString(e.Code), aws.ToString(e.Message), len(out.Errors), len(ids))
		}
		n += len(ids)
	}
	return n, nil
}

// URL is the object's address: path style on the endpoint, virtual-hosted
// otherwise (AWS's regional endpoint when no endpoint is set).
func (s *S3) URL(bucket, key string) string {
	esc := escapeKey(key)
	if s.cfg.Endpoint == "" {
		return "https://" + bucket + ".s3." + s.region + ".amazonaws.com/" + esc
	}
	u, _ := url.Parse(strings.TrimSuffix(s.cfg.Endpoint, "/"))
	if s.cfg.PathStyle {
		return u.Scheme + "://" + u.Host + strings.TrimSuffix(u.Path, "/") + "/" + bucket + "/" + esc
	}
	return u.Scheme + "://" + bucket + "." + u.Host + strings.TrimSuffix(u.Path, "/") + "/" + esc
}

func escapeKey(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// Explain turns an SDK error into one that names the bucket, the key and
// the service's error code ("s3 put s3://media/jobs/x/master.m3u8:
// InvalidAccessKeyId (HTTP 403): ..."), without any credential.
func Explain(op, bucket, key string, err error) error {
	if err == nil {
		return nil
	}
	where := "s3://" + bucket + "/" + key
	var ae smithy.APIError
	if errors.As(err, &ae) {
		status, code := "", 0
		var re interface{ HTTPStatusCode() int }
		if errors.As(err, &re) && re.HTTPStatusCode() != 0 {
			code = re.HTTPStatusCode()
			status = fmt.Sprintf(" (HTTP %d %s)", code, http.StatusText(code))
		}
		msg := ae.ErrorMessage()
		if msg == "" {
			msg = "no message"
		}
		return &Error{Op: op, Where: where, Code: ae.ErrorCode(), Status: code, err: fmt.Errorf("s3 %s %s: %s%s: %s", op, where, ae.ErrorCode(), status, msg)}
	}
	return &Error{Op: op, Where: where, err: fmt.Errorf("s3 %s %s: %w", op, where, err)}
}

// Error is a failed request, with the service's error code when it gave
// one.
type Error struct {
	Op, Where, Code string
	Status          int // HTTP status, 0 when none came back
	err             error
}

func (e *Error) Error() string { return e.err.Error() }
func (e *Error) Unwrap() error { return e.err }

// Permanent reports whether retrying err cannot help without an operator
// (wrong credentials, a missing bucket, no permission). The publisher
// still retries such failures (credentials may be fixed meanwhile) and
// says so in its log.
func Permanent(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code {
	case "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "NoSuchBucket", "InvalidBucketName",
		"XAdminUserNotFound": // versitygw's word for an unknown access key
		return true
	}
	return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
}
