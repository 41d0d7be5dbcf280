package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
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
	"text/tabwriter"
	"time"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/node/disk"
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

// listFlags are `gosty jobs`' paging choices.
type listFlags struct {
	limit int
	state string
	all   bool
}

// jobs lists jobs, newest first: one page, or with --all every page (the
// cursors list each job once even while jobs are added).
func (c *client) jobs(ctx context.Context, lf listFlags) error {
	var out httpapi.JobList
	q := url.Values{}
	if lf.limit > 0 {
		q.Set("limit", strconv.Itoa(lf.limit))
	}
	if lf.state != "" {
		q.Set("state", lf.state)
	}
	for {
		var page httpapi.JobList
		if err := c.do(ctx, http.MethodGet, "/api/v1/jobs?"+q.Encode(), nil, "", &page); err != nil {
			return &exitError{exitRequest, err}
		}
		out.Jobs = append(out.Jobs, page.Jobs...)
		out.NextCursor = page.NextCursor
		if !lf.all || page.NextCursor == "" {
			break
		}
		q.Set("cursor", page.NextCursor)
	}
	return c.print(out, func(w io.Writer) {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tSTATE\tPROGRESS\tERROR")
		for _, j := range out.Jobs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%3.0f%%\t%s\n", j.ID, j.Name, j.State, 100*j.Progress, j.Error)
		}
		tw.Flush()
		if out.NextCursor != "" {
			fmt.Fprintf(w, "(more: --all, or the next page from cursor %s)\n", out.NextCursor)
		}
	})
}

// job shows one job, or cancels it (a finished job is deleted).
func (c *client) job(ctx context.Context, id string, cancel bool) error {
	method := http.MethodGet
	if cancel {
		method = http.MethodDelete
	}
	var raw json.RawMessage
	if err := c.do(ctx, method, "/api/v1/jobs/"+url.PathEscape(id), nil, "", &raw); err != nil {
		return &exitError{exitRequest, err}
	}
	if c.output == "json" || len(raw) == 0 {
		return c.printJSON(raw)
	}
	var j httpapi.JobView
	if err := json.Unmarshal(raw, &j); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "id\t%s\nname\t%s\nstate\t%s\nprogress\t%.0f%%\n", j.ID, j.Name, j.State, 100*j.Progress)
	if j.Error != "" {
		fmt.Fprintf(tw, "error\t%s\n", j.Error)
	}
	encoded, retried := 0, 0
	for _, ch := range j.Chunks {
		if ch.EncodedBy != "" {
			encoded++
		}
		if ch.Attempts > 1 {
			retried++
		}
	}
	fmt.Fprintf(tw, "chunks\t%d encoded of %d (%d retried)\n", encoded, len(j.Chunks), retried)
	for _, r := range j.Renditions {
		fmt.Fprintf(tw, "rendition\t%s %dx%d %d kb/s\n", r.Name, r.Width, r.Height, r.Bitrate/1000)
	}
	if j.Outputs != nil && j.Outputs.HLS != "" {
		fmt.Fprintf(tw, "hls\t%s%s\ndash\t%s%s\n", c.server, j.Outputs.HLS, c.server, j.Outputs.DASH)
		if j.Outputs.Poster != "" { // "previews": the storyboard, in a label no wider than "rendition"
			fmt.Fprintf(tw, "poster\t%s%s\npreviews\t%s%s\n", c.server, j.Outputs.Poster, c.server, j.Outputs.Storyboard)
		}
	} else if j.Live != nil && j.Live.Ready {
		fmt.Fprintf(tw, "live hls\t%s%s (%d chunks, %.1f s so far)\n", c.server, j.Live.HLS, j.Live.Segments, j.Live.Seconds)
	}
	return tw.Flush()
}

// quorumLine is the quorum line of `gosty members`.
func quorumLine(q httpapi.QuorumStatus) string {
	s := fmt.Sprintf("voters: %d of %d healthy, quorum %d", q.HealthyVoters, q.Voters, q.Needed)
	if q.HealthyVoters < q.Needed {
		return s + ": quorum lost"
	}
	return s + fmt.Sprintf(", failure tolerance %d", q.FailureTolerance)
}

// diskColumn is the DISK column of `gosty members`: the room for media
// (free above the reserves), "full" below them, "-" from nodes that do not
// say.
func diskColumn(m httpapi.MemberStatus) string {
	switch d := m.Disk; {
	case d == nil:
		return "-"
	case d.Full:
		return "full (" + disk.FormatSize(d.FreeBytes) + " free)"
	default:
		return disk.FormatSize(max(d.FreeBytes-d.ReserveBytes, 0)) + " room"
	}
}

func (c *client) members(ctx context.Context) error {
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, "/api/v1/cluster", nil, "", &raw); err != nil {
		return &exitError{exitRequest, err}
	}
	if c.output == "json" {
		return c.printJSON(raw)
	}
	var s httpapi.ClusterStatus
	if err := json.Unmarshal(raw, &s); err != nil {
		return err
	}
	leader := s.Leader
	if leader == "" {
		leader = "none"
	}
	line := "leader: " + leader
	if s.Quorum.Voters > 0 { // nodes that predate it do not say
		line += "; " + quorumLine(s.Quorum)
	}
	fmt.Fprintln(c.stdout, line)
	for _, w := range s.Insecure {
		fmt.Fprintf(c.stdout, "INSECURE (%s runs with --insecure): %s\n", s.Node, w)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tRAFT\tVOTER\tTASKS\tDISK\tHTTP")
	for _, m := range s.Members {
		state := m.State
		if m.Leaving {
			state += " (leaving)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%d/%d\t%s\t%s\n", m.Name, state, m.RaftRole, m.Voter, m.TasksActive, m.Slots, diskColumn(m), m.HTTP)
	}
	return tw.Flush()
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
