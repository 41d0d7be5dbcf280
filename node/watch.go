package node

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/internal/tick"
	"github.com/gosty/gosty/objstore"
)

// Watching a bucket: --watch s3://bucket/inbox/ makes every object put
// directly under the prefix one job, exactly once. The leader polls the
// prefix and submits each new object as an s3:// source through the URL
// ingest path (ingest.go), at most watchPerPoll per poll; once the job has
// finished it moves the object (and its sidecar) to inbox/done/ or
// inbox/failed/ (by the job's state; canceled counts as failed).
//
// Exactly once without new replicated state: the job's ID is derived from
// the watched object (bucket, key, ETag), and job.ingest refuses an ID
// that exists (cluster/ingest.go). The job record is the "seen" mark, in
// the log with the job and removed with it (retention, --history): a new
// leader, or two leaders for a moment, submit the same ID and the second
// is a conflict. An object replaced in the inbox (another ETag) is another
// job. Because a finished job's object leaves the prefix, a poll lists
// only objects still waiting or running (cost in proportion to them, not
// to history): one page of at most watchPageSize keys per poll, the next
// poll going on from there. The one gap: a finished job removed before
// its object could be moved (S3 unreachable for longer than the job's
// retention) would be submitted again; the move is tried at every poll
// until then.
//
// Options: a sidecar <key>.json beside the object (at most 64 KiB; it is
// not a source itself), else --watch-options. Options that do not parse
// make the object one failed job with the reason (job.ingest with
// Refused: one entry, so it too is seen once), and it moves to failed/.
// The fetch runs on the leader that submits it; if that node goes away
// mid-fetch, the next leader takes the fetch over (ingest.go) and may read
// the bucket because it watches it too (watchedSource). To try a failed
// object again, put it back under another key, or under the same key once
// its old job is deleted (a job's ID is taken for as long as it exists).

const (
	watchPerPoll     = 16   // new jobs per poll at most
	watchPageSize    = 1000 // keys listed per poll
	watchSidecarMax  = 64 << 10
	watchSubmitter   = "watch"
	watchDoneDir     = "done/"
	watchFailedDir   = "failed/"
	watchSidecarExt  = ".json"
	watchJobIDPrefix = "w"
)

// watchJobID is the ID of the job of a watched object.
func watchJobID(bucket, key, etag string) string {
	h := sha256.Sum256([]byte(bucket + "\x00" + key + "\x00" + etag))
	return watchJobIDPrefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(h[:15]))
}

type watcher struct {
	n        *Node
	logger   *slog.Logger
	target   objstore.Target
	interval time.Duration
	st       *objstore.S3
	token    string // where the next poll lists from
}

func newWatcher(n *Node, logger *slog.Logger) *watcher {
	if n.cfg.Watch == "" {
		return nil
	}
	t, _ := objstore.ParseTarget(n.cfg.Watch) // checked by Config.Validate
	iv := n.cfg.WatchInterval
	if iv <= 0 {
		iv = 10 * time.Second
		if n.cfg.Fast {
			iv = 500 * time.Millisecond
		}
	}
	return &watcher{n: n, logger: logger.With("component", "watch", "watch", t.String()), target: t, interval: iv}
}

// Run polls while this node leads.
func (w *watcher) Run(ctx context.Context) {
	tick.Every(ctx, w.interval, func() {
		n := w.n
		if !n.joined.Load() || !n.store.IsLeader() || n.store.FSM().LogVersion() < cluster.LogV3 {
			w.token = ""
			return
		}
		if err := w.poll(ctx); err != nil && ctx.Err() == nil {
			w.logger.Warn("polling the watched prefix failed", "err", err)
		}
	})
}

func (w *watcher) poll(ctx context.Context) error {
	if w.st == nil {
		st, err := objstore.NewS3(ctx, w.n.cfg.S3)
		if err != nil {
			return err
		}
		w.st = st
	}
	b := w.target.Bucket
	objs, next, err := w.st.ListPage(ctx, b, w.target.Prefix, w.token, watchPageSize)
	if err != nil {
		w.token = ""
		return err
	}
	w.token = next
	submitted := 0
	for _, o := range objs {
		if ctx.Err() != nil || !w.n.store.IsLeader() {
			return nil
		}
		if o.Key == w.target.Prefix || strings.HasSuffix(o.Key, "/") || strings.HasSuffix(o.Key, watchSidecarExt) {
			continue
		}
		id := watchJobID(b, o.Key, o.ETag)
		var state cluster.JobState
		var found bool
		w.n.store.FSM().Read(func(st *cluster.State) {
			if j, ok := st.JobRecord(id); ok {
				state, found = j.State, true
			}
		})
		switch {
		case found && state.Terminal():
			dir := watchDoneDir
			if state != cluster.JobDone {
				dir = watchFailedDir
			}
			w.move(ctx, o.Key, dir, "job "+id+" "+string(state))
		case found:
			// running
		case submitted >= watchPerPoll:
			// next poll
		default:
			if stop := w.submit(ctx, o.Key, id); stop {
				return nil
			}
			submitted++
		}
	}
	return nil
}

// submit makes a watched object a job; stop says to end this poll (the
// node fetches all it may at once).
func (w *watcher) submit(ctx context.Context, key, id string) (stop bool) {
	b := w.target.Bucket
	options, found, err := w.st.ReadSmall(ctx, b, key+watchSidecarExt, watchSidecarMax)
	if err != nil {
		w.logger.Warn("reading a sidecar failed; the object waits", "key", key, "err", err)
		return false
	}
	if !found {
		options = []byte(w.n.cfg.WatchOptions)
	}
	j, err := service{w.n}.submitURL(ctx, "s3://"+b+"/"+key, options, ingestFrom{id: id, submitter: watchSubmitter, operator: true})
	switch {
	case err == nil:
		w.logger.Info("watched object submitted", "key", key, "job", j.ID)
	case errors.Is(err, httpapi.ErrTooManyIngests):
		return true
	case errors.Is(err, cluster.ErrConflict):
		// submitted by an earlier leader; or the log is being updated
	case errors.Is(err, cluster.ErrInvalid):
		w.logger.Warn("watched object refused; moving it to "+watchFailedDir, "key", key, "err", err)
		w.move(ctx, key, watchFailedDir, "refused")
	default:
		w.logger.Warn("submitting a watched object failed; the next poll tries again", "key", key, "err", err)
	}
	return false
}

// move takes a finished object (and its sidecar) out of the inbox.
func (w *watcher) move(ctx context.Context, key, dir, why string) {
	b := w.target.Bucket
	rel := strings.TrimPrefix(key, w.target.Prefix)
	dst := w.target.Prefix + dir + rel
	// The sidecar first: an object moved without it would leave it behind
	// for good (no object lists it again).
	err := w.st.Move(ctx, b, key+watchSidecarExt, dst+watchSidecarExt)
	if err == nil {
		err = w.st.Move(ctx, b, key, dst)
	}
	if err != nil {
		w.logger.Warn("moving a watched object failed; the next poll tries again", "key", key, "to", dst, "err", err)
		return
	}
	w.logger.Info("watched object moved", "key", key, "to", dst, "why", why)
}

// watchedSource says whether j is the job of an object in this node's
// watched bucket, which it may fetch as the operator's (no --ingest-s3).
func (n *Node) watchedSource(j cluster.Job) bool {
	if n.watch == nil || j.Submitter != watchSubmitter {
		return false
	}
	b, _, err := objstore.ParseObject(j.SourceURL)
	return err == nil && b == n.watch.target.Bucket
}
