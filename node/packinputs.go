package node

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gosty/gosty/cluster"
)

// packPulls bounds how many of a package task's inputs (encoded chunks,
// the audio, thumbnail bundles, the quality report's chunk sources) one
// node fetches at once. One at a time, each pull is a round trip, a temp
// file, a hash and an fsync in turn, and a 2,000-chunk job is 6,000
// renditions: the packager's link and disk sat idle between them. Eight in
// flight overlap those waits and spread over the holders (on a cluster of
// any size a package's inputs sit on every node), while open connections,
// temp files and the disk space the blob store admits ahead of each pull
// (its declared size) stay bounded.
const packPulls = 8

// packStores bounds how many of a package's published files are stored at
// once (hash, fsync, rename, directory fsync each; a long job publishes
// tens of thousands of segments). Hashing is CPU, so more than a few only
// queue behind the cores; a few overlap the fsyncs.
const packStores = 4

// fetchEach fetches refs (zero refs are skipped), up to packPulls at once,
// pulling from a holder those not here, and calls fn with each one's local
// path or error, from several goroutines at once. An error fn returns stops
// the fetches not yet begun and is returned; fn returning nil for an error
// lets the others go on. It returns how many were pulled and their bytes.
//
// The copies pulled here are not recorded in the task's result (unlike a
// task's own input, worker.input): every one is an intermediate the job
// drops in the same entry that records the package result, so naming them
// would only make that entry grow with the media (a 24-hour source has
// 86,400 renditions at 6 s chunks), and record holders that are released
// as they are applied. Under log version 1, fetch still records each pull
// with a blob.add of its own (that shape has no other way).
func (w *worker) fetchEach(ctx context.Context, refs []cluster.BlobRef, fn func(i int, path string, err error) error) (pulled int, bytes int64, err error) {
	var n, size atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(packPulls)
	for i, ref := range refs {
		if ref.IsZero() {
			continue
		}
		if gctx.Err() != nil {
			break // a fetch failed for good (or ctx ended): begin no more
		}
		g.Go(func() error {
			p, got, err := w.fetch(gctx, ref, "task")
			if err == nil && got {
				n.Add(1)
				size.Add(ref.Size)
			}
			return fn(i, p, err)
		})
	}
	err = g.Wait()
	if err == nil {
		err = ctx.Err()
	}
	return int(n.Load()), size.Load(), err
}

// fetchAll is fetchEach where every input is needed: the local paths in
// refs' order, or the first failure, named by what(i).
func (w *worker) fetchAll(ctx context.Context, log func(pulled int, bytes int64, took time.Duration), refs []cluster.BlobRef, what func(i int) string) ([]string, error) {
	start := time.Now()
	paths := make([]string, len(refs))
	pulled, bytes, err := w.fetchEach(ctx, refs, func(i int, p string, err error) error {
		if err != nil {
			return fmt.Errorf("%s: %w", what(i), err)
		}
		paths[i] = p
		return nil
	})
	if err != nil {
		return nil, err
	}
	if log != nil {
		log(pulled, bytes, time.Since(start))
	}
	return paths, nil
}

// storeAll moves a package's files (paths relative to dir, slash-separated)
// into the blob store, packStores at once, each pinned until res is
// committed.
func (w *worker) storeAll(res *cluster.TaskResult, dir string, rels []string) (map[string]cluster.BlobRef, error) {
	refs := make([]cluster.BlobRef, len(rels))
	g := new(errgroup.Group)
	g.SetLimit(packStores)
	var mu sync.Mutex
	failed := false
	for i, rel := range rels {
		mu.Lock()
		stop := failed
		mu.Unlock()
		if stop {
			break
		}
		g.Go(func() error {
			ref, err := w.store(res, filepath.Join(dir, filepath.FromSlash(rel)))
			if err != nil {
				mu.Lock()
				failed = true
				mu.Unlock()
				return fmt.Errorf("store %s: %w", rel, err)
			}
			refs[i] = ref
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	files := make(map[string]cluster.BlobRef, len(rels))
	for i, rel := range rels {
		files[rel] = refs[i]
	}
	return files, nil
}
