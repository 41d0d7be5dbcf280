package node

import (
	"cmp"
	"context"
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
// ingesting by a node that is gone: the leader fails an ingest whose node
// is not alive in gossip (failed, not moved elsewhere: another node may be
// outside the source's allow list, and a fetch is cheap to ask for again),
// and a node fails its own ingests it is not running (it restarted). A
// canceled job stops its fetch at the next progress tick.
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
func (s service) SubmitURL(ctx context.Context, raw string, options []byte) (cluster.Job, error) {
	return s.submitURL(ctx, raw, options, ingestFrom{})
}

// ingestFrom is who asks for a fetch other than an API client: the bucket
// watch (watch.go) gives the job's ID (one per object, so that it is
// submitted once) and its submitter, and reads a bucket the operator
// named (no --ingest-s3 check).
type ingestFrom struct {
	id, submitter string
	operator      bool
}

func (s service) submitURL(ctx context.Context, raw string, options []byte, from ingestFrom) (cluster.Job, error) {
	n, g := s.n, s.n.ingest
	var u *url.URL // nil: an s3:// source (ingest_s3.go)
	srcPath := ""
	if isS3Source(raw) && from.operator {
		_, key, err := objstore.ParseObject(raw)
		if err != nil {
			return cluster.Job{}, cluster.Invalid(err)
		}
		srcPath = key
	} else if isS3Source(raw) {
		_, key, err := n.checkS3Source(raw)
		if err != nil {
			return cluster.Job{}, cluster.Invalid(err)
		}
		srcPath = key
	} else {
		if n.ingestAllow.Empty() {
			return cluster.Job{}, cluster.Invalid(errors.New("URL ingest is off on this node (no --ingest-allow)"))
		}
		var err error
		if u, err = n.ingestAllow.CheckURL(ctx, "source_url", raw); err != nil {
			return cluster.Job{}, cluster.Invalid(err)
		}
		srcPath = u.Path
	}
	jo, err := parseJobOptions(options)
	if err != nil {
		return cluster.Job{}, cluster.Invalid(err)
	}
	if jo.CallbackURL != "" {
		if err := checkCallbackURL(ctx, n.webhookAllow, jo.CallbackURL); err != nil {
			return cluster.Job{}, cluster.Invalid(err)
		}
	}
	if v := n.store.FSM().LogVersion(); v < cluster.LogV3 {
		return cluster.Job{}, fmt.Errorf("URL ingest needs log version %d, the cluster writes %d (an update is under way): %w",
			cluster.LogV3, v, cluster.ErrConflict)
	}
	submitter, tokens := httpapi.Submitter(ctx)
	if !tokens && jo.ClientID != "" {
		submitter = "client:" + jo.ClientID
	}
	if from.submitter != "" {
		submitter = from.submitter
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

	g.mu.Lock()
	base := g.base
	if base == nil || base.Err() != nil {
		g.mu.Unlock()
		return cluster.Job{}, fmt.Errorf("this node is not running: %w", cluster.ErrNotLeader)
	}
	if len(g.runs) >= n.cfg.MaxConcurrentUploads {
		g.mu.Unlock()
		return cluster.Job{}, fmt.Errorf("this node is fetching %d sources already (--max-concurrent-uploads); retry later: %w",
			len(g.runs), httpapi.ErrTooManyIngests)
	}
	fctx, cancel := context.WithCancel(base)
	if tokens {
		fctx = httpapi.WithSubmitter(fctx, submitter)
	}
	run := &ingestRun{cancel: cancel}
	g.runs[rec.ID] = run // before the commit: the self-check never sees it unclaimed
	g.wg.Add(1)          // under the lock that Run takes before it waits
	g.mu.Unlock()

	err = n.log.Propose(ctx, cluster.OpJobIngest, cluster.IngestJob{Job: rec})
	j, ok := s.Job(rec.ID)
	// A conflict after a retried forward means an earlier try committed.
	if err != nil && (!errors.Is(err, cluster.ErrConflict) || !ok || j.Origin != rec.Origin) {
		ok = false
	} else if !ok {
		err = errors.New("job vanished after commit")
	}
	if !ok {
		g.forget(rec.ID)
		g.wg.Done()
		return cluster.Job{}, fmt.Errorf("submit %s: %w", rec.ID, err)
	}
	g.logger.Info("URL ingest accepted", "job", rec.ID, "url", cluster.RedactURL(raw))
	go func() {
		defer g.wg.Done()
		defer g.forget(rec.ID)
		g.fetch(fctx, run, rec, u, options)
	}()
	return j, nil
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
func (g *ingester) fetch(ctx context.Context, run *ingestRun, rec cluster.Job, u *url.URL, options []byte) {
	n := g.n
	start := time.Now()
	var src ingestSource
	var err error
	if u == nil {
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
		j, err = service{n}.submitSource(ctx, rec.ID, rec.SourceURL, rec.Name, src, options)
		src.Close()
	}
	if err == nil {
		g.logger.Info("URL ingest done", "job", rec.ID, "state", j.State, "bytes", src.Got(),
			"seconds", time.Since(start).Seconds())
		return
	}
	if ctx.Err() != nil {
		// Canceled (the job, or the node stopping): the self-check or the
		// leader settles what is left ingesting.
		g.logger.Info("URL ingest stopped", "job", rec.ID, "err", ctx.Err())
		return
	}
	reason := ingestReason(err)
	g.logger.Warn("URL ingest failed", "job", rec.ID, "url", cluster.RedactURL(rec.SourceURL), "reason", reason, "err", err)
	g.fail(context.WithoutCancel(ctx), rec.ID, reason)
}

// fail commits an ingest's failure (a job no longer ingesting is left as
// it is).
func (g *ingester) fail(ctx context.Context, id, reason string) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if len(reason) > 500 {
		reason = reason[:500]
	}
	err := g.n.log.Propose(ctx, cluster.OpJobIngestFail, cluster.JobRef{JobID: id, Reason: reason})
	if err != nil && !errors.Is(err, cluster.ErrConflict) && !errors.Is(err, cluster.ErrNotFound) {
		g.logger.Warn("recording a failed ingest", "job", id, "err", err)
	}
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

// Run keeps the fetches' context and settles ingests no one runs: on the
// leader, those whose node is not alive; on every node, its own that it
// does not run (it restarted). It also stops fetches of canceled jobs.
func (g *ingester) Run(ctx context.Context) {
	g.mu.Lock()
	g.base = ctx
	g.mu.Unlock()
	defer func() {
		// ctx is done: no SubmitURL adds a fetch once it has seen that
		// under the lock, and one that is adding has done so by now.
		g.mu.Lock()
		g.mu.Unlock() //nolint:staticcheck // a barrier
		g.wg.Wait()
	}()
	t := time.NewTicker(g.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		g.round(ctx)
	}
}

func (g *ingester) round(ctx context.Context) {
	n := g.n
	if !n.joined.Load() {
		return
	}
	type orphan struct{ id, reason string }
	var orphans []orphan
	var ended []string
	leader := n.store.IsLeader()
	now := time.Now()
	seen := map[string]bool{}
	g.mu.Lock()
	if !leader {
		clear(g.gone)
	}
	n.store.FSM().Read(func(st *cluster.State) {
		for id := range g.runs {
			if j, ok := st.JobRecord(id); ok && j.State != cluster.JobIngesting {
				ended = append(ended, id)
			}
		}
		st.JobsInState(cluster.JobIngesting, func(j *cluster.Job) bool {
			seen[j.ID] = true
			switch {
			case j.Origin == n.cfg.Name:
				if _, ok := g.runs[j.ID]; !ok {
					orphans = append(orphans, orphan{j.ID, "the node fetching the source (" + j.Origin + ") restarted during the fetch; submit it again"})
				}
			case leader:
				if m, ok := n.members.Member(j.Origin); ok && (m.State == cluster.StateAlive || m.State == cluster.StateSuspect) {
					delete(g.gone, j.ID)
				} else if since, marked := g.gone[j.ID]; !marked {
					g.gone[j.ID] = now // gossip may be wrong for a moment: wait a grace
				} else if now.Sub(since) >= g.grace {
					orphans = append(orphans, orphan{j.ID, "the node fetching the source (" + j.Origin + ") left the cluster during the fetch; submit it again"})
				}
			}
			return true
		})
	})
	for id := range g.gone {
		if !seen[id] {
			delete(g.gone, id)
		}
	}
	for _, id := range ended {
		if r, ok := g.runs[id]; ok {
			r.cancel() // canceled or failed elsewhere: stop fetching
		}
	}
	g.mu.Unlock()
	for _, o := range orphans {
		g.logger.Warn("failing an ingest no node runs", "job", o.id, "reason", o.reason)
		g.fail(ctx, o.id, o.reason)
	}
}
