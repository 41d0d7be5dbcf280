package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/cluster/gc"
	"github.com/gosty/gosty/node/nodetest"
)

// packWorker is a worker whose fetch is fn, for the package task's helpers.
func packWorker(t *testing.T, fn func(ctx context.Context, ref cluster.BlobRef) (string, bool, error)) *worker {
	t.Helper()
	blobs, err := cluster.OpenBlobStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &worker{name: "n1", blobs: blobs, logger: slog.New(slog.DiscardHandler), pins: gc.NewPins(),
		fetch: func(ctx context.Context, ref cluster.BlobRef, _ string) (string, bool, error) { return fn(ctx, ref) }}
}

func refN(i int) cluster.BlobRef {
	return cluster.BlobRef{Hash: fmt.Sprintf("%064x", i+1), Size: int64(1000 + i)}
}

// A package task fetches its inputs packPulls at once, never more, and
// gets their paths back in its inputs' order.
func TestPackageFetchesInputsInParallel(t *testing.T) {
	const n = 50
	var (
		mu            sync.Mutex
		inflight, top int
		started       int
	)
	gate := make(chan struct{})
	w := packWorker(t, func(ctx context.Context, ref cluster.BlobRef) (string, bool, error) {
		mu.Lock()
		inflight++
		started++
		top = max(top, inflight)
		first := started <= packPulls
		mu.Unlock()
		if first { // the first ones wait until all of them are in flight
			select {
			case <-gate:
			case <-ctx.Done():
				return "", false, ctx.Err()
			}
		}
		mu.Lock()
		inflight--
		mu.Unlock()
		return "/blobs/" + ref.Hash, ref.Size%2 == 0, nil // every other one pulled
	})
	refs := make([]cluster.BlobRef, n)
	var wantBytes int64
	wantPulled := 0
	for i := range refs {
		refs[i] = refN(i)
		if refs[i].Size%2 == 0 {
			wantPulled++
			wantBytes += refs[i].Size
		}
	}
	done := make(chan struct{})
	var paths []string
	var fetchErr error
	var gotPulled int
	var gotBytes int64
	go func() {
		defer close(done)
		paths, fetchErr = w.fetchAll(context.Background(), func(p int, b int64, _ time.Duration) { gotPulled, gotBytes = p, b }, refs,
			func(i int) string { return fmt.Sprintf("input %d", i) })
	}()
	nodetest.WaitFor(t, 10*time.Second, fmt.Sprintf("%d fetches in flight at once", packPulls), func() bool {
		mu.Lock()
		defer mu.Unlock()
		return inflight == packPulls
	})
	close(gate)
	<-done
	if fetchErr != nil {
		t.Fatal(fetchErr)
	}
	if top != packPulls {
		t.Errorf("%d fetches in flight at most, want %d", top, packPulls)
	}
	for i, p := range paths {
		if want := "/blobs/" + refs[i].Hash; p != want {
			t.Fatalf("path %d is %s, want %s (the inputs' order)", i, p, want)
		}
	}
	if gotPulled != wantPulled || gotBytes != wantBytes {
		t.Errorf("logged %d pulled (%d bytes), want %d (%d bytes)", gotPulled, gotBytes, wantPulled, wantBytes)
	}
}

// The first input that cannot be had fails the fetch with its name and
// its cause (a lost input stays cluster.ErrNotFound, which requeues the
// task as lost), and no fetch begins after it.
func TestPackageFetchStopsAtTheFirstFailure(t *testing.T) {
	var mu sync.Mutex
	started := 0
	w := packWorker(t, func(ctx context.Context, ref cluster.BlobRef) (string, bool, error) {
		mu.Lock()
		started++
		mu.Unlock()
		if ref == refN(0) {
			return "", false, fmt.Errorf("blob %s: %w: no alive holder", ref.Hash, cluster.ErrNotFound)
		}
		<-ctx.Done() // the others wait until the failure stops them
		return "", false, ctx.Err()
	})
	refs := make([]cluster.BlobRef, 100)
	for i := range refs {
		refs[i] = refN(i)
	}
	_, err := w.fetchAll(context.Background(), nil, refs, func(i int) string { return fmt.Sprintf("chunk %d", i) })
	if !errors.Is(err, cluster.ErrNotFound) || !strings.HasPrefix(err.Error(), "chunk 0: ") {
		t.Fatalf("err = %v, want chunk 0's lost input", err)
	}
	if started > packPulls+1 {
		t.Errorf("%d fetches began, want at most %d once the first failed", started, packPulls+1)
	}
}

