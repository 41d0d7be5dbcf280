package node

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path"
	"sync"
	"time"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/node/egress"
	"github.com/gosty/gosty/node/webhook"
	"github.com/gosty/gosty/objstore"
	"github.com/gosty/gosty/transcoder"
)

// URL ingest: POST /api/v1/jobs with {"source_url": ...} (httpapi's
// URLIngest). The node that takes the request
//
//  1. checks the URL (http or https, a destination --ingest-allow admits;
//     package egress; or s3://bucket/key, a bucket --ingest-s3 admits:
//     ingest_s3.go) and the options, as an upload's are checked;
//  2. commits job.ingest (state ingesting) and answers 202: the job is
//     acknowledged only once it is in the log, and it stays visible,
//     cancelable and failable from then on;
//  3. fetches the source (egress.Fetcher: every connection and redirect
//     checked at dial time, at most --max-upload-bytes, resumed with Range
//     after a dropped connection) through the path an upload takes
//     (submitSource: blob store, probe and hostile-media checks,
//     --ack-replicas copies), whose job.submit replaces the ingesting
//     record (the job moves on to queued);
//  4. or commits job.ingest_fail with a reason a person can act on.
//
// A fetch lives only in its node's memory, so a job must not be left
// ingesting by a node that is gone. The record keeps what the fetch needs
// (the URL, the options as sent, the submitter), so the fetch can run
// again elsewhere: the leader takes over an ingest whose node is not alive
// in gossip (job.ingest_take names it the fetching node; from then on only
// its outcome counts, so a node that was only cut off for a while cannot
// end the job twice), and a node that restarted resumes its own. Either
// fetches from the start, after checking the URL against its own
// --ingest-allow / --ingest-s3 (a watched object: its own --watch); a
// source it may not fetch fails the job with the reason. A canceled job
// stops its fetch at the next round.
//
// Progress (bytes fetched / Content-Length) is the fetching node's; other
// nodes ask it over the internal progress route (key "ingest"). A node
// fetches at most --max-concurrent-uploads sources at once (429 beyond),
// apart from the uploads it takes.

// ingestProgressKey names a fetch's fraction in the internal progress
// route's answer.
const ingestProgressKey = "ingest"

// ingestProgress is an ingesting job's fraction fetched: this node's own
// fetch, or the fetching node's answer (0 when it cannot be asked).
func (n *Node) ingestProgress(j cluster.Job) float64 {
	if p, ok := n.ingest.progress(j.ID); ok {
		return p
	}
	m, ok := n.members.Member(j.Origin)
	if !ok || m.Meta.Internal == "" || j.Origin == n.cfg.Name {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), leaderProgressTimeout)
	defer cancel()
	got, err := n.peers.Progress(ctx, m.Meta.Internal, j.ID)
	if err != nil {
		n.logger.Debug("asking the fetching node for progress failed", "job", j.ID, "node", j.Origin, "err", err)
	}
	return got[ingestProgressKey]
}

// ingester runs this node's fetches.
type ingester struct {
	n      *Node
	logger *slog.Logger
	tick   time.Duration

	mu   sync.Mutex
	base context.Context // the node's work context, from Run
	runs map[string]*ingestRun
	// gone is when the leader first saw an ingest's node not alive; it
	// fails the ingest after grace.
	gone  map[string]time.Time
	grace time.Duration
	wg    sync.WaitGroup
}

type ingestRun struct {
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	src    ingestSource // nil until connected
}

func newIngester(n *Node, logger *slog.Logger) *ingester {
	tick := time.Second
	if n.cfg.Fast {
		tick = 200 * time.Millisecond
	}
	return &ingester{n: n, logger: logger.With("component", "ingest"), tick: tick, runs: map[string]*ingestRun{},
		gone: map[string]time.Time{}, grace: 5 * tick}
}

// progress is a local fetch's fraction (ok false: not fetched here).
func (g *ingester) progress(jobID string) (float64, bool) {
	g.mu.Lock()
	r, ok := g.runs[jobID]
	g.mu.Unlock()
	if !ok {
		return 0, false
	}
	r.mu.Lock()
	src := r.src
	r.mu.Unlock()
	if src == nil || src.Size() <= 0 {
		return 0, true
	}
	return min(float64(src.Got())/float64(src.Size()), 1), true
}

// SubmitURL commits an ingesting job and starts its fetch.
func (s service) SubmitURL(ctx context.Context, raw string, options []byte, by httpapi.Submitter) (cluster.Job, error) {
	return s.submitURL(ctx, raw, options, ingestFrom{by: by})
}

// ingestFrom is who asks for a fetch other than an API client: the bucket
// watch (watch.go) gives the job's ID (one per object, so that it is
// submitted once) and its submitter, and reads a bucket the operator
// named (no --ingest-s3 check). Options it gives that are refused are
// recorded as a failed job (an API client gets a 400 instead).
type ingestFrom struct {
	by            httpapi.Submitter // an API client
	id, submitter string
	operator      bool
}

