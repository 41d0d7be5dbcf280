// Package s3test starts a real S3 server for tests: versitygw (built once
// by `make s3-bin` from the Go module proxy and cached outside the
// repository) serving a temporary directory on a loopback address.
package s3test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Version is the versitygw release the Makefile builds.
const Version = "v1.8.0"

// Credentials of the server's root user.
const (
	AccessKey = "gostytestaccess"
	SecretKey = "gostytestsecret0123456789"
)

// Server is a running versitygw.
type Server struct {
	Endpoint string // http://127.0.117.x:port
	Bucket   string // created by Start
	Dir      string // the directory it serves
	Client   *s3.Client
}

// Binary finds versitygw: $GOSTY_VERSITYGW, the Makefile's cache
// ($XDG_CACHE_HOME or ~/.cache, gosty/versitygw-<Version>/versitygw), or
// PATH. "" when it is nowhere.
func Binary() string {
	if p := os.Getenv("GOSTY_VERSITYGW"); p != "" {
		return p
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, ".cache")
		}
	}
	if cache != "" {
		p := filepath.Join(cache, "gosty", "versitygw-"+Version, "versitygw")
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p
		}
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	return ""
}

var next atomic.Int32

// Start runs versitygw for the test on 127.0.117.N (N from 20 on, one per
// server of the process), creates bucket and stops the server at cleanup.
// Without the binary the test is skipped, unless GOSTY_REQUIRE_S3 is set
// (CI sets it), when it fails.
func Start(t testing.TB, bucket string) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		if os.Getenv("GOSTY_REQUIRE_S3") != "" {
			t.Fatalf("versitygw is missing (GOSTY_REQUIRE_S3 is set): run make s3-bin")
		}
		t.Skip("versitygw is missing: make s3-bin builds it (GOSTY_REQUIRE_S3=1 makes this a failure)")
	}
	host := fmt.Sprintf("127.0.117.%d", 20+next.Add(1)%200)
	l, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatalf("s3test: pick a port: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	root := t.TempDir()
	dir, side := filepath.Join(root, "data"), filepath.Join(root, "meta")
	for _, d := range []string{dir, side} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--port", addr, "--access", AccessKey, "--secret", SecretKey,
		"--region", "us-east-1", "--quiet", "posix", "--sidecar", side, dir)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("s3test: start %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cancel()
		<-exited
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("s3test: versitygw exited: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("s3test: versitygw does not listen on %s after 15s: %s", addr, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	s := &Server{Endpoint: "http://" + addr, Bucket: bucket, Dir: dir}
	s.Client = s.NewClient(AccessKey, SecretKey)
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	if _, err := s.Client.CreateBucket(cctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("s3test: create bucket %s: %v", bucket, err)
	}
	return s
}

// NewClient is an SDK client of the server with the given keys.
func (s *Server) NewClient(access, secret string) *s3.Client {
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(access, secret, ""),
	})
}

// Env points the standard AWS credential chain of this process at the
// given keys (the server's root user, AccessKey and SecretKey, or wrong
// ones), for the test.
func (s *Server) Env(t testing.TB, access, secret string) {
	for _, kv := range Environ(access, secret) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// Environ is the environment, as "KEY=value" entries, that points the
// standard AWS credential chain at the given keys and nowhere else: no
// session token, profile, config or credentials file, or instance
// metadata. Server.Env sets it in this process; a node process under test
// takes it appended to its environment (the last entry of a key wins).
func Environ(access, secret string) []string {
	return []string{"AWS_ACCESS_KEY_ID=" + access, "AWS_SECRET_ACCESS_KEY=" + secret,
		"AWS_SESSION_TOKEN=", "AWS_REGION=us-east-1", "AWS_PROFILE=",
		"AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent",
		"AWS_EC2_METADATA_DISABLED=true"}
}
