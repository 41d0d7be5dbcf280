package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/internal/tick"
	"github.com/gosty/gosty/objstore"
)

// publishStore is what the publisher needs of object storage
// (objstore.S3 on a real service, objstore.Mem in unit tests).
type publishStore interface {
	Put(ctx context.Context, bucket, key string, body io.Reader, size int64, meta objstore.Meta) error
	DeletePrefix(ctx context.Context, bucket, prefix string) (int, error)
	URL(bucket, key string) string
}

// publishOptionNone opts a job out of the node's --publish default.
const publishOptionNone = "none"

// publishStatus is the publish record a job is submitted with: the job's
// publish option, else this node's --publish; nil for none.
func (n *Node) publishStatus(jo jobOptions) (*cluster.PublishStatus, error) {
	target := n.cfg.Publish
	if jo.Publish != "" {
		target = jo.Publish
	}
	if target == "" || target == publishOptionNone {
		if jo.PublishExpire != nil && *jo.PublishExpire {
			return nil, errors.New("options: publish_expire needs a publish target")
		}
		return nil, nil
	}
	t, err := objstore.ParseTarget(target)
	if err != nil {
		return nil, fmt.Errorf("options: publish: %w", err)
	}
	expire := n.cfg.PublishExpire
	if jo.PublishExpire != nil {
		expire = *jo.PublishExpire
	}
	return &cluster.PublishStatus{Target: t.String(), Expire: expire, State: cluster.PublishWaiting}, nil
}

// publisher uploads the files of done jobs that publish to object storage,
// and deletes them at expiry when the job asked for that, while this node
// leads. Like the webhook notifier (package webhook), every attempt is recorded in the log
// (job.publish), so a new leader carries on where the old one stopped and
// the attempts are bounded. It reads the files through openBlob (here or
// streamed from a holder), so it needs no local copy. Its cost follows the
// active work: it reads only the jobs with publish work due (an index),
// runs at most `jobs` of them at once, and `files` uploads per job.
type publisher struct {
	store    *cluster.Store
	log      proposer
	logger   *slog.Logger
	open     func(ctx context.Context, ref, set cluster.BlobRef) (io.ReadSeekCloser, error)
	manifest func(ctx context.Context, j cluster.Job) (*cluster.Manifest, error)
	connect  func(ctx context.Context) (publishStore, error)

	interval    time.Duration
	backoff     time.Duration // after the first failure, doubling...
	maxBackoff  time.Duration // ...up to this
	maxAttempts int
	jobs, files int

	mu       sync.Mutex
	inflight map[string]bool
	conn     publishStore
}

func newPublisher(n *Node, logger *slog.Logger) *publisher {
	p := &publisher{
		store: n.store, log: n.log, logger: logger.With("component", "publish"),
		open: n.openBlob, manifest: n.manifest,
		interval: time.Second, backoff: 5 * time.Second, maxBackoff: 5 * time.Minute, maxAttempts: 6,
		jobs: 2, files: 4, inflight: map[string]bool{},
	}
	if n.cfg.Fast {
		p.interval, p.backoff, p.maxBackoff = 200*time.Millisecond, 200*time.Millisecond, time.Second
	}
	if n.cfg.PublishAttempts > 0 {
		p.maxAttempts = n.cfg.PublishAttempts
	}
	s3cfg := n.cfg.S3
	p.connect = func(ctx context.Context) (publishStore, error) { return objstore.NewS3(ctx, s3cfg) }
	return p
}

// client makes the store on first use (loading the credential chain), so
// a node that never publishes never reads AWS configuration.
func (p *publisher) client(ctx context.Context) (publishStore, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil {
		return p.conn, nil
	}
	c, err := p.connect(ctx)
	if err != nil {
		return nil, err
	}
	p.conn = c
	return c, nil
}

// due is how long after the last attempt the next one may start.
func (p *publisher) due(attempts int) time.Duration {
	return tick.Backoff(attempts, p.backoff, p.maxBackoff)
}

// Run publishes while this node leads.
func (p *publisher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, p.jobs)
	// A new leader first applies what the old one recorded.
	leader := cluster.CaughtUp{Store: p.store}
	tick.Every(ctx, p.interval, func() {
		if p.store.FSM().LogVersion() < cluster.LogV3 || !leader.Ready(ctx) {
			// job.publish is a version-3 op: during a rolling update from
			// an older release nothing is uploaded until every server
			// reads it (the attempt could not be recorded).
			return
		}
		now := time.Now()
		var jobs []cluster.Job
		p.store.FSM().Read(func(st *cluster.State) {
			st.PendingPublishes(func(j *cluster.Job) bool {
				ps := j.Publish
				if ps.LastAttemptAt.IsZero() || now.Sub(ps.LastAttemptAt) >= p.due(ps.Attempts) {
					jobs = append(jobs, *j)
				}
				return true
			})
		})
		for _, j := range jobs {
			p.mu.Lock()
			busy := p.inflight[j.ID]
			p.mu.Unlock()
			if busy {
				continue
			}
			select {
			case sem <- struct{}{}:
			default:
				continue // every slot is busy: the next tick looks again
			}
			p.mu.Lock()
			p.inflight[j.ID] = true
			p.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					p.mu.Lock()
					delete(p.inflight, j.ID)
					p.mu.Unlock()
					<-sem
				}()
				p.attempt(ctx, j)
			}()
		}
	})
}