func (s service) submitURL(ctx context.Context, raw string, options []byte, from ingestFrom) (cluster.Job, error) {
	n, g := s.n, s.n.ingest
	u, srcPath, err := n.checkSource(ctx, raw, from.operator)
	if err != nil {
		return cluster.Job{}, cluster.Invalid(err)
	}
	jo, refused := parseJobOptions(options)
	if refused == nil && jo.CallbackURL != "" {
		refused = webhook.CheckURL(ctx, n.webhookAllow, jo.CallbackURL)
	}
	if refused == nil && len(options) > cluster.MaxIngestOptions {
		refused = fmt.Errorf("options: %d bytes, at most %d", len(options), cluster.MaxIngestOptions)
	}
	submitter := from.submitter
	if refused == nil && submitter == "" {
		submitter, refused = submitterOf(from.by, jo)
	}
	if refused != nil && from.id == "" {
		return cluster.Job{}, cluster.Invalid(refused)
	}
	if v := n.store.FSM().LogVersion(); v < cluster.LogV3 {
		return cluster.Job{}, fmt.Errorf("URL ingest needs log version %d, the cluster writes %d (an update is under way): %w",
			cluster.LogV3, v, cluster.ErrConflict)
	}
	opts := jo.Options
	if opts.Preset == "" {
		opts.Preset = n.cfg.Preset // as the upload path will apply it
	}
	name := displayName(path.Base(srcPath))
	if name == "upload" {
		name = "source"
	}
	rec := cluster.Job{
		ID: cmp.Or(from.id, newJobID()), Name: name, Origin: n.cfg.Name, SourceURL: raw, Options: cluster.OptionsOf(opts),
		CallbackURL: jo.CallbackURL, TTL: n.cfg.Retention, DropSource: jo.KeepSource != nil && !*jo.KeepSource,
		Priority: jo.priority, Submitter: submitter,
	}
	if jo.hasTTL {
		rec.TTL = jo.ttl
	}
	if refused != nil {
		// A watched object whose options are refused: one failed job with
		// the reason, so that it is seen once and moves to failed/.
		rec.Options, rec.CallbackURL = cluster.JobOptions{}, ""
		err := n.log.Propose(ctx, cluster.OpJobIngest, cluster.IngestJob{Job: rec, Refused: cutReason(refused.Error())})
		if err != nil && !errors.Is(err, cluster.ErrConflict) {
			return cluster.Job{}, fmt.Errorf("submit %s: %w", rec.ID, err)
		}
		return cluster.Job{}, cluster.Invalid(refused)
	}
	if len(options) > 0 {
		var buf bytes.Buffer
		if err := json.Compact(&buf, options); err == nil {
			rec.IngestOptions = buf.Bytes()
		}
	}

	run, err := g.reserve(rec.ID) // before the commit: the rounds never see it unclaimed
	if err != nil {
		return cluster.Job{}, err
	}
	err = n.log.Propose(ctx, cluster.OpJobIngest, cluster.IngestJob{Job: rec})
	j, ok := s.Job(rec.ID)
	// A conflict after a retried forward means an earlier try committed.
	if err != nil && (!errors.Is(err, cluster.ErrConflict) || !ok || j.Origin != rec.Origin || j.State != cluster.JobIngesting) {
		ok = false
	} else if !ok {
		err = errors.New("job vanished after commit")
	}
	if !ok {
		g.release(rec.ID)
		return cluster.Job{}, fmt.Errorf("submit %s: %w", rec.ID, err)
	}
	g.logger.Info("URL ingest accepted", "job", rec.ID, "url", cluster.RedactURL(raw))
	g.launch(run, rec, u)
	return j, nil
}

// checkSource checks a source address as this node would fetch it: http or
// https from a destination --ingest-allow admits (u is the parsed URL), or
// s3://bucket/key (u nil) from a bucket --ingest-s3 admits, or any bucket
// when the operator named it (a watched object). srcPath names the file.
func (n *Node) checkSource(ctx context.Context, raw string, operator bool) (u *url.URL, srcPath string, err error) {
	switch {
	case isS3Source(raw) && operator:
		_, key, err := objstore.ParseObject(raw)
		return nil, key, err
	case isS3Source(raw):
		_, key, err := n.checkS3Source(raw)
		return nil, key, err
	case n.ingestAllow.Empty():
		return nil, "", errors.New("URL ingest is off on this node (no --ingest-allow)")
	}
	if u, err = n.ingestAllow.CheckURL(ctx, "source_url", raw); err != nil {
		return nil, "", err
	}
	return u, u.Path, nil
}

