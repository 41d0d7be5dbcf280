package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gosty/gosty/cluster"
)

// Exit codes of the client commands, so scripts can tell a job that failed
// from a request that never got an answer.
const (
	exitJobFailed = 1 // a job ended failed or canceled
	exitUsage     = 2 // bad flags or arguments
	exitRequest   = 3 // the server was unreachable or refused the request
)

// exitError carries the process exit code with the error main prints.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageError(format string, args ...any) error {
	return &exitError{exitUsage, fmt.Errorf(format, args...)}
}

// exitCode maps an error from a command to the process exit code.
func exitCode(err error) int {
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	return 1
}

// client is the command-line side of the public API.
type client struct {
	server string
	token  string
	output string
	hc     *http.Client
	stdout io.Writer
	stderr io.Writer
	poll   time.Duration
	// resumable is --resumable: auto, always or never ("" = auto).
	resumable string
	// subtitles are --subtitles files, sent with every upload (multipart
	// only: tus takes none).
	subtitles []string
}

// submitFlags are the choices `gosty submit` turns into job options.
type submitFlags struct {
	options      string
	renditions   string
	codec        string
	preset       string
	rateControl  string
	dynamicRange string
	audio        string // --audio: all, first or ordinals "0,2"
	chunkSeconds float64
	priority     string
	ttl          string
	callbackURL  string
	publish      string
	clientID     string
	dropSource   bool
	wait         bool
	progress     string
	resumable    string
	urls         []string // --url: sources the node fetches
}