// attempt makes one upload (or removal) of a job and records it.
func (p *publisher) attempt(ctx context.Context, j cluster.Job) {
	ps := j.Publish
	rec := cluster.JobPublish{JobID: j.ID, Attempt: ps.Attempts + 1}
	log := p.logger.With("job", j.ID, "target", ps.Target, "attempt", rec.Attempt)
	start := time.Now()
	var err error
	if ps.State == cluster.PublishExpiring {
		var n int
		n, err = p.remove(ctx, j)
		rec.Removed = err == nil
		if err == nil {
			log.Info("published copies removed at expiry", "objects", n)
		}
	} else {
		var res publishResult
		res, err = p.upload(ctx, j)
		if err == nil {
			rec.Published, rec.BaseURL, rec.Files, rec.Bytes = true, res.base, res.files, res.bytes
			log.Info("job published", "files", res.files, "bytes", res.bytes, "base_url", res.base,
				"took", time.Since(start).Round(time.Millisecond))
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return // stopping: the attempt is not counted
		}
		rec.Error = err.Error()
		if len(rec.Error) > cluster.MaxPublishError {
			rec.Error = rec.Error[:cluster.MaxPublishError]
		}
		rec.GiveUp = rec.Attempt >= p.maxAttempts
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if perr := p.log.Propose(pctx, cluster.OpJobPublish, rec); perr != nil {
		log.Warn("recording a publish attempt failed", "err", perr)
		return
	}
	hint := ""
	if objstore.Permanent(err) {
		hint = "check the S3 credentials, the bucket and its permissions"
	}
	switch {
	case rec.GiveUp:
		log.Error("publishing given up", "attempts", rec.Attempt, "err", err, "hint", hint)
	case err != nil:
		log.Warn("publish attempt failed; will retry", "retry_in", p.due(rec.Attempt), "err", err, "hint", hint)
	}
}

type publishResult struct {
	base  string
	files int
	bytes int64
}

type publishFile struct {
	rel string
	ref cluster.BlobRef
}

// upload puts every file of the job under the target's prefix + job ID:
// the media first, in parallel, and the playlists and MPD last, so a
// player that finds a manifest finds everything it names.
func (p *publisher) upload(ctx context.Context, j cluster.Job) (publishResult, error) {
	t, err := objstore.ParseTarget(j.Publish.Target)
	if err != nil {
		return publishResult{}, err
	}
	var files []publishFile
	set := j.Manifest
	if !j.Manifest.IsZero() {
		m, err := p.manifest(ctx, j)
		if err != nil {
			return publishResult{}, fmt.Errorf("publish %s: read the job's manifest: %w", j.ID, err)
		}
		for _, f := range m.Files {
			files = append(files, publishFile{f.Path, cluster.BlobRef{Hash: f.Hash, Size: f.Size}})
		}
	} else {
		for rel, b := range j.Outputs {
			files = append(files, publishFile{rel, b})
		}
	}
	if len(files) == 0 {
		return publishResult{}, fmt.Errorf("publish %s: the job has no files (expired?)", j.ID)
	}
	st, err := p.client(ctx)
	if err != nil {
		return publishResult{}, fmt.Errorf("publish %s: %w", j.ID, err)
	}
	var media, manifests []publishFile
	var res publishResult
	for _, f := range files {
		if objstore.CacheControl(f.rel) == objstore.CacheShort {
			manifests = append(manifests, f)
		} else {
			media = append(media, f)
		}
		res.files++
		res.bytes += f.ref.Size
	}
	for _, batch := range [][]publishFile{media, manifests} {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(p.files)
		for _, f := range batch {
			g.Go(func() error { return p.put(gctx, st, t, j.ID, f, set) })
		}
		if err := g.Wait(); err != nil {
			return publishResult{}, err
		}
	}
	res.base = st.URL(t.Bucket, t.JobPrefix(j.ID))
	return res, nil
}

func (p *publisher) put(ctx context.Context, st publishStore, t objstore.Target, jobID string, f publishFile, set cluster.BlobRef) error {
	rc, err := p.open(ctx, f.ref, set)
	if err != nil {
		return fmt.Errorf("publish %s: open %s: %w", jobID, f.rel, err)
	}
	defer rc.Close()
	return st.Put(ctx, t.Bucket, t.Key(jobID, f.rel), rc, f.ref.Size,
		objstore.Meta{ContentType: objstore.ContentType(f.rel), CacheControl: objstore.CacheControl(f.rel)})
}

// remove deletes the job's published copies.
func (p *publisher) remove(ctx context.Context, j cluster.Job) (int, error) {
	t, err := objstore.ParseTarget(j.Publish.Target)
	if err != nil {
		return 0, err
	}
	st, err := p.client(ctx)
	if err != nil {
		return 0, fmt.Errorf("remove the published copies of %s: %w", j.ID, err)
	}
	return st.DeletePrefix(ctx, t.Bucket, t.JobPrefix(j.ID))
}
