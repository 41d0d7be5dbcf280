package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// BlobStore keeps media as content-addressed files under one directory:
// blobs/<first two hex digits>/<sha256>. Nothing a user sends ever becomes a
// path here; only a validated hash does.
//
// Every blob is written to a temp file, fsynced, hashed and then renamed into
// place, so a crash leaves either a whole, correctly named blob or a temp
// file that the next open removes.
//
// Storing bytes that are already here (the same file uploaded again, an
// init segment two jobs share) refreshes the blob's modification time: a
// collector's grace period counts from the last time anyone stored it.
type BlobStore struct {
	dir   string
	tmp   string
	bytes atomic.Int64 // total size of the stored blobs
	space atomic.Pointer[spaceBox]

	mu       sync.Mutex
	stored   map[string]bool // stored since the last Stored call
	overflow bool            // more than maxStored: Stored says so
}

// Space admits media to the volume the store is on (node/disk implements
// it); see SetSpace.
type Space interface {
	// Admit returns nil when n more bytes fit above the volume's reserves,
	// else an error wrapping ErrNoSpace.
	Admit(n int64) error
	// Take is Admit for bytes about to be written, and counts them.
	Take(n int64) error
}

type spaceBox struct{ s Space }

// SetSpace makes the store admit what it writes: Put checks every chunk
// before writing it, Receive and a pull the declared size first and then
// every chunk; a write refused, or one that fails with ENOSPC, stores
// nothing and returns an error wrapping ErrNoSpace (or the ENOSPC). PutFile
// and PutLink (a rename or a link: no new bytes) and PutBytes (a manifest)
// are never refused. nil admits everything.
func (b *BlobStore) SetSpace(s Space) {
	if s == nil {
		b.space.Store(nil)
		return
	}
	b.space.Store(&spaceBox{s})
}

// Admit says whether n more bytes fit (nil without a Space).
func (b *BlobStore) Admit(n int64) error {
	if sb := b.space.Load(); sb != nil {
		return sb.s.Admit(n)
	}
	return nil
}

// guard wraps a writer of new media so that every write is admitted first.
func (b *BlobStore) guard(w io.Writer) io.Writer {
	sb := b.space.Load()
	if sb == nil {
		return w
	}
	return spaceWriter{w: w, s: sb.s}
}

type spaceWriter struct {
	w io.Writer
	s Space
}

func (w spaceWriter) Write(p []byte) (int, error) {
	if err := w.s.Take(int64(len(p))); err != nil {
		return 0, err
	}
	return w.w.Write(p)
}

// maxStored bounds the hashes kept for Stored between two calls.
const maxStored = 100_000

// BlobInfo is a blob found on disk.
type BlobInfo struct {
	Ref     BlobRef
	ModTime time.Time
}

// OpenBlobStore opens the store in dir, creating it and removing temp files
// that a crash left behind.
func OpenBlobStore(dir string) (*BlobStore, error) {
	b := &BlobStore{dir: filepath.Join(dir, "blobs"), tmp: filepath.Join(dir, "blobs", "tmp")}
	if err := os.RemoveAll(b.tmp); err != nil {
		return nil, fmt.Errorf("open blob store: %w", err)
	}
	if err := os.MkdirAll(b.tmp, 0o750); err != nil {
		return nil, fmt.Errorf("open blob store: %w", err)
	}
	list, err := b.List()
	if err != nil {
		return nil, fmt.Errorf("open blob store: %w", err)
	}
	for _, bi := range list {
		b.bytes.Add(bi.Ref.Size)
	}
	return b, nil
}

// ValidHash reports whether h is a lower-case hex sha256.
func ValidHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	for _, c := range h {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Path is where the blob h lives (whether or not it exists).
func (b *BlobStore) Path(h string) (string, error) {
	if !ValidHash(h) {
		return "", fmt.Errorf("blob %q: %w: not a sha256", h, ErrInvalid)
	}
	return filepath.Join(b.dir, h[:2], h), nil
}

// TempDir is a directory on the same file system for work files that may
// later be moved in with PutFile.
func (b *BlobStore) TempDir() string { return b.tmp }

// Has reports whether the blob is stored here.
func (b *BlobStore) Has(h string) bool {
	p, err := b.Path(h)
	if err != nil {
		return false
	}
	_, err = os.Stat(p)
	return err == nil
}

// Open opens a stored blob for reading.
func (b *BlobStore) Open(h string) (*os.File, error) {
	p, err := b.Path(h)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", h, ErrNotFound)
	}
	return f, err
}

