package httpapi

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gosty/gosty/cluster"
)

type submission struct {
	filename  string
	data      []byte
	options   []byte
	submitter string // Upload.By.ID
	byToken   bool   // Submitter's ok: the API names submitters by token
	sidecars  []Sidecar
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
	stopAt    int      // with submitErr: return it once this many bytes are read
	received  chan int // when set, gets the byte count after every body read
	cancelErr error    // returned by Cancel
	panicList bool     // List panics

	seq       uint64   // changes so far
	changes   []change // every change, in order
	manifests map[string]*cluster.Manifest
}

type change struct {
	seq uint64
	id  string
}

func newFakeJobs() *fakeJobs {
	return &fakeJobs{
		jobs:     map[string]cluster.Job{},
		progress: map[string]float64{},
		changed:  make(chan struct{}),
	}
}

func (f *fakeJobs) notifyLocked(ids ...string) {
	f.seq++
	for _, id := range ids {
		f.changes = append(f.changes, change{f.seq, id})
	}
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeJobs) setManifest(j cluster.Job, m *cluster.Manifest) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.manifests == nil {
		f.manifests = map[string]*cluster.Manifest{}
	}
	f.manifests[j.Manifest.Hash] = m
}

func (f *fakeJobs) put(j cluster.Job) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if j.CreatedAt.IsZero() {
		j.CreatedAt = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	}
	j.UpdatedAt = j.CreatedAt
	f.jobs[j.ID] = j
	f.notifyLocked(j.ID)
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
	f.notifyLocked(id)
}

func (f *fakeJobs) remove(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.jobs, id)
	f.notifyLocked(id)
}

func (f *fakeJobs) submissions() []submission {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]submission(nil), f.submits...)
}

func (f *fakeJobs) Submit(ctx context.Context, up Upload) (cluster.Job, error) {
	filename, body, options := up.Filename, up.Body, up.Options
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
		if f.stopAt > 0 && buf.Len() >= f.stopAt {
			return cluster.Job{}, f.submitErr // the backend gives up mid-body
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
	f.submits = append(f.submits, submission{filename, buf.Bytes(), options, up.By.ID, up.By.Tokens, up.Sidecars})
	f.notifyLocked(j.ID)
	return j, nil
}

func (f *fakeJobs) Job(id string) (cluster.Job, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, ok := f.jobs[id]
	return j, ok
}

func (f *fakeJobs) Summary(id string) (cluster.Job, bool) {
	j, ok := f.Job(id)
	j.Chunks = nil
	return j, ok
}

// List pages like the state does: newest first; the fake's cursor is the
// last job's ID.
func (f *fakeJobs) List(q cluster.ListQuery) ([]cluster.Job, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.panicList {
		panic("boom: secret internals")
	}
	all := make([]cluster.Job, 0, len(f.jobs))
	for _, j := range f.jobs {
		if q.State == "" || j.State == q.State {
			j.Chunks = nil
			all = append(all, j)
		}
	}
	sort.Slice(all, func(a, b int) bool { return all[a].CreatedAt.After(all[b].CreatedAt) })
	if q.Cursor != "" {
		i := slices.IndexFunc(all, func(j cluster.Job) bool { return j.ID == q.Cursor })
		if i < 0 {
			return nil, "", cluster.Invalid(errors.New("malformed cursor"))
		}
		all = all[i+1:]
	}
	limit := cmp.Or(q.Limit, cluster.DefaultPageSize)
	if len(all) > limit {
		return all[:limit], all[limit-1].ID, nil
	}
	return all, "", nil
}

func (f *fakeJobs) Manifest(ctx context.Context, j cluster.Job) (*cluster.Manifest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.manifests[j.Manifest.Hash]
	if !ok {
		return nil, fmt.Errorf("manifest %s: %w", j.Manifest.Hash, cluster.ErrNotFound)
	}
	return m, nil
}

func (f *fakeJobs) ChangesSince(after uint64) ([]string, uint64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := map[string]bool{}
	var ids []string
	for _, c := range f.changes {
		if c.seq > after && !seen[c.id] {
			seen[c.id] = true
			ids = append(ids, c.id)
		}
	}
	return ids, f.seq, true
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
	f.notifyLocked(id)
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

func (b *fakeBlobs) OpenBlob(ctx context.Context, ref, _ cluster.BlobRef) (io.ReadSeekCloser, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	data, ok := b.blobs[ref.Hash]
	if !ok {
		return nil, fmt.Errorf("blob %s: %w", ref.Hash, cluster.ErrNotFound)
	}
	return nopSeekCloser{bytes.NewReader(data)}, nil
}

type fakeCluster struct{}

func (fakeCluster) Status() ClusterStatus {
	return ClusterStatus{Node: "n1", Leader: "n1", Term: 2, LogVersion: 2,
		Members: []MemberStatus{{Name: "n1", ID: "id-n1", State: "alive", RaftRole: "leader", Voter: true, Slots: 2,
			Version: "dev", Since: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}},
		Raft:   []RaftServer{{ID: "id-n1", Name: "n1", Suffrage: "voter", Address: "127.0.0.1:7947"}},
		Quorum: QuorumStatus{Voters: 1, HealthyVoters: 1, Needed: 1}}
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
	e.srv = httptest.NewServer(contractHandler(t, api.Handler()))
	t.Cleanup(e.srv.Close)
	return e
}

// SubmitURL records a URL submit as an ingesting job.
func (f *fakeJobs) SubmitURL(ctx context.Context, sourceURL string, options []byte, by Submitter) (cluster.Job, error) {
	if !strings.HasPrefix(sourceURL, "http") {
		return cluster.Job{}, cluster.Invalid(fmt.Errorf("source_url: scheme must be http or https"))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	j := cluster.Job{ID: fmt.Sprintf("job-%d", f.nextID), Name: "clip.mp4", State: cluster.JobIngesting,
		SourceURL: sourceURL, CreatedAt: time.Date(2025, 1, 2, 3, 4, 5, f.nextID, time.UTC)}
	j.UpdatedAt = j.CreatedAt
	f.jobs[j.ID] = j
	f.submits = append(f.submits, submission{sourceURL, nil, options, by.ID, by.Tokens, nil})
	f.notifyLocked(j.ID)
	return j, nil
}
