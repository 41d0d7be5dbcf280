package main

// `gosty submit`: the job options its flags make, uploads (multipart, or
// tus in tus.go), URL submits, and following jobs to their end.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gosty/gosty/httpapi"
)

// jobOptions merges --options with the single-purpose flags.
func (sf submitFlags) jobOptions() (string, error) {
	opts := map[string]any{}
	if sf.options != "" {
		if err := json.Unmarshal([]byte(sf.options), &opts); err != nil {
			return "", fmt.Errorf("--options: %w", err)
		}
	}
	if sf.renditions != "" {
		var r []string
		for _, s := range strings.Split(sf.renditions, ",") {
			if s = strings.TrimSpace(s); s != "" {
				r = append(r, s)
			}
		}
		opts["renditions"] = r
	}
	if sf.codec != "" {
		opts["codec"] = sf.codec
	}
	if sf.preset != "" {
		opts["preset"] = sf.preset
	}
	if sf.rateControl != "" {
		opts["rate_control"] = sf.rateControl
	}
	if sf.dynamicRange != "" {
		opts["dynamic_range"] = sf.dynamicRange
	}
	if sf.audio != "" {
		a, err := audioFlag(sf.audio)
		if err != nil {
			return "", err
		}
		opts["audio"] = a
	}
	if sf.chunkSeconds != 0 {
		opts["chunk_seconds"] = sf.chunkSeconds
	}
	for k, v := range map[string]string{"priority": sf.priority, "ttl": sf.ttl, "callback_url": sf.callbackURL, "client_id": sf.clientID, "publish": sf.publish} {
		if v != "" {
			opts[k] = v
		}
	}
	if sf.dropSource {
		opts["keep_source"] = false
	}
	if len(opts) == 0 {
		return "", nil
	}
	b, err := json.Marshal(opts)
	return string(b), err
}

// hlsOf is a job's HLS master playlist path ("" before it is packaged).
func hlsOf(j httpapi.JobView) string {
	if j.Outputs == nil {
		return ""
	}
	return j.Outputs.HLS
}

// submit uploads every file, then (with wait) follows every job to its end.
// Text output is one line per job; JSON output is {"jobs": [...]}, the full
// job views when waiting.
func (c *client) submit(ctx context.Context, files, urls []string, options string, wait, progress bool) error {
	bars := newProgress(ctx, c.stderr, progress)
	var jobs []httpapi.JobView
	sources := append(slices.Clone(files), urls...)
	for i, f := range sources {
		var j httpapi.JobView
		var err error
		if i < len(files) {
			j, err = c.upload(ctx, f, options, bars)
		} else {
			j, err = c.submitURL(ctx, f, options)
		}
		if err != nil {
			bars.wait()
			return &exitError{exitRequest, err}
		}
		jobs = append(jobs, j)
		if c.output == "text" && !progress {
			fmt.Fprintf(c.stdout, "%s\t%s\t%s\n", j.ID, j.Name, j.State)
		}
	}
	if !wait {
		bars.wait()
		if c.output == "json" {
			return json.NewEncoder(c.stdout).Encode(map[string]any{"jobs": jobs})
		}
		return nil
	}

	final := make([]json.RawMessage, len(jobs))
	views := make([]httpapi.JobView, len(jobs))
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() {
			final[i], views[i], errs[i] = c.follow(ctx, j, bars)
		})
	}
	wg.Wait()
	bars.wait()
	if err := errors.Join(errs...); err != nil {
		return &exitError{exitRequest, err}
	}
	failed := 0
	for _, j := range views {
		if j.State != "done" {
			failed++
			fmt.Fprintf(c.stderr, "gosty: job %s (%s) %s: %s\n", j.ID, j.Name, j.State, j.Error)
		}
		if c.output == "text" {
			fmt.Fprintf(c.stdout, "%s\t%s\t%s\t%s\n", j.ID, j.Name, j.State, firstNonEmpty(j.Error, c.server+hlsOf(j)))
		}
	}
	if c.output == "json" {
		if err := json.NewEncoder(c.stdout).Encode(map[string]any{"jobs": final}); err != nil {
			return err
		}
	}
	if failed > 0 {
		return &exitError{exitJobFailed, fmt.Errorf("%d of %d jobs did not finish", failed, len(jobs))}
	}
	return nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// upload sends a file: with tus when it is large (or --resumable always),