// runClient runs one client command: the shared flags, each command's
// own, then the call. Long because it is the CLI's flag list; each
// command's work is a method of client.
func runClient(ctx context.Context, cmd string, args []string) error {
	fs := flag.NewFlagSet("gosty "+cmd, flag.ContinueOnError)
	c := &client{hc: &http.Client{}, stdout: os.Stdout, stderr: os.Stderr, poll: 500 * time.Millisecond}
	var tokenFile string
	var sf submitFlags
	var lf listFlags
	fs.StringVar(&c.server, "server", "http://127.0.0.1:8080", "node to talk to")
	fs.StringVar(&tokenFile, "api-token-file", "", "file with the API bearer token (the first of its lines, if several)")
	fs.StringVar(&c.output, "output", "text", "text or json")
	if cmd == "submit" {
		fs.StringVar(&sf.renditions, "renditions", "", "comma-separated ladder, e.g. 720p,480p or 720p@2500k (default: the codec's ladder)")
		fs.StringVar(&sf.codec, "codec", "", "video codec: h264 (default), hevc or av1")
		fs.StringVar(&sf.preset, "preset", "", "encoder speed/quality preset (default: the node's)")
		fs.StringVar(&sf.dynamicRange, "dynamic-range", "", "of an HDR source: auto (default: HDR kept in hevc/av1, tone-mapped for h264), sdr (tone-map all) or both (HDR hevc and SDR h264 ladders)")
		fs.StringVar(&sf.rateControl, "rate-control", "", "abr (default: each rung aims at its rate) or capped_crf (constant quality, the rate a ceiling)")
		fs.StringVar(&sf.audio, "audio", "", "audio streams to keep: all (default), first, or ordinals among the audio streams, e.g. 0,2")
		fs.Float64Var(&sf.chunkSeconds, "chunk-seconds", 0, "target chunk duration (default: the node's)")
		fs.StringVar(&sf.priority, "priority", "", "high, normal or low (default normal)")
		fs.StringVar(&sf.ttl, "ttl", "", "keep the media this long after the job finishes, e.g. 72h (0: forever; default: the node's --retention)")
		fs.StringVar(&sf.publish, "publish", "", "upload the job's files to this S3 target once done, s3://bucket/prefix/ (\"none\": not even to the node's --publish)")
		fs.StringVar(&sf.callbackURL, "callback-url", "", "URL the cluster POSTs the job to when it is done or failed (must be in the nodes' --webhook-allow)")
		fs.StringVar(&sf.clientID, "client-id", "", "who submits, for fair sharing on a cluster without API tokens")
		fs.BoolVar(&sf.dropSource, "drop-source", false, "delete the source once the job is done (keep_source:false)")
		fs.StringVar(&sf.options, "options", "", `job options as JSON, e.g. {"renditions":["720p","360p"]}; the flags above override it`)
		fs.BoolVar(&sf.wait, "wait", false, "wait until every job has finished; exit 1 if any failed")
		fs.StringVar(&sf.resumable, "resumable", "auto", "resumable (tus) uploads that survive a dropped connection: auto (files of 64 MiB and more), always or never")
		fs.Func("url", "an http(s) URL the node fetches the source from (it must be in the nodes' --ingest-allow), or s3://bucket/key (a bucket in its --ingest-s3); repeat for more, with or without files", func(s string) error {
			sf.urls = append(sf.urls, s)
			return nil
		})
		fs.StringVar(&sf.progress, "progress", "auto", "progress bars on stderr: auto (when stderr is a terminal and --output text), on or off")
		fs.Func("subtitles", "a .srt or .vtt file added to the upload as a subtitle track, its language in its name (film.en.srt); repeat for more", func(s string) error {
			c.subtitles = append(c.subtitles, s)
			return nil
		})
	}
	if cmd == "jobs" {
		fs.IntVar(&lf.limit, "limit", 0, fmt.Sprintf("jobs per page, newest first (default %d, at most %d)", cluster.DefaultPageSize, cluster.MaxPageSize))
		fs.StringVar(&lf.state, "state", "", "only jobs in this state: ingesting, queued, splitting, transcoding, packaging, done, failed or canceled")
		fs.BoolVar(&lf.all, "all", false, "every job, page after page (default: the first page)")
	}
	if err := fs.Parse(args); err != nil {
		return &exitError{exitUsage, err}
	}
	if err := envDefaults(fs); err != nil {
		return &exitError{exitUsage, err}
	}
	if c.output != "text" && c.output != "json" {
		return usageError("--output must be text or json, not %q", c.output)
	}
	if tokenFile != "" {
		tok, err := readClientToken(tokenFile)
		if err != nil {
			return &exitError{exitUsage, err}
		}
		c.token = tok
	}
	c.server = strings.TrimRight(c.server, "/")
	switch cmd {
	case "submit":
		if fs.NArg() == 0 && len(sf.urls) == 0 {
			return usageError("submit: name at least one file or --url")
		}
		options, err := sf.jobOptions()
		if err != nil {
			return &exitError{exitUsage, err}
		}
		switch sf.resumable {
		case "auto", "always", "never":
			c.resumable = sf.resumable
		default:
			return usageError("--resumable must be auto, always or never, not %q", sf.resumable)
		}
		if len(c.subtitles) > 0 && sf.resumable == "always" {
			return usageError("--subtitles go with a plain upload, not --resumable always")
		}
		for _, s := range c.subtitles {
			if _, err := os.Stat(s); err != nil {
				return usageError("--subtitles: %v", err)
			}
		}
		return c.submit(ctx, fs.Args(), sf.urls, options, sf.wait, c.showProgress(sf.progress))
	case "jobs":
		if fs.NArg() != 0 {
			return usageError("jobs: unexpected arguments %q", fs.Args())
		}
		if lf.limit < 0 || lf.limit > cluster.MaxPageSize {
			return usageError("--limit must be 1 to %d", cluster.MaxPageSize)
		}
		return c.jobs(ctx, lf)
	case "job", "cancel":
		if fs.NArg() != 1 {
			return usageError("%s: name one job id", cmd)
		}
		return c.job(ctx, fs.Arg(0), cmd == "cancel")
	case "members":
		return c.members(ctx)
	}
	return usageError("unknown command %q", cmd)
}

func (c *client) showProgress(mode string) bool {
	switch mode {
	case "on":
		return true
	case "off":
		return false
	}
	st, err := os.Stderr.Stat()
	return c.output == "text" && err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (c *client) do(ctx context.Context, method, path string, body io.Reader, ctype string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.server+path, body)
	if err != nil {
		return err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
			return fmt.Errorf("%s %s: %s (%s)", method, path, e.Error.Message, e.Error.Code)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func (c *client) print(v any, text func(io.Writer)) error {
	if c.output == "json" {
		return json.NewEncoder(c.stdout).Encode(v)
	}
	text(c.stdout)
	return nil
}

func (c *client) printJSON(raw json.RawMessage) error {
	if len(raw) == 0 {
		return nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// readClientToken reads the token the client sends. The node's token file
// may list several (one a line, for rotation; # comments): the client
// sends the first, so one file serves both.
func readClientToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	for line := range strings.Lines(string(b)) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			return line, nil
		}
	}
	return "", fmt.Errorf("%s holds no token", path)
}
