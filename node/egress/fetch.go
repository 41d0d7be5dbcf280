package egress

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fetcher reads a source over http(s) from an address the allow list
// admits (every connection and redirect hop is checked at dial time),
// bounded in size, resuming after a dropped connection.
//
// Resume: a read that fails before the end asks again with
// "Range: bytes=N-" and If-Range (the first answer's ETag, else its
// Last-Modified), up to Retries times. A 206 from N carries on; a 200
// (the server ignores ranges, or the source changed and If-Range said so)
// is read again from 0 with the first N bytes skipped, but only when its
// validator matches the first answer's (else the source changed under us:
// the fetch fails), and at most Restarts times, since each costs the whole
// prefix again.
type Fetcher struct {
	Allow        *AllowList
	MaxBytes     int64         // 0 = no limit
	MaxRedirects int           // 0 = 5
	Retries      int           // reconnections after a dropped read; 0 = 5
	Restarts     int           // of those, how many may start from 0; 0 = 2
	Timeout      time.Duration // dial, TLS, response headers and body idle; 0 = 30 s
	Backoff      time.Duration // before a reconnection, doubling; 0 = 200 ms
	UserAgent    string
	Logger       *slog.Logger

	once   sync.Once
	client *http.Client
	tls    *tls.Config // tests: trust their server; nil = the system's roots
}

// FetchError is a fetch that failed for a reason a person can act on (the
// job's error).
type FetchError struct{ Reason string }

func (e *FetchError) Error() string { return e.Reason }

// TooLargeError is a source larger than MaxBytes.
type TooLargeError struct{ Limit, Size int64 }

func (e *TooLargeError) Error() string {
	if e.Size > 0 {
		return fmt.Sprintf("the source is %d bytes, more than this node takes (%d, --max-upload-bytes)", e.Size, e.Limit)
	}
	return fmt.Sprintf("the source is more than this node takes (%d bytes, --max-upload-bytes)", e.Limit)
}

func (f *Fetcher) init() {
	f.once.Do(func() {
		if f.MaxRedirects <= 0 {
			f.MaxRedirects = 5
		}
		if f.Retries <= 0 {
			f.Retries = 5
		}
		if f.Restarts <= 0 {
			f.Restarts = 2
		}
		if f.Timeout <= 0 {
			f.Timeout = 30 * time.Second
		}
		if f.Backoff <= 0 {
			f.Backoff = 200 * time.Millisecond
		}
		if f.Logger == nil {
			f.Logger = slog.Default()
		}
		f.client = &http.Client{
			Transport: &http.Transport{
				Proxy:                 nil,
				DialContext:           f.Allow.DialContext(&net.Dialer{Timeout: f.Timeout}),
				TLSHandshakeTimeout:   f.Timeout,
				ResponseHeaderTimeout: f.Timeout,
				MaxIdleConns:          4,
				IdleConnTimeout:       30 * time.Second,
				DisableCompression:    true, // bytes as stored, so that ranges line up
				TLSClientConfig:       f.tls,
			},
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) > f.MaxRedirects {
					return &FetchError{fmt.Sprintf("more than %d redirects", f.MaxRedirects)}
				}
				if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
					return &FetchError{fmt.Sprintf("redirect to a %q URL refused", req.URL.Scheme)}
				}
				if via[len(via)-1].URL.Scheme == "https" && req.URL.Scheme == "http" {
					return &FetchError{"redirect from https to http refused"}
				}
				return nil
			},
		}
	})
}

// Open starts a fetch. The reader it returns resumes as described on
// Fetcher; Size is the length the server declared (-1: unknown) and Got
// counts the bytes read so far (safe to call from any goroutine).
func (f *Fetcher) Open(ctx context.Context, u *url.URL) (*Source, error) {
	f.init()
	s := &Source{f: f, ctx: ctx, url: u}
	if err := s.connect(0); err != nil {
		return nil, err
	}
	return s, nil
}

// Source is an open fetch: an io.ReadCloser that resumes.
type Source struct {
	f    *Fetcher
	ctx  context.Context
	url  *url.URL // the last URL redirects led to; resumes ask it
	size int64
	etag string
	mod  string

	body     io.ReadCloser
	cancel   context.CancelFunc
	idle     *time.Timer
	skip     int64 // bytes of a restarted answer still to drop
	retries  int
	restarts int
	err      error

	mu  sync.Mutex
	got int64
}

// Size is the length the server declared (-1: unknown).
func (s *Source) Size() int64 { return s.size }

// Got is the bytes read so far.
func (s *Source) Got() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got
}

