package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/internal/tick"
)

// What the log says a node holds must be what its disk holds. Three checks
// keep the two in step:
//
//   - At start (once the node is in the cluster), replica.Reconcile
//     (cluster/replica) walks the records that name this node and drops
//     the claims its disk cannot confirm (a file gone, a manifest missing
//     a file), and reports the referenced blobs it has that the log does
//     not know of.
//   - A local copy is checked against its hash the first time it is read
//     (served or used by a task) since the node started or stored it:
//     before use when it is small, while it streams when it is large. A
//     copy that fails is deleted and its claim dropped; the reader gets the
//     bytes from another holder, and replication makes a new copy.
//   - The scrubber re-hashes every local blob every --scrub-interval at
//     most --scrub-rate bytes a second, and treats what fails the same way.
type checker struct {
	n      *Node
	logger *slog.Logger

	mu       sync.Mutex
	verified map[string]time.Time // hash → modification time it was verified at
}

// maxVerified bounds the verified-copies cache; past it the oldest
// entries are dropped and those copies are checked again on their next
// read.
const maxVerified = 200_000

// verifyBeforeUse is the largest blob checked in full before it is used;
// larger ones are checked as they stream (serving) or by the scrubber.
const verifyBeforeUse = 64 << 20

func newChecker(n *Node, logger *slog.Logger) *checker {
	return &checker{n: n, logger: logger, verified: map[string]time.Time{}}
}

// ok reports whether a local copy was verified and has not changed since.
func (c *checker) ok(hash string) bool {
	mt, ok := c.n.blobs.ModTime(hash)
	if !ok {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	at, seen := c.verified[hash]
	return seen && at.Equal(mt)
}

func (c *checker) mark(hash string) {
	mt, ok := c.n.blobs.ModTime(hash)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.verified) >= maxVerified {
		for h := range c.verified { // any will do: they are checked again when read
			delete(c.verified, h)
			if len(c.verified) < maxVerified*9/10 {
				break
			}
		}
	}
	c.verified[hash] = mt
}