// A storyboard goes on without the bundles it cannot fetch; zero refs
// (chunks without frames) are not fetched at all, and a blob named twice
// (identical chunks) once.
func TestFetchEachToleratesWhatTheCallerForgives(t *testing.T) {
	var fmu sync.Mutex
	fetched := map[string]int{}
	w := packWorker(t, func(ctx context.Context, ref cluster.BlobRef) (string, bool, error) {
		fmu.Lock()
		fetched[ref.Hash]++
		fmu.Unlock()
		if ref == refN(3) {
			return "", false, errors.New("holder gone")
		}
		return "/blobs/" + ref.Hash, false, nil
	})
	refs := []cluster.BlobRef{refN(0), {}, refN(2), refN(3), refN(4), refN(2)}
	got := make([]string, len(refs))
	var mu sync.Mutex
	calls := 0
	if _, _, err := w.fetchEach(context.Background(), refs, func(i int, p string, err error) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if err == nil {
			got[i] = p
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{"/blobs/" + refN(0).Hash, "", "/blobs/" + refN(2).Hash, "", "/blobs/" + refN(4).Hash, "/blobs/" + refN(2).Hash}
	if strings.Join(got, ",") != strings.Join(want, ",") || calls != 5 {
		t.Fatalf("got %q in %d calls, want %q in 5", got, calls, want)
	}
	if fetched[refN(2).Hash] != 1 || len(fetched) != 4 {
		t.Fatalf("fetched %v, want each of the 4 blobs once", fetched)
	}
}

// A package's files go into the blob store (several at once) under their
// content address, pinned until the result that names them is committed.
func TestPackageStoresItsFiles(t *testing.T) {
	w := packWorker(t, nil)
	out := t.TempDir()
	var rels []string
	want := map[string]string{}
	for i := range 30 {
		rel := fmt.Sprintf("hls/r%d/seg_%03d.m4s", i%3, i)
		if i%10 == 0 {
			rel = fmt.Sprintf("media_%d.m3u8", i)
		}
		body := []byte(strings.Repeat(fmt.Sprintf("file %d ", i), 100+i))
		p := filepath.Join(out, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, body, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(body)
		rels, want[rel] = append(rels, rel), hex.EncodeToString(sum[:])
	}
	res := &cluster.TaskResult{TaskID: "j/package"}
	files, err := w.storeAll(res, out, rels)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(want) {
		t.Fatalf("%d files stored, want %d", len(files), len(want))
	}
	for rel, h := range want {
		if files[rel].Hash != h {
			t.Errorf("%s stored as %s, want %s", rel, files[rel].Hash, h)
		}
		if !w.blobs.Has(h) || !w.pins.Has(h) {
			t.Errorf("%s: in the store %v, pinned %v; want both", rel, w.blobs.Has(h), w.pins.Has(h))
		}
	}
	w.pins.Release(res)
	for _, h := range want {
		if w.pins.Has(h) {
			t.Fatalf("%s still pinned after the result's release", h)
		}
	}

	// A file that cannot be stored fails the lot with its name (the
	// stored ones moved into the store: a second package writes anew).
	if err := os.WriteFile(filepath.Join(out, "fresh.m3u8"), []byte("#EXTM3U\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := w.storeAll(&cluster.TaskResult{TaskID: "j/package"}, out, []string{"fresh.m3u8", "missing.m4s"}); err == nil || !strings.Contains(err.Error(), "missing.m4s") {
		t.Fatalf("err = %v, want the missing file named", err)
	}
}
