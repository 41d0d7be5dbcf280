package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gosty/gosty/cluster"
)

type submission struct {
	filename string
	data     []byte
	options  []byte
}

// fakeJobs is an in-memory Jobs.
type fakeJobs struct {
	mu       sync.Mutex
	jobs     map[string]cluster.Job
	progress map[string]float64
	changed  chan struct{}
	nextID   int

	submits   []submission
	submitErr error    // returned by Submit after reading the body
	received  chan int // when set, gets the byte count after every body read
	cancelErr error    // returned by Cancel
	panicList bool     // Jobs() panics
}

func newFakeJobs() *fakeJobs {
	return &fakeJobs{
		jobs:     map[string]cluster.Job{},
		progress: map[string]float64{},
		changed:  make(chan struct{}),
	}
}

func (f *fakeJobs) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeJobs) put(j cluster.Job) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if j.CreatedAt.IsZero() {
		j.CreatedAt = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	}
	j.UpdatedAt = j.CreatedAt
	f.jobs[j.ID] = j
	f.notifyLocked()
}

func (f *fakeJobs) setProgress(id string, p float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.progress[id] = p
	f.notifyLocked()
}

func (f *fakeJobs) setState(id string, s cluster.JobState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j := f.jobs[id]
	j.State = s
	f.jobs[id] = j
	f.notifyLocked()
}

func (f *fakeJobs) remove(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.jobs, id)
	f.notifyLocked()
}

func (f *fakeJobs) submissions() []submission {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]submission(nil), f.submits...)
}

func (f *fakeJobs) Submit(ctx context.Context, filename string, body io.Reader, options []byte) (cluster.Job, error) {
	var buf bytes.Buffer
	p := make([]byte, 32<<10)
	for {
		n, err := body.Read(p)
		buf.Write(p[:n])
		if f.received != nil && n > 0 {
			f.received <- buf.Len()
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return cluster.Job{}, fmt.Errorf("storing upload: %w", err)
		}
	}
	if f.submitErr != nil {
		return cluster.Job{}, f.submitErr
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	j := cluster.Job{
		ID:        fmt.Sprintf("job-%d", f.nextID),
		Name:      filename,
		State:     cluster.JobQueued,
		CreatedAt: time.Date(2025, 1, 2, 3, 4, 5, f.nextID, time.UTC),
	}
	j.UpdatedAt = j.CreatedAt
	f.jobs[j.ID] = j
	f.submits = append(f.submits, submission{filename, buf.Bytes(), options})
	f.notifyLocked()
	return j, nil
}

func (f *fakeJobs) Job(id string) (cluster.Job, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, ok := f.jobs[id]
	return j, ok
}

func (f *fakeJobs) Jobs() []cluster.Job {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.panicList {
		panic("boom: secret internals")
	}
	out := make([]cluster.Job, 0, len(f.jobs))
	for _, j := range f.jobs {
		out = append(out, j)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].CreatedAt.After(out[b].CreatedAt) })
	return out
}

func (f *fakeJobs) Progress(id string) float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.progress[id]
}

func (f *fakeJobs) Cancel(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cancelErr != nil {
		return f.cancelErr
	}
	j, ok := f.jobs[id]
	if !ok {
		return fmt.Errorf("job %s: %w", id, cluster.ErrNotFound)
	}
	if j.State.Terminal() {
		delete(f.jobs, id)
	} else {
		j.State = cluster.JobCanceled
		f.jobs[id] = j
	}
	f.notifyLocked()
	return nil
}

func (f *fakeJobs) Changed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

// fakeBlobs serves blobs from memory.
type fakeBlobs struct {
	mu    sync.Mutex
	blobs map[string][]byte
}

type nopSeekCloser struct{ *bytes.Reader }

func (nopSeekCloser) Close() error { return nil }

func (b *fakeBlobs) add(hash string, data []byte) cluster.BlobRef {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.blobs[hash] = data
	return cluster.BlobRef{Hash: hash, Size: int64(len(data))}
}

func (b *fakeBlobs) OpenBlob(ctx context.Context, ref cluster.BlobRef) (io.ReadSeekCloser, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	data, ok := b.blobs[ref.Hash]
	if !ok {
		return nil, fmt.Errorf("blob %s: %w", ref.Hash, cluster.ErrNotFound)
	}
	return nopSeekCloser{bytes.NewReader(data)}, nil
}

type fakeCluster struct{}

func (fakeCluster) Status() any {
	return map[string]any{"leader": "n1", "members": []map[string]string{{"name": "n1", "state": "alive"}}}
}

type fakeHealth struct {
	mu  sync.Mutex
	err error
}

func (h *fakeHealth) Ready() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

type env struct {
	srv    *httptest.Server
	api    *API
	jobs   *fakeJobs
	blobs  *fakeBlobs
	health *fakeHealth
	reg    *prometheus.Registry
}

func newEnv(t *testing.T, mod func(*Config)) *env {
	t.Helper()
	e := &env{
		jobs:   newFakeJobs(),
		blobs:  &fakeBlobs{blobs: map[string][]byte{}},
		health: &fakeHealth{},
		reg:    prometheus.NewRegistry(),
	}
	cfg := Config{
		Jobs:     e.jobs,
		Blobs:    e.blobs,
		Cluster:  fakeCluster{},
		Health:   e.health,
		Registry: e.reg,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		NodeName: "n1",
	}
	if mod != nil {
		mod(&cfg)
	}
	api, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	api.pollInterval = time.Hour // events are driven by Changed in tests
	e.api = api
	e.srv = httptest.NewServer(api.Handler())
	t.Cleanup(e.srv.Close)
	return e
}
