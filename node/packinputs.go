package node

import (
	"context"
	"fmt"
	"path/filepath"
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

// taskStores bounds how many of a task's output files are stored at once
// (hash, fsync, rename, directory fsync each): an encode's renditions, on
// every task's critical path, and a package's published files (a long
// job publishes tens of thousands of segments). Hashing is CPU, so more
// than a few only queue behind the cores; a few overlap the fsyncs.
const taskStores = 4

// fetchEach fetches refs (zero refs are skipped, a blob named twice is
// fetched once), up to packPulls at once, pulling from a holder those not
// here, and calls fn with each one's local path or error, from several
// goroutines at once. An error fn returns stops the fetches not yet begun
// and is returned; fn returning nil for an error lets the others go on. It
// returns how many were pulled and their bytes.
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
	at := map[string][]int{} // hash → where refs name it (identical chunks encode to one blob)
	var order []int          // the first index of each hash
	for i, ref := range refs {
		if ref.IsZero() {
			continue
		}
		if _, ok := at[ref.Hash]; !ok {
			order = append(order, i)
		}
		at[ref.Hash] = append(at[ref.Hash], i)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(packPulls)
	for _, first := range order {
		if gctx.Err() != nil {
			break // a fetch failed for good (or ctx ended): begin no more
		}
		ref := refs[first]
		g.Go(func() error {
			p, got, err := w.fetch(gctx, ref, "task")
			if err == nil && got {
				n.Add(1)
				size.Add(ref.Size)
			}
			for _, i := range at[ref.Hash] {
				if ferr := fn(i, p, err); ferr != nil {
					return ferr
				}
			}
			return nil
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

// storeEach moves files into the blob store, taskStores at once, each
// pinned until res is committed, and returns their refs in paths' order;
// name(i) says what paths[i] is in an error. The first failure stops the
// stores not yet begun.
func (w *worker) storeEach(res *cluster.TaskResult, paths []string, name func(i int) string) ([]cluster.BlobRef, error) {
	refs := make([]cluster.BlobRef, len(paths))
	g := new(errgroup.Group)
	g.SetLimit(taskStores)
	var failed atomic.Bool
	for i, p := range paths {
		if failed.Load() {
			break
		}
		g.Go(func() error {
			ref, err := w.store(res, p)
			if err != nil {
				failed.Store(true)
				return fmt.Errorf("store %s: %w", name(i), err)
			}
			refs[i] = ref
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return refs, nil
}

// storeAll stores a package's files (paths relative to dir,
// slash-separated) as storeEach does, by path.
func (w *worker) storeAll(res *cluster.TaskResult, dir string, rels []string) (map[string]cluster.BlobRef, error) {
	paths := make([]string, len(rels))
	for i, rel := range rels {
		paths[i] = filepath.Join(dir, filepath.FromSlash(rel))
	}
	refs, err := w.storeEach(res, paths, func(i int) string { return rels[i] })
	if err != nil {
		return nil, err
	}
	files := make(map[string]cluster.BlobRef, len(rels))
	for i, rel := range rels {
		files[rel] = refs[i]
	}
	return files, nil
}