// verify hashes a local copy (limited to lim bytes a second when lim is
// not nil). A mismatch deletes the copy and drops this node's claims to it
// (and to the manifests that list it) and returns an error.
func (c *checker) verify(ctx context.Context, ref cluster.BlobRef, lim *rate.Limiter) error {
	f, err := c.n.blobs.Open(ref.Hash)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("verify %s: %w", ref.Hash, err)
	}
	h := sha256.New()
	var r io.Reader = f
	if lim != nil {
		r = &limitedReader{ctx: ctx, r: f, lim: lim}
	}
	n, err := io.Copy(h, r)
	f.Close()
	if err != nil {
		return fmt.Errorf("verify %s: %w", ref.Hash, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != ref.Hash || (ref.Size > 0 && n != ref.Size) {
		c.bad(ctx, ref.Hash, fi, fmt.Sprintf("content hashes to %s, %d bytes", got, n))
		return fmt.Errorf("blob %s: %w: the local copy is damaged", ref.Hash, cluster.ErrNotFound)
	}
	c.mark(ref.Hash)
	return nil
}

// bad drops a damaged local copy.
//
// file is the damaged file as it was read: a good copy stored under the
// same name meanwhile (a push that replaced it) is neither deleted nor
// disowned.
func (c *checker) bad(ctx context.Context, hash string, file os.FileInfo, why string) {
	c.n.metrics.damaged.Inc()
	deleted, err := c.n.blobs.DeleteIfSame(hash, file)
	if err != nil {
		c.logger.Warn("deleting a damaged blob", "blob", hash, "err", err)
	}
	if !deleted && err == nil {
		c.logger.Warn("damaged blob already replaced or removed", "blob", hash, "why", why)
		return
	}
	c.logger.Error("damaged blob: deleted the local copy", "blob", hash, "why", why)
	c.mu.Lock()
	delete(c.verified, hash)
	c.mu.Unlock()
	for _, claim := range c.claimsOn(hash) {
		if err := c.n.log.Propose(ctx, cluster.OpBlobRemove, cluster.BlobLocation{Blob: claim, Node: c.n.cfg.Name}); err != nil {
			c.logger.Warn("dropping the claim to a damaged blob", "blob", claim.Hash, "err", err)
		}
	}
}

// disown drops this node's claim to a blob it no longer has.
func (c *checker) disown(ctx context.Context, ref cluster.BlobRef) {
	if c.n.blobs.Has(ref.Hash) {
		return
	}
	c.logger.Warn("a blob the log says is here is gone: dropping the claim", "blob", ref.Hash)
	if err := c.n.log.Propose(ctx, cluster.OpBlobRemove, cluster.BlobLocation{Blob: ref, Node: c.n.cfg.Name}); err != nil {
		c.logger.Warn("dropping the claim to a lost blob", "blob", ref.Hash, "err", err)
	}
}

// claimsOn lists the records that say this node holds hash: its own, and
// those of the manifests held here that list it.
func (c *checker) claimsOn(hash string) []cluster.BlobRef {
	var out, sets []cluster.BlobRef
	self := c.n.cfg.Name
	c.n.store.FSM().Read(func(st *cluster.State) {
		if b, ok := st.Blob(hash); ok && b.Nodes.Has(self) {
			out = append(out, b.Ref())
		}
		st.Sets(func(b *cluster.BlobHolders) bool {
			if b.Nodes.Has(self) {
				sets = append(sets, b.Ref())
			}
			return true
		})
	})
	for _, s := range sets {
		if s.Hash == hash {
			continue
		}
		if m, err := c.n.manifests.Get(context.Background(), s); err == nil {
			for _, f := range m.Files {
				if f.Hash == hash {
					out = append(out, s)
					break
				}
			}
		}
	}
	return out
}

// open returns a local copy for reading, checked: a small one in full
// first, a large one as it is read (the reader fails at its end, and the
// copy is dropped, when the bytes do not match). ok false: no usable local
// copy (absent or damaged).
func (c *checker) open(ctx context.Context, ref cluster.BlobRef) (io.ReadSeekCloser, bool) {
	f, err := c.n.blobs.Open(ref.Hash)
	if err != nil {
		return nil, false
	}
	if c.ok(ref.Hash) {
		return f, true
	}
	fi, err := f.Stat()
	if err != nil || (ref.Size > 0 && fi.Size() != ref.Size) {
		f.Close()
		if err == nil {
			c.bad(ctx, ref.Hash, fi, fmt.Sprintf("%d bytes, the log says %d", fi.Size(), ref.Size))
		}
		return nil, false
	}
	if fi.Size() <= verifyBeforeUse {
		f.Close()
		if c.verify(ctx, ref, nil) != nil {
			return nil, false
		}
		f, err = c.n.blobs.Open(ref.Hash)
		return f, err == nil
	}
	return &checkedFile{File: f, c: c, ref: ref, h: sha256.New()}, true
}

// checkedFile hashes what is read from the start in order; at the end of
// an in-order read it checks the hash. A seek ends the check (the
// scrubber checks the copy later).
type checkedFile struct {
	*os.File
	c   *checker
	ref cluster.BlobRef
	h   interface {
		io.Writer
		Sum([]byte) []byte
	}
	n       int64
	skipped bool
}

func (f *checkedFile) Read(p []byte) (int, error) {
	n, err := f.File.Read(p)
	if !f.skipped {
		f.h.Write(p[:n])
		f.n += int64(n)
		if errors.Is(err, io.EOF) && f.n == f.ref.Size {
			if hex.EncodeToString(f.h.Sum(nil)) != f.ref.Hash {
				if fi, err := f.File.Stat(); err == nil {
					f.c.bad(context.Background(), f.ref.Hash, fi, "damaged: found while serving it")
				}
				return n, fmt.Errorf("blob %s: the local copy is damaged", f.ref.Hash)
			}
			f.c.mark(f.ref.Hash)
		}
	}
	return n, err
}

func (f *checkedFile) Seek(off int64, whence int) (int64, error) {
	pos, err := f.File.Seek(off, whence)
	if err == nil && pos != f.n {
		f.skipped = true
	}
	return pos, err
}

type limitedReader struct {
	ctx context.Context
	r   io.Reader
	lim *rate.Limiter
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if len(p) > l.lim.Burst() {
		p = p[:l.lim.Burst()]
	}
	n, err := l.r.Read(p)
	if n > 0 {
		if werr := l.lim.WaitN(l.ctx, n); werr != nil {
			return n, werr
		}
	}
	return n, err
}

// scrub re-hashes every local blob every interval at a bounded rate.
func (c *checker) scrub(ctx context.Context, interval time.Duration, bytesPerSecond int64) {
	if interval <= 0 || bytesPerSecond <= 0 {
		return
	}
	lim := rate.NewLimiter(rate.Limit(bytesPerSecond), int(min(bytesPerSecond, 1<<20)))
	tick.Every(ctx, interval, func() {
		list, err := c.n.blobs.List()
		if err != nil {
			c.logger.Warn("scrub: listing blobs", "err", err)
			return
		}
		start, bad := time.Now(), 0
		for _, bi := range list {
			if ctx.Err() != nil {
				return
			}
			if err := c.verify(ctx, bi.Ref, lim); err != nil && errors.Is(err, cluster.ErrNotFound) {
				bad++
			}
		}
		level := slog.LevelDebug
		if bad > 0 {
			level = slog.LevelWarn
		}
		c.logger.Log(ctx, level, "scrubbed the blob store", "blobs", len(list), "damaged", bad, "seconds", time.Since(start).Seconds())
	})
}

// peerBlobs is the blob store as the internal API sees it: a push of a
// blob that is here but not verified since it was stored checks the local
// copy first, so a damaged one is replaced rather than kept (the store
// skips a blob it already has).
type peerBlobs struct {
	*cluster.BlobStore
	check *checker
}

func (p peerBlobs) Receive(ctx context.Context, want cluster.BlobRef, r io.Reader) error {
	if p.Has(want.Hash) && !p.check.ok(want.Hash) {
		_ = p.check.verify(ctx, want, nil) // a damaged copy is deleted
	}
	return p.BlobStore.Receive(ctx, want, r)
}

// PutChecked, for a blob streamed here, does the same once the bytes
// have named the blob, before they are installed.
func (p peerBlobs) PutChecked(ctx context.Context, r io.Reader, check func(cluster.BlobRef) error, hold ...cluster.Hold) (cluster.BlobRef, error) {
	return p.BlobStore.PutChecked(ctx, r, func(ref cluster.BlobRef) error {
		if check != nil {
			if err := check(ref); err != nil {
				return err
			}
		}
		if p.Has(ref.Hash) && !p.check.ok(ref.Hash) {
			_ = p.check.verify(ctx, ref, nil) // a damaged copy is deleted
		}
		return nil
	}, hold...)
}