// Put streams r into the store and returns its ref. Size limits are the
// caller's (wrap r); a failed Put stores nothing.
func (b *BlobStore) Put(ctx context.Context, r io.Reader) (BlobRef, error) {
	f, err := os.CreateTemp(b.tmp, "put-*")
	if err != nil {
		return BlobRef{}, fmt.Errorf("put blob: %w", err)
	}
	defer os.Remove(f.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(b.guard(f), h), ctxReader{ctx, r})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return BlobRef{}, fmt.Errorf("put blob: %w", err)
	}
	ref := BlobRef{Hash: hex.EncodeToString(h.Sum(nil)), Size: n}
	return ref, b.install(f.Name(), ref.Hash)
}

// PutFile moves a finished local file (in TempDir or elsewhere on the same
// file system) into the store. The file is hashed and synced first.
func (b *BlobStore) PutFile(path string) (BlobRef, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return BlobRef{}, fmt.Errorf("put file %s: %w", path, err)
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return BlobRef{}, fmt.Errorf("put file %s: %w", path, err)
	}
	ref := BlobRef{Hash: hex.EncodeToString(h.Sum(nil)), Size: n}
	if err := b.install(path, ref.Hash); err != nil {
		return BlobRef{}, fmt.Errorf("put file %s: %w", path, err)
	}
	return ref, nil
}

// PutLink stores a copy of a finished file that stays where it is (a
// resumable upload, which its owner deletes afterwards) without copying
// its bytes: a hard link to it is moved into the store, so the blob and
// the file share their blocks. Where a link cannot be made (another file
// system) the bytes are copied, as Put does. The file must not change
// afterwards.
func (b *BlobStore) PutLink(ctx context.Context, path string) (BlobRef, error) {
	tmp := filepath.Join(b.tmp, fmt.Sprintf("link-%d-%s", time.Now().UnixNano(), filepath.Base(path)))
	if err := os.Link(path, tmp); err == nil {
		ref, err := b.PutFile(tmp)
		if err != nil {
			os.Remove(tmp)
		}
		return ref, err
	}
	f, err := os.Open(path)
	if err != nil {
		return BlobRef{}, fmt.Errorf("put %s: %w", path, err)
	}
	defer f.Close()
	return b.Put(ctx, f)
}

// install renames a synced file to its content address. If the blob already
// exists the new copy is dropped (same name, same bytes) and the stored
// one is touched.
func (b *BlobStore) install(src, hash string) error {
	dst, _ := b.Path(hash)
	if _, err := os.Stat(dst); err == nil {
		b.touch(dst)
		b.noteStored(hash)
		return os.Remove(src)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return err
	}
	if err := os.Chmod(src, 0o640); err != nil {
		return err
	}
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if err := os.Rename(src, dst); err != nil {
		return err
	}
	b.bytes.Add(fi.Size())
	b.noteStored(hash)
	return syncDir(filepath.Dir(dst))
}

func (b *BlobStore) noteStored(hash string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.stored) >= maxStored {
		b.overflow = true
		return
	}
	if b.stored == nil {
		b.stored = map[string]bool{}
	}
	b.stored[hash] = true
}

// Stored returns the blobs stored (or stored again) since the last call,
// for the collector to look at once they are old enough; all is true when
// there were too many to list and everything should be looked at.
func (b *BlobStore) Stored() (hashes []string, all bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for h := range b.stored {
		hashes = append(hashes, h)
	}
	all = b.overflow
	b.stored, b.overflow = nil, false
	return hashes, all
}

// touch sets a stored blob's modification time to now (best effort: a
// blob deleted meanwhile is simply gone).
func (b *BlobStore) touch(path string) {
	now := time.Now()
	_ = os.Chtimes(path, now, now)
}

// PutBytes stores a small blob held in memory (a manifest).
func (b *BlobStore) PutBytes(data []byte) (BlobRef, error) {
	f, err := os.CreateTemp(b.tmp, "bytes-*")
	if err != nil {
		return BlobRef{}, fmt.Errorf("put blob: %w", err)
	}
	name := f.Name()
	defer os.Remove(name)
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return BlobRef{}, fmt.Errorf("put blob: %w", err)
	}
	sum := sha256.Sum256(data)
	ref := BlobRef{Hash: hex.EncodeToString(sum[:]), Size: int64(len(data))}
	return ref, b.install(name, ref.Hash)
}

