package gc

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gosty/gosty/cluster"
)

// gcFixture is a collector over a blob store and an empty log (nothing
// referenced), with one blob stored an hour ago: old and unreferenced,
// the collector's to delete, unless someone stores it again.
type gcFixture struct {
	c     *Collector
	blobs *cluster.BlobStore
	pins  *Pins
	data  []byte
	ref   cluster.BlobRef
}

func newGCFixture(t *testing.T) *gcFixture {
	t.Helper()
	blobs, err := cluster.OpenBlobStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	f := &gcFixture{blobs: blobs, pins: NewPins(), data: []byte(strings.Repeat("an init segment two jobs share ", 100))}
	f.c = &Collector{Name: "n1", FSM: cluster.NewFSM(logger), Blobs: blobs, Pins: f.pins,
		Manifests: storedManifests{blobs}, Logger: logger, Grace: time.Minute, Interval: time.Second}
	if f.ref, err = blobs.PutBytes(f.data); err != nil {
		t.Fatal(err)
	}
	p, _ := blobs.Path(f.ref.Hash)
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	blobs.Stored() // drop the note of the first store
	t.Cleanup(func() { cluster.SetTestHooks(nil) })
	return f
}

// collect runs one collector round over the blob.
func (f *gcFixture) collect() {
	f.c.collect(context.Background(), map[string]bool{f.ref.Hash: true})
}

// check fails unless the blob is stored, whole, and counted once.
func (f *gcFixture) check(t *testing.T, what string) {
	t.Helper()
	r, err := f.blobs.Open(f.ref.Hash)
	if err != nil {
		t.Fatalf("%s: the blob is gone: %v", what, err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if !bytes.Equal(got, f.data) {
		t.Fatalf("%s: the blob's content changed", what)
	}
	if f.blobs.Bytes() != f.ref.Size {
		t.Fatalf("%s: the store counts %d bytes, holds %d", what, f.blobs.Bytes(), f.ref.Size)
	}
}

// stores are the ways a node stores bytes it may already have: a push
// from a peer (protected by its fresh modification time alone) and an
// upload (pinned until its job is committed).
var gcStores = []struct {
	name  string
	store func(f *gcFixture) error
}{
	{"receive", func(f *gcFixture) error {
		return f.blobs.Receive(context.Background(), f.ref, bytes.NewReader(f.data))
	}},
	{"upload", func(f *gcFixture) error {
		owner := new(int) // held, like an upload's, until the test ends
		_, err := f.blobs.Put(context.Background(), bytes.NewReader(f.data), f.pins.Holder(owner))
		return err
	}},
}

// TestCollectorStoredAgainMeanwhile: a store finds the old blob already
// there and stops right before refreshing it; a collector round runs then.
// The round must not delete the blob the store is about to report stored:
// it waits for the store (the blob's lock) and then sees a fresh blob.
func TestCollectorStoredAgainMeanwhile(t *testing.T) {
	for _, s := range gcStores {
		t.Run(s.name, func(t *testing.T) {
			f := newGCFixture(t)
			found, resume, waiting := make(chan struct{}), make(chan struct{}), make(chan struct{})
			cluster.SetTestHooks(&cluster.TestHooks{
				StoredAgain: func(h string) {
					close(found)
					<-resume
				},
				LockWait: func(h string) { close(waiting) },
			})
			stored := make(chan error, 1)
			go func() { stored <- s.store(f) }()
			<-found
			collected := make(chan struct{})
			go func() {
				defer close(collected)
				f.collect()
			}()
			select {
			case <-waiting: // the round waits for the store
			case <-collected: // the round did not wait
			}
			close(resume)
			if err := <-stored; err != nil {
				t.Fatal(err)
			}
			<-collected
			f.check(t, "stored again during a collector round")
			// Later rounds keep it while it is young.
			cluster.SetTestHooks(nil)
			f.collect()
			f.check(t, "a round after it was stored again")
		})
	}
}

// TestCollectorDeletesWhileStoredAgain: the collector has decided the
// blob goes (unreferenced, unpinned, old) and a store of the same bytes
// starts right then. The store must not report a blob the delete then
// removes: it waits for the delete and stores a new copy.
func TestCollectorDeletesWhileStoredAgain(t *testing.T) {
	for _, s := range gcStores {
		t.Run(s.name, func(t *testing.T) {
			f := newGCFixture(t)
			waiting := make(chan struct{})
			cluster.SetTestHooks(&cluster.TestHooks{LockWait: func(h string) { close(waiting) }})
			stored := make(chan error, 1)
			f.c.beforeDelete = func(h string) {
				go func() { stored <- s.store(f) }()
				select {
				case <-waiting: // the store waits for the delete
				case err := <-stored: // the store did not wait
					stored <- err
				}
			}
			f.collect()
			if err := <-stored; err != nil {
				t.Fatal(err)
			}
			f.check(t, "stored while being deleted")
		})
	}
}

// storedManifests reads manifests from the blob store itself (the node's
// cache reads them from this node or a holder).
type storedManifests struct{ blobs *cluster.BlobStore }

func (m storedManifests) Get(ctx context.Context, ref cluster.BlobRef) (*cluster.Manifest, error) {
	f, err := m.blobs.Open(ref.Hash)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	return cluster.DecodeManifest(b)
}