// reserve claims a fetch slot for a job: an error when the node is
// stopping or fetches all it may already (--max-concurrent-uploads).
func (g *ingester) reserve(id string) (*ingestRun, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.base == nil || g.base.Err() != nil {
		return nil, fmt.Errorf("this node is not running: %w", cluster.ErrNotLeader)
	}
	if len(g.runs) >= g.n.cfg.MaxConcurrentUploads {
		return nil, fmt.Errorf("this node is fetching %d sources already (--max-concurrent-uploads); retry later: %w",
			len(g.runs), httpapi.ErrTooManyIngests)
	}
	ctx, cancel := context.WithCancel(g.base)
	run := &ingestRun{ctx: ctx, cancel: cancel}
	g.runs[id] = run
	g.wg.Add(1) // under the lock that Run takes before it waits
	return run, nil
}

// release gives back a reserved slot that was not launched.
func (g *ingester) release(id string) {
	g.forget(id)
	g.wg.Done()
}

// launch runs a reserved fetch of rec (which names this node).
func (g *ingester) launch(run *ingestRun, rec cluster.Job, u *url.URL) {
	go func() {
		defer g.wg.Done()
		defer g.forget(rec.ID)
		g.fetch(run.ctx, run, rec, u)
	}()
}

func (g *ingester) forget(id string) {
	g.mu.Lock()
	if r, ok := g.runs[id]; ok {
		r.cancel()
		delete(g.runs, id)
	}
	g.mu.Unlock()
}

// fetch brings the source in and commits the outcome.
func (g *ingester) fetch(ctx context.Context, run *ingestRun, rec cluster.Job, u *url.URL) {
	n := g.n
	start := time.Now()
	var src ingestSource
	// The options the record keeps were checked when the job was taken;
	// parsed before the fetch, so that no source is fetched for nothing.
	jo, err := parseJobOptions(rec.IngestOptions)
	if err != nil {
		err = cluster.Invalid(err)
	} else if u == nil {
		src, err = g.openS3(ctx, rec.SourceURL)
	} else {
		f := &egress.Fetcher{Allow: n.ingestAllow, MaxBytes: n.cfg.MaxUploadBytes, UserAgent: "gosty-ingest/1",
			Logger: g.logger.With("job", rec.ID)}
		var es *egress.Source
		if es, err = f.Open(ctx, u); err == nil {
			src = es
		}
	}
	if err == nil && src.Size() > 0 && n.space != nil {
		// A declared length that does not fit fails before a byte is
		// stored, as an upload's Content-Length does.
		if err = n.space.Admit(src.Size()); err != nil {
			src.Close()
		}
	}
	var j cluster.Job
	if err == nil {
		run.mu.Lock()
		run.src = src
		run.mu.Unlock()
		j, err = service{n}.submitSource(ctx, sourceJob{id: rec.ID, url: rec.SourceURL, name: rec.Name, submitter: rec.Submitter},
			src, jo)
		src.Close()
	}
	if err == nil {
		g.logger.Info("URL ingest done", "job", rec.ID, "state", j.State, "bytes", src.Got(),
			"seconds", time.Since(start).Seconds())
		return
	}
	if ctx.Err() != nil {
		// Canceled (the job, taken over, or the node stopping): the rounds
		// settle what is left ingesting.
		g.logger.Info("URL ingest stopped", "job", rec.ID, "err", ctx.Err())
		return
	}
	reason := ingestReason(err)
	g.logger.Warn("URL ingest failed", "job", rec.ID, "url", cluster.RedactURL(rec.SourceURL), "reason", reason, "err", err)
	g.fail(context.WithoutCancel(ctx), rec.ID, n.cfg.Name, reason)
}

// fail commits an ingest's failure while node fetches it (a job no longer
// ingesting, or taken over, is left as it is).
func (g *ingester) fail(ctx context.Context, id, node, reason string) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := g.n.log.Propose(ctx, cluster.OpJobIngestFail, cluster.IngestFail{JobID: id, Reason: cutReason(reason), Node: node})
	if err != nil && !errors.Is(err, cluster.ErrConflict) && !errors.Is(err, cluster.ErrNotFound) {
		g.logger.Warn("recording a failed ingest", "job", id, "err", err)
	}
}

// cutReason bounds a reason as the log keeps it.
func cutReason(reason string) string {
	if len(reason) > cluster.MaxIngestReason {
		return reason[:cluster.MaxIngestReason]
	}
	return reason
}

// ingestReason is what the job's error says of a failed fetch.
func ingestReason(err error) string {
	var (
		fe    *egress.FetchError
		big   *egress.TooLargeError
		media *transcoder.MediaError
	)
	switch {
	case errors.As(err, &big):
		return big.Error()
	case errors.As(err, &fe):
		return fe.Reason
	case errors.As(err, &media):
		return "the source is not usable media: " + media.Reason
	case cluster.IsNoSpace(err):
		return "no room for the source on the fetching node"
	case errors.Is(err, cluster.ErrTooFewCopies), errors.Is(err, cluster.ErrInvalid):
		return err.Error()
	}
	return "fetching the source failed: " + err.Error()
}