// ModTime is when a stored blob was last stored (zero and false when it
// is not here).
func (b *BlobStore) ModTime(h string) (time.Time, bool) {
	p, err := b.Path(h)
	if err != nil {
		return time.Time{}, false
	}
	fi, err := os.Stat(p)
	if err != nil {
		return time.Time{}, false
	}
	return fi.ModTime(), true
}

// Bytes is the total size of the blobs stored here.
func (b *BlobStore) Bytes() int64 { return b.bytes.Load() }

// Delete removes a blob; deleting a missing blob is not an error.
func (b *BlobStore) Delete(h string) error {
	p, err := b.Path(h)
	if err != nil {
		return err
	}
	fi, statErr := os.Stat(p)
	if err := os.Remove(p); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("delete blob %s: %w", h, err)
	}
	if statErr == nil {
		b.bytes.Add(-fi.Size())
	}
	return nil
}

// List returns every stored blob.
func (b *BlobStore) List() ([]BlobInfo, error) {
	var out []BlobInfo
	err := filepath.WalkDir(b.dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p == b.tmp {
				return filepath.SkipDir
			}
			return nil
		}
		name := d.Name()
		if !ValidHash(name) || !strings.HasPrefix(name, filepath.Base(filepath.Dir(p))) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil // removed while walking
		}
		out = append(out, BlobInfo{Ref: BlobRef{Hash: name, Size: fi.Size()}, ModTime: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list blobs: %w", err)
	}
	return out, nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Stat reports the ref of a stored blob (its size from disk) and whether it
// is stored here.
func (b *BlobStore) Stat(hash string) (BlobRef, bool) {
	p, err := b.Path(hash)
	if err != nil {
		return BlobRef{}, false
	}
	fi, err := os.Stat(p)
	if err != nil || !fi.Mode().IsRegular() {
		return BlobRef{}, false
	}
	return BlobRef{Hash: hash, Size: fi.Size()}, true
}

// Receive stores the blob want, streamed from r: into a temp file, checked
// against want's size and sha256, fsynced, then installed. A blob that does
// not match (fewer or more bytes, other content) is an error wrapping
// ErrInvalid and nothing is stored; a read error from r is returned wrapped
// as it is. If the blob is already stored, nothing is read.
func (b *BlobStore) Receive(ctx context.Context, want BlobRef, r io.Reader) error {
	if !ValidHash(want.Hash) || want.Size < 0 {
		return fmt.Errorf("receive blob %q (%d bytes): %w: not a valid blob ref", want.Hash, want.Size, ErrInvalid)
	}
	if p, _ := b.Path(want.Hash); b.Has(want.Hash) {
		b.touch(p)
		b.noteStored(want.Hash)
		return nil
	}
	if err := b.Admit(want.Size); err != nil {
		return fmt.Errorf("receive blob %s: %w", want.Hash, err)
	}
	f, err := os.CreateTemp(b.tmp, "recv-*")
	if err != nil {
		return fmt.Errorf("receive blob %s: %w", want.Hash, err)
	}
	defer os.Remove(f.Name()) // a no-op once installed
	limit := want.Size + 1    // one byte more than expected exposes a longer body
	if limit < 0 {
		limit = want.Size
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(b.guard(f), h), io.LimitReader(ctxReader{ctx, r}, limit))
	if err != nil {
		f.Close()
		return fmt.Errorf("receive blob %s: %w", want.Hash, err)
	}
	if n != want.Size {
		f.Close()
		if n > want.Size {
			return fmt.Errorf("receive blob %s: %w: more than the expected %d bytes", want.Hash, ErrInvalid, want.Size)
		}
		return fmt.Errorf("receive blob %s: %w: got %d bytes, want %d", want.Hash, ErrInvalid, n, want.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want.Hash {
		f.Close()
		return fmt.Errorf("receive blob %s: %w: checksum mismatch (content hashes to %s)", want.Hash, ErrInvalid, got)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = b.install(f.Name(), want.Hash)
	}
	if err != nil {
		return fmt.Errorf("receive blob %s: %w", want.Hash, err)
	}
	return nil
}
