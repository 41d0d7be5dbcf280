package node

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sync"

	"github.com/gosty/gosty/cluster"
)

// A done job's published files are listed in its manifest blob (see
// cluster.Manifest), read whenever one of its files is served or its chunks
// are shown. Manifests are immutable, so parsed ones are kept by hash,
// least recently used out first, up to maxManifestFiles files in all (a
// 24-hour job's manifest lists a quarter of a million).
const (
	maxManifestFiles = 2_000_000
	maxManifestBytes = cluster.MaxManifestBytes // refuse to read a larger manifest blob
)

type manifestCache struct {
	open func(ctx context.Context, ref, set cluster.BlobRef) (io.ReadSeekCloser, error)

	mu    sync.Mutex
	max   int
	files int
	lru   *list.List // of *manifestEntry, most recent first
	m     map[string]*list.Element
}

type manifestEntry struct {
	hash string
	m    *cluster.Manifest
}

func newManifestCache(open func(ctx context.Context, ref, set cluster.BlobRef) (io.ReadSeekCloser, error), maxFiles int) *manifestCache {
	return &manifestCache{open: open, max: maxFiles, lru: list.New(), m: map[string]*list.Element{}}
}

// Get returns the manifest ref names, reading it from this node or a
// holder of it (and so of every file it lists) the first time.
func (c *manifestCache) Get(ctx context.Context, ref cluster.BlobRef) (*cluster.Manifest, error) {
	c.mu.Lock()
	if e, ok := c.m[ref.Hash]; ok {
		c.lru.MoveToFront(e)
		m := e.Value.(*manifestEntry).m
		c.mu.Unlock()
		return m, nil
	}
	c.mu.Unlock()
	m, err := c.read(ctx, ref)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[ref.Hash]; !ok {
		c.m[ref.Hash] = c.lru.PushFront(&manifestEntry{hash: ref.Hash, m: m})
		c.files += len(m.Files)
		for c.files > c.max && c.lru.Len() > 1 {
			old := c.lru.Remove(c.lru.Back()).(*manifestEntry)
			delete(c.m, old.hash)
			c.files -= len(old.m.Files)
		}
	}
	return m, nil
}

func (c *manifestCache) read(ctx context.Context, ref cluster.BlobRef) (*cluster.Manifest, error) {
	if ref.Size > maxManifestBytes {
		return nil, fmt.Errorf("manifest %s is %d bytes, more than %d", ref.Hash, ref.Size, maxManifestBytes)
	}
	f, err := c.open(ctx, ref, ref)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxManifestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", ref.Hash, err)
	}
	// A proxied read is not verified on the way: the bytes are checked here.
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != ref.Hash {
		return nil, fmt.Errorf("manifest %s: content does not match its hash", ref.Hash)
	}
	m, err := cluster.DecodeManifest(b)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", ref.Hash, err)
	}
	return m, nil
}

// manifest returns a done job's manifest.
func (n *Node) manifest(ctx context.Context, j cluster.Job) (*cluster.Manifest, error) {
	if j.Manifest.IsZero() {
		return nil, fmt.Errorf("job %s: %w: no manifest", j.ID, cluster.ErrNotFound)
	}
	m, err := n.manifests.Get(ctx, j.Manifest)
	if err != nil {
		return nil, err
	}
	if m.Job != j.ID {
		return nil, fmt.Errorf("job %s: manifest %s names job %s", j.ID, j.Manifest.Hash, m.Job)
	}
	return m, nil
}
