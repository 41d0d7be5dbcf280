package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gosty/gosty/httpapi"
)

// Resumable uploads: `gosty submit` speaks tus 1.0.0 (creation, then PATCH
// from the offset the server holds) to /api/v1/uploads/ for large files, so
// that a dropped connection costs a HEAD and a new PATCH, not the whole file.

// resumableThreshold is the size from which --resumable auto uses tus.
const resumableThreshold = 64 << 20

const (
	tusPath = "/api/v1/uploads/"
	// tusMaxRetries is how many failed tries in a row (no byte of progress
	// between them) an upload survives.
	tusMaxRetries = 8
)

// useResumable decides, for --resumable mode, whether a file of size bytes
// goes through tus.
func useResumable(mode string, size int64) bool {
	switch mode {
	case "always":
		return true
	case "never":
		return false
	}
	return size >= resumableThreshold
}

// errUploadGone: the server no longer has the upload (expired, or the node
// that held it is gone for good); the client starts it again, once.
var errUploadGone = errors.New("the upload is gone from the server (expired, or the node that held it is gone)")

// tusError is an answer that retrying will not change.
type tusError struct{ err error }

func (e *tusError) Error() string { return e.err.Error() }
func (e *tusError) Unwrap() error { return e.err }

// uploadResumable sends path with tus and returns the job it became.
func (c *client) uploadResumable(ctx context.Context, path, options string, bars *progress) (httpapi.JobView, error) {
	j, err := c.tusUpload(ctx, path, options, bars)
	if err != nil {
		return j, fmt.Errorf("submit %s: %w", path, err)
	}
	return j, nil
}

