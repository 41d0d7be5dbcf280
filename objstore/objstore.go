// Package objstore is gosty's way out to S3-compatible object storage: the
// publish target (s3://bucket/prefix/), the Content-Type and Cache-Control
// of each published file, and a Store that uploads and deletes objects.
// S3 talks to any S3-compatible store through aws-sdk-go-v2 (signing,
// multipart uploads and the standard credential chain are the SDK's); Mem is
// an in-memory Store for unit tests.
//
// Credentials never pass through this package's values: the SDK reads them
// from the environment, the shared files or a web identity token (IRSA,
// workload identity) when a Store is made, so they never reach the job log
// or the job JSON.
package objstore

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// Meta is an object's headers.
type Meta struct {
	ContentType  string
	CacheControl string
}

// Target is where a job's files are published: every file of job J goes to
// Bucket at Prefix + J + "/" + its relative path.
type Target struct {
	Bucket string
	Prefix string // "" or ending in "/"
}

// String is the target in its s3:// form.
func (t Target) String() string { return "s3://" + t.Bucket + "/" + t.Prefix }

// Key is the object key of a job's file.
func (t Target) Key(jobID, rel string) string { return t.Prefix + jobID + "/" + rel }

// JobPrefix is the key prefix of every file of a job.
func (t Target) JobPrefix(jobID string) string { return t.Prefix + jobID + "/" }

// MaxTargetLen bounds a target's text.
const MaxTargetLen = 1024

// ParseTarget reads "s3://bucket" or "s3://bucket/prefix/" (a prefix
// without the trailing slash gets one). The bucket name follows S3's rules
// (3-63 lower-case letters, digits, dots and hyphens, starting and ending
// with a letter or digit); the prefix is a clean relative path with no
// "." or ".." segment, no empty segment, and no control characters.
func ParseTarget(s string) (Target, error) {
	if len(s) > MaxTargetLen {
		return Target{}, fmt.Errorf("publish target is longer than %d characters", MaxTargetLen)
	}
	rest, ok := strings.CutPrefix(s, "s3://")
	if !ok {
		return Target{}, fmt.Errorf("publish target %q: want s3://bucket/prefix/", s)
	}
	bucket, prefix, _ := strings.Cut(rest, "/")
	if err := checkBucket(bucket); err != nil {
		return Target{}, fmt.Errorf("publish target %q: %w", s, err)
	}
	if strings.ContainsAny(prefix, "?#\\") {
		return Target{}, fmt.Errorf("publish target %q: the prefix may not contain ? # or \\", s)
	}
	for _, r := range prefix {
		if r < 0x20 || r == 0x7f {
			return Target{}, fmt.Errorf("publish target %q: control character in the prefix", s)
		}
	}
	if prefix != "" {
		p := strings.TrimSuffix(prefix, "/")
		for _, seg := range strings.Split(p, "/") {
			if seg == "" || seg == "." || seg == ".." {
				return Target{}, fmt.Errorf("publish target %q: empty, . or .. segment in the prefix", s)
			}
		}
		if path.Clean(p) != p {
			return Target{}, fmt.Errorf("publish target %q: the prefix is not a clean path", s)
		}
		prefix = p + "/"
	}
	return Target{Bucket: bucket, Prefix: prefix}, nil
}

func checkBucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return errors.New("bucket name must be 3-63 characters")
	}
	for i, r := range b {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-'
		if !ok {
			return fmt.Errorf("bucket name %q: only lower-case letters, digits, . and -", b)
		}
		if (i == 0 || i == len(b)-1) && (r == '.' || r == '-') {
			return fmt.Errorf("bucket name %q must start and end with a letter or digit", b)
		}
	}
	if strings.Contains(b, "..") {
		return fmt.Errorf("bucket name %q: two dots in a row", b)
	}
	return nil
}

// ContentType is the media type a published file is served with.
func ContentType(rel string) string {
	switch strings.ToLower(path.Ext(rel)) {
	case ".m3u8":
		return "application/vnd.apple.mpegurl"
	case ".mpd":
		return "application/dash+xml"
	case ".m4s":
		return "video/iso.segment"
	case ".mp4", ".m4v":
		return "video/mp4"
	case ".m4a":
		return "audio/mp4"
	case ".vtt":
		return "text/vtt"
	case ".jpg", ".jpeg":
		return "image/jpeg"
	case ".png":
		return "image/png"
	case ".json":
		return "application/json"
	}
	return "application/octet-stream"
}

// Cache-Control values: a job's segments and files never change once
// published; its manifests are short-lived so that a republish (or a
// delete at expiry) is seen soon.
const (
	CacheLong  = "public, max-age=31536000, immutable"
	CacheShort = "public, max-age=60"
)

// CacheControl is the Cache-Control a published file is served with.
func CacheControl(rel string) string {
	switch strings.ToLower(path.Ext(rel)) {
	case ".m3u8", ".mpd":
		return CacheShort
	}
	return CacheLong
}