// connect asks for the bytes from off on (0: the first request).
func (s *Source) connect(off int64) error {
	ctx, cancel := context.WithCancel(s.ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url.String(), nil)
	if err != nil {
		cancel()
		return &FetchError{fmt.Sprintf("source_url: %v", err)}
	}
	req.Header.Set("User-Agent", s.f.UserAgent)
	if off > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(off, 10)+"-")
		if v := cmpOr(s.etag, s.mod); v != "" && !strings.HasPrefix(s.etag, "W/") {
			req.Header.Set("If-Range", v)
		}
	}
	resp, err := s.f.client.Do(req)
	if err != nil {
		cancel()
		var fe *FetchError
		if errors.As(err, &fe) {
			return fe
		}
		var re *RefusedError
		if errors.As(err, &re) {
			return &FetchError{"fetching the source: " + re.Error()}
		}
		if s.ctx.Err() != nil {
			return s.ctx.Err()
		}
		var ue *url.Error // names the URL, query and all: a presigned URL's secret
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return &FetchError{fmt.Sprintf("fetching %s: %v", redact(s.url), err)}
	}
	s.url = resp.Request.URL
	switch {
	case off == 0 && resp.StatusCode == http.StatusOK:
		s.size = resp.ContentLength
		s.etag, s.mod = resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
		if s.f.MaxBytes > 0 && s.size > s.f.MaxBytes {
			resp.Body.Close()
			cancel()
			return &TooLargeError{Limit: s.f.MaxBytes, Size: s.size}
		}
	case off > 0 && resp.StatusCode == http.StatusPartialContent:
		if start, ok := rangeStart(resp.Header.Get("Content-Range")); !ok || start != off {
			resp.Body.Close()
			cancel()
			return &FetchError{fmt.Sprintf("resuming at %d: the server answered the range %q", off, resp.Header.Get("Content-Range"))}
		}
	case off > 0 && resp.StatusCode == http.StatusOK:
		if s.restarts >= s.f.Restarts {
			resp.Body.Close()
			cancel()
			return &FetchError{fmt.Sprintf("the connection dropped at %d bytes and the server does not resume (no ranges); gave up after %d restarts", off, s.restarts)}
		}
		if e, m := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified"); e != s.etag || m != s.mod || resp.ContentLength != s.size {
			resp.Body.Close()
			cancel()
			return &FetchError{"the source changed while it was fetched"}
		}
		s.restarts++
		s.skip = off
	default:
		resp.Body.Close()
		cancel()
		return &FetchError{fmt.Sprintf("the source answered %s", resp.Status)}
	}
	s.body, s.cancel = resp.Body, cancel
	s.idle = time.AfterFunc(s.f.Timeout, cancel)
	return nil
}

func (s *Source) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.read(p)
	if err != nil && err != io.EOF {
		s.err = err // sticky: a failed reconnection leaves no body to read
	}
	return n, err
}

func (s *Source) read(p []byte) (int, error) {
	for {
		n, err := s.readBody(p)
		if n > 0 || err == nil {
			return n, nil
		}
		if err == io.EOF {
			if s.size >= 0 && s.Got() != s.size {
				err = io.ErrUnexpectedEOF // cut short without an error
			} else {
				return 0, io.EOF
			}
		}
		if s.ctx.Err() != nil {
			return 0, s.ctx.Err()
		}
		var tl *TooLargeError
		if errors.As(err, &tl) {
			return 0, err
		}
		if s.retries >= s.f.Retries {
			return 0, &FetchError{fmt.Sprintf("the connection dropped at %d bytes, %d times: %v", s.Got(), s.retries+1, err)}
		}
		s.retries++
		off := s.Got()
		s.f.Logger.Info("source connection dropped; resuming", "url", redact(s.url), "at", off, "retry", s.retries, "err", err)
		s.closeBody()
		select {
		case <-s.ctx.Done():
			return 0, s.ctx.Err()
		case <-time.After(s.f.Backoff << (s.retries - 1)):
		}
		if err := s.connect(off); err != nil {
			return 0, err
		}
	}
}

// readBody reads the current answer, dropping a restart's skipped prefix,
// and counts and bounds what it hands out.
func (s *Source) readBody(p []byte) (int, error) {
	for s.skip > 0 {
		buf := p[:min(int64(len(p)), s.skip)]
		n, err := s.body.Read(buf)
		s.skip -= int64(n)
		if n > 0 {
			s.idle.Reset(s.f.Timeout)
		}
		if err != nil {
			return 0, err
		}
	}
	n, err := s.body.Read(p)
	if n > 0 {
		s.idle.Reset(s.f.Timeout)
		s.mu.Lock()
		s.got += int64(n)
		got := s.got
		s.mu.Unlock()
		if s.f.MaxBytes > 0 && got > s.f.MaxBytes {
			return 0, &TooLargeError{Limit: s.f.MaxBytes}
		}
	}
	return n, err
}

func (s *Source) closeBody() {
	if s.body != nil {
		s.idle.Stop()
		s.body.Close()
		s.cancel()
		s.body = nil
	}
}

// Close ends the fetch.
func (s *Source) Close() error {
	s.closeBody()
	return nil
}

// rangeStart reads the first byte of "bytes A-B/N".
func rangeStart(cr string) (int64, bool) {
	rest, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		return 0, false
	}
	a, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(a, 10, 64)
	return n, err == nil
}

// redact drops a URL's query (it may carry a signature) for logs.
func redact(u *url.URL) string {
	c := *u
	c.RawQuery, c.User = "", nil
	return c.String()
}

// Redact is redact for callers: the URL without query or user info.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return redact(u)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