// tusUpload sends path with tus, its progress on a bar of bars.
func (c *client) tusUpload(ctx context.Context, path, options string, bars *progress) (httpapi.JobView, error) {
	f, err := os.Open(path)
	if err != nil {
		return httpapi.JobView{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return httpapi.JobView{}, err
	}
	size := st.Size()
	name := filepath.Base(path)
	bar := bars.upload(name, size)
	ok := false
	defer func() { bar.done(ok) }()

	meta := "filename " + base64.StdEncoding.EncodeToString([]byte(name))
	if options != "" {
		meta += ",options " + base64.StdEncoding.EncodeToString([]byte(options))
	}
	job, err := c.tusSend(ctx, f, name, size, meta, bar)
	if err != nil {
		return httpapi.JobView{}, err
	}
	ok = true
	return job, nil
}

// tusSend creates the upload and sends f (name, size bytes) until the server
// has it all, resuming where the server stands after a failed PATCH and
// starting over once if the server lost the upload.
func (c *client) tusSend(ctx context.Context, f *os.File, name string, size int64, meta string, bar *bar) (httpapi.JobView, error) {
	var loc string
	create := func() error {
		return c.retry(ctx, func() (bool, error) {
			var err error
			loc, err = c.tusCreate(ctx, size, meta)
			return false, err
		})
	}
	if err := create(); err != nil {
		return httpapi.JobView{}, err
	}
	restarted := false

	var offset int64
	var job httpapi.JobView
	done := false
	fails := 0
	for !done {
		bar.setCurrent(offset)
		var perr error
		before := offset
		job, offset, done, perr = c.tusPatch(ctx, loc, f, offset, size, bar)
		if perr == nil {
			continue
		}
		var fatal *tusError
		if errors.As(perr, &fatal) || ctx.Err() != nil {
			return httpapi.JobView{}, perr
		}
		// Where does the server stand? Ask until it answers.
		err := c.retry(ctx, func() (bool, error) {
			var err error
			job, offset, done, err = c.tusHead(ctx, loc)
			return false, err
		})
		if errors.Is(err, errUploadGone) && !restarted {
			restarted = true
			fmt.Fprintf(c.stderr, "gosty: %s: %v; starting it again\n", name, err)
			if err := create(); err != nil {
				return httpapi.JobView{}, err
			}
			offset, fails = 0, 0
			continue
		}
		if err != nil {
			return httpapi.JobView{}, err
		}
		if offset > before {
			fails = 0
		} else if fails++; fails >= tusMaxRetries {
			return httpapi.JobView{}, fmt.Errorf("giving up after %d tries: %w", fails, perr)
		}
		if !done {
			fmt.Fprintf(c.stderr, "gosty: %s: upload interrupted (%v); resuming at byte %d of %d\n", name, perr, offset, size)
			if err := sleepCtx(ctx, backoff(fails)); err != nil {
				return httpapi.JobView{}, err
			}
		}
	}
	return job, nil
}

// retry runs f until it succeeds, fails for good (a *tusError) or has failed
// tusMaxRetries times.
func (c *client) retry(ctx context.Context, f func() (bool, error)) error {
	var err error
	for i := range tusMaxRetries {
		if _, err = f(); err == nil {
			return nil
		}
		var fatal *tusError
		if errors.As(err, &fatal) || ctx.Err() != nil {
			return err
		}
		if err := sleepCtx(ctx, backoff(i+1)); err != nil {
			return err
		}
	}
	return fmt.Errorf("giving up after %d tries: %w", tusMaxRetries, err)
}

func backoff(fails int) time.Duration {
	d := 250 * time.Millisecond << min(fails, 5)
	return min(d, 5*time.Second)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (c *client) tusRequest(ctx context.Context, method, u string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, &tusError{err}
	}
	req.Header.Set("Tus-Resumable", "1.0.0")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// answerError turns a failed answer into an error: 4xx but 408, 409, 423
// and 429 are final.
func answerError(method string, resp *http.Response) error {
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	err := fmt.Errorf("%s upload: %s", method, resp.Status)
	if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
		err = fmt.Errorf("%s upload: %s (%s)", method, e.Error.Message, e.Error.Code)
	} else if s := strings.TrimSpace(string(b)); s != "" && len(s) < 300 {
		err = fmt.Errorf("%s upload: %s: %s", method, resp.Status, s)
	}
	switch s := resp.StatusCode; {
	case s == http.StatusRequestTimeout, s == http.StatusConflict, s == http.StatusLocked, s == http.StatusTooManyRequests:
		return err
	case s >= 400 && s < 500:
		return &tusError{err}
	}
	return err
}

// tusCreate creates the upload and returns its URL.
func (c *client) tusCreate(ctx context.Context, size int64, meta string) (string, error) {
	req, err := c.tusRequest(ctx, http.MethodPost, c.server+tusPath, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Upload-Length", strconv.FormatInt(size, 10))
	req.Header.Set("Upload-Metadata", meta)
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return "", answerError("create", resp)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Path == "" {
		return "", &tusError{fmt.Errorf("create upload: bad Location %q", resp.Header.Get("Location"))}
	}
	// The upload lives on the node we talk to: keep our own scheme and host
	// (behind a proxy the Location's host may be the node's own).
	return c.server + loc.Path, nil
}

// tusPatch sends the file from offset. It returns the new offset, and the
// job once the upload finished.
func (c *client) tusPatch(ctx context.Context, loc string, f *os.File, offset, size int64, bar *bar) (httpapi.JobView, int64, bool, error) {
	body := bar.reader(io.NewSectionReader(f, offset, size-offset))
	req, err := c.tusRequest(ctx, http.MethodPatch, loc, body)
	if err != nil {
		return httpapi.JobView{}, offset, false, err
	}
	req.ContentLength = size - offset
	if req.ContentLength == 0 {
		req.Body = http.NoBody
	}
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	req.Header.Set("Upload-Offset", strconv.FormatInt(offset, 10))
	resp, err := c.hc.Do(req)
	if err != nil {
		return httpapi.JobView{}, offset, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return httpapi.JobView{}, offset, false, answerError("patch", resp)
	}
	off, err := strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
	if err != nil {
		return httpapi.JobView{}, offset, false, fmt.Errorf("patch upload: bad Upload-Offset %q", resp.Header.Get("Upload-Offset"))
	}
	id := resp.Header.Get("Gosty-Job-Id")
	if id == "" {
		if off >= size {
			return httpapi.JobView{}, off, false, errors.New("patch upload: all bytes sent but no job")
		}
		return httpapi.JobView{}, off, false, nil
	}
	var j httpapi.JobView
	if resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&j) == nil && j.ID == id {
		return j, off, true, nil
	}
	j, err = c.jobByID(ctx, id)
	return j, off, err == nil, err
}

// tusHead asks the server for the upload's offset (and its job, when it
// finished while the answer was lost).
func (c *client) tusHead(ctx context.Context, loc string) (httpapi.JobView, int64, bool, error) {
	req, err := c.tusRequest(ctx, http.MethodHead, loc, nil)
	if err != nil {
		return httpapi.JobView{}, 0, false, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return httpapi.JobView{}, 0, false, err
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone {
		return httpapi.JobView{}, 0, false, &tusError{errUploadGone}
	}
	if resp.StatusCode >= 300 {
		return httpapi.JobView{}, 0, false, answerError("head", resp)
	}
	off, err := strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
	if err != nil {
		return httpapi.JobView{}, 0, false, fmt.Errorf("head upload: bad Upload-Offset %q", resp.Header.Get("Upload-Offset"))
	}
	if id := resp.Header.Get("Gosty-Job-Id"); id != "" {
		j, err := c.jobByID(ctx, id)
		return j, off, err == nil, err
	}
	return httpapi.JobView{}, off, false, nil
}

func (c *client) jobByID(ctx context.Context, id string) (httpapi.JobView, error) {
	var j httpapi.JobView
	err := c.do(ctx, http.MethodGet, "/api/v1/jobs/"+url.PathEscape(id), nil, "", &j)
	return j, err
}