// else as one multipart POST.
func (c *client) upload(ctx context.Context, path, options string, bars *progress) (httpapi.JobView, error) {
	if st, err := os.Stat(path); err == nil && len(c.subtitles) == 0 && useResumable(c.resumable, st.Size()) {
		return c.uploadResumable(ctx, path, options, bars)
	}
	return c.uploadPost(ctx, path, options, bars)
}

// uploadPost streams a file as multipart without holding it in memory.
func (c *client) uploadPost(ctx context.Context, path, options string, bars *progress) (httpapi.JobView, error) {
	f, err := os.Open(path)
	if err != nil {
		return httpapi.JobView{}, fmt.Errorf("submit %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return httpapi.JobView{}, fmt.Errorf("submit %s: %w", path, err)
	}
	name := filepath.Base(path)
	bar := bars.upload(name, st.Size())
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := func() error {
			if options != "" {
				if err := mw.WriteField("options", options); err != nil {
					return err
				}
			}
			for _, s := range c.subtitles {
				if err := writeSubtitlePart(mw, s); err != nil {
					return err
				}
			}
			part, err := mw.CreateFormFile("file", name)
			if err != nil {
				return err
			}
			if _, err := io.Copy(part, bar.reader(f)); err != nil {
				return err
			}
			return mw.Close()
		}()
		pw.CloseWithError(err)
	}()
	var j httpapi.JobView
	err = c.do(ctx, http.MethodPost, "/api/v1/jobs", pr, mw.FormDataContentType(), &j)
	// The pipe's reader is done either way; this unblocks the writer when
	// the server answered before reading the whole body.
	pr.CloseWithError(errors.New("upload finished"))
	bar.done(err == nil)
	if err != nil {
		return j, fmt.Errorf("submit %s: %w", path, err)
	}
	return j, nil
}

// submitURL asks the node to fetch a source (a JSON submit); the job
// answers ingesting and moves on once the node has it.
func (c *client) submitURL(ctx context.Context, source, options string) (httpapi.JobView, error) {
	req := map[string]any{"source_url": source}
	if options != "" {
		req["options"] = json.RawMessage(options)
	}
	b, err := json.Marshal(req)
	if err != nil {
		return httpapi.JobView{}, fmt.Errorf("submit %s: %w", source, err)
	}
	var j httpapi.JobView
	if err := c.do(ctx, http.MethodPost, "/api/v1/jobs", bytes.NewReader(b), "application/json", &j); err != nil {
		return j, fmt.Errorf("submit %s: %w", source, err)
	}
	return j, nil
}

// writeSubtitlePart adds a --subtitles file to a multipart upload.
func writeSubtitlePart(mw *multipart.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	part, err := mw.CreateFormFile("subtitles", filepath.Base(path))
	if err != nil {
		return err
	}
	_, err = io.Copy(part, f)
	return err
}

// follow polls one job until it finishes, moving its progress bar, and
// returns the final job JSON as the server sent it.
func (c *client) follow(ctx context.Context, j httpapi.JobView, bars *progress) (json.RawMessage, httpapi.JobView, error) {
	bar := bars.transcode(j.Name)
	for {
		var raw json.RawMessage
		if err := c.do(ctx, http.MethodGet, "/api/v1/jobs/"+url.PathEscape(j.ID), nil, "", &raw); err != nil {
			bar.done(false)
			return nil, j, err
		}
		var v httpapi.JobView
		if err := json.Unmarshal(raw, &v); err != nil {
			bar.done(false)
			return nil, j, fmt.Errorf("job %s: %w", j.ID, err)
		}
		bar.set(string(v.State), v.Progress)
		if v.State.Terminal() {
			bar.done(v.State == "done")
			return raw, v, nil
		}
		select {
		case <-ctx.Done():
			bar.done(false)
			return nil, v, ctx.Err()
		case <-time.After(c.poll):
		}
	}
}

// audioFlag turns --audio into the "audio" option: "all", "first" or a
// list of ordinals ("1" or "0,2"); the node checks them.
func audioFlag(v string) (any, error) {
	if v == "all" || v == "first" {
		return v, nil
	}
	var out []int
	for _, s := range strings.Split(v, ",") {
		i, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("--audio must be all, first or audio stream ordinals such as 0,2, not %q", v)
		}
		out = append(out, i)
	}
	return out, nil
}
