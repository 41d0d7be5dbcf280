package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gosty/gosty/node/egress"
	"github.com/gosty/gosty/objstore"
)

// S3 sources: source_url "s3://bucket/key" takes the URL ingest path
// (ingest.go: state ingesting, progress, --max-upload-bytes, the same
// failure handling), read with GetObject through the node's S3 settings
// (--s3-endpoint, --s3-region, --s3-path-style; credentials from the AWS
// chain, read afresh for each fetch so rotated keys are picked up). A
// dropped connection resumes with a ranged GetObject If-Match the first
// ETag (objstore.Object).
//
// --ingest-s3 lists the buckets sources may be read from ("*": any the
// credentials reach; empty: s3:// sources refused). It is a list of its
// own, and --ingest-allow does not apply: the endpoint is the operator's
// (a submitter names only a bucket and a key, never a host, so there is
// no destination to steer), while the node's credentials may reach
// buckets a submitter must not read through it (the node would turn
// them into a job anyone with the job's playback can watch). So the
// operator says which buckets, and the default is none.

// ingestS3Buckets is a parsed --ingest-s3.
type ingestS3Buckets struct {
	any     bool
	buckets []string
}

func parseIngestS3(s string) (ingestS3Buckets, error) {
	var b ingestS3Buckets
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		switch {
		case f == "":
		case f == "*":
			b.any = true
		default:
			if _, _, err := objstore.ParseObject("s3://" + f + "/x"); err != nil {
				return b, fmt.Errorf("--ingest-s3: bucket %q: %w", f, err)
			}
			b.buckets = append(b.buckets, f)
		}
	}
	return b, nil
}

func (b ingestS3Buckets) empty() bool { return !b.any && len(b.buckets) == 0 }

func (b ingestS3Buckets) admits(bucket string) bool {
	return b.any || slices.Contains(b.buckets, bucket)
}

// isS3Source reports whether a source_url names an S3 object.
func isS3Source(raw string) bool { return strings.HasPrefix(raw, "s3://") }

// checkS3Source parses an s3:// source and checks --ingest-s3.
func (n *Node) checkS3Source(raw string) (bucket, key string, err error) {
	b, err := parseIngestS3(n.cfg.IngestS3)
	if err != nil {
		return "", "", err
	}
	if b.empty() {
		return "", "", errors.New("source_url: s3:// sources are off on this node (no --ingest-s3)")
	}
	bucket, key, err = objstore.ParseObject(raw)
	if err != nil {
		return "", "", fmt.Errorf("source_url: %w", err)
	}
	if !b.admits(bucket) {
		return "", "", fmt.Errorf("source_url: bucket %q is not in this node's --ingest-s3", bucket)
	}
	return bucket, key, nil
}

// ingestSource is a fetch under way: an http(s) egress.Source or an S3
// objstore.Object.
type ingestSource interface {
	Read([]byte) (int, error)
	Close() error
	Size() int64
	Got() int64
}

// s3Source is an object read bounded by --max-upload-bytes.
type s3Source struct {
	*objstore.Object
	max int64
}

func (s s3Source) Read(p []byte) (int, error) {
	n, err := s.Object.Read(p)
	if s.max > 0 && s.Got() > s.max {
		return 0, &egress.TooLargeError{Limit: s.max}
	}
	return n, err
}

// openS3 opens an s3:// source with a client made for this fetch.
func (g *ingester) openS3(ctx context.Context, raw string) (ingestSource, error) {
	bucket, key, err := objstore.ParseObject(raw)
	if err != nil {
		return nil, &egress.FetchError{Reason: "source_url: " + err.Error()}
	}
	st, err := objstore.NewS3(ctx, g.n.cfg.S3)
	if err != nil {
		return nil, &egress.FetchError{Reason: "reading the source from S3: " + err.Error()}
	}
	o, err := st.Open(ctx, bucket, key)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &egress.FetchError{Reason: s3Reason(err)}
	}
	if max := g.n.cfg.MaxUploadBytes; max > 0 && o.Size() > max {
		o.Close()
		return nil, &egress.TooLargeError{Limit: max, Size: o.Size()}
	}
	return s3Source{Object: o, max: g.n.cfg.MaxUploadBytes}, nil
}

// s3Reason is the job's error for a failed GetObject: the S3 error code
// named (objstore.Explain; never a credential), with a hint for the usual
// causes.
func s3Reason(err error) string {
	var e *objstore.Error
	if !errors.As(err, &e) {
		return "reading the source from S3: " + err.Error()
	}
	switch {
	case e.Code == "NoSuchKey" || e.Code == "NotFound":
		return "no such key " + e.Where + " (" + e.Code + ")"
	case objstore.Permanent(err): // before a 404: versitygw answers an unknown key id with one
		return "reading the source from S3 failed: " + err.Error() + " (check the node's S3 credentials, the bucket and its permissions)"
	}
	return "reading the source from S3 failed: " + err.Error()
}
