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
// A blob's modification time is when it was last stored: installing one
// sets it to now, and storing bytes that are already here (the same file
// uploaded again, an init segment two jobs share, a push or pull of a copy
// this node has) refreshes it instead of writing, so a collector's grace
// period counts from the last time anyone stored the blob.
//
// Storing a blob and deleting it exclude each other: both hold the blob's
// lock (one of 256, by the hash's first byte) from the moment they look at
// the file to the moment they are done with it. A store that finds the
// blob present refreshes it before anyone may delete it, or finds it gone
// and writes a new copy; DeleteIf decides on the modification time it sees
// under that lock, and a Hold (a caller's pin) is taken under it too, so
// a collector never sees a blob stored but neither fresh nor pinned.
type BlobStore struct {
	dir   string
	tmp   string
	bytes atomic.Int64 // total size of the stored blobs
	locks [256]sync.Mutex
	space atomic.Pointer[spaceBox]

	mu       sync.Mutex
	stored   map[string]bool // stored since the last Stored call
	overflow bool            // more than maxStored: Stored says so
}

// Hold is told the hash of a blob being stored, under the blob's lock and
// before the store returns: a caller pins there what it stores (until the
// command that names the blob is applied), so that the pin is in place
// before any collector can see the blob.
type Hold func(hash string)

// lock takes the lock of a valid hash's blob and returns its unlock.
func (b *BlobStore) lock(hash string) func() {
	mu := &b.locks[hexDigit(hash[0])<<4|hexDigit(hash[1])]
	if !mu.TryLock() {
		hookLockWait(hash)
		mu.Lock()
	}
	return mu.Unlock
}

func hexDigit(c byte) int {
	if c >= 'a' {
		return int(c-'a') + 10
	}
	return int(c - '0')
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
// caller's (wrap r); a failed Put stores nothing. hold (at most one) is
// told the hash under the blob's lock (see Hold).
func (b *BlobStore) Put(ctx context.Context, r io.Reader, hold ...Hold) (BlobRef, error) {
	return b.PutChecked(ctx, r, nil, hold...)
}

// PutChecked is Put for bytes whose address is learnt only once they have
// all arrived (a copy streamed by a peer while its upload is still
// coming in): check, when set, is given the ref of what was read, fsynced
// but not yet installed, and an error from it stores nothing.
func (b *BlobStore) PutChecked(ctx context.Context, r io.Reader, check func(BlobRef) error, hold ...Hold) (BlobRef, error) {
	f, err := os.CreateTemp(b.tmp, "put-*")
	if err != nil {
		return BlobRef{}, fmt.Errorf("put blob: %w", err)
	}
	defer os.Remove(f.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(b.guard(f), h), ctxReader{ctx, r})
	err = syncClose(f, err)
	if err != nil {
		return BlobRef{}, fmt.Errorf("put blob: %w", err)
	}
	ref := BlobRef{Hash: hex.EncodeToString(h.Sum(nil)), Size: n}
	if check != nil {
		if err := check(ref); err != nil {
			return BlobRef{}, fmt.Errorf("put blob %s: %w", ref.Hash, err)
		}
	}
	return ref, b.install(f.Name(), ref.Hash, hold...)
}

// PutFile moves a finished local file (in TempDir or elsewhere on the same
// file system) into the store. The file is hashed and synced first. hold
// is as for Put.
func (b *BlobStore) PutFile(path string, hold ...Hold) (BlobRef, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return BlobRef{}, fmt.Errorf("put file %s: %w", path, err)
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	err = syncClose(f, err)
	if err != nil {
		return BlobRef{}, fmt.Errorf("put file %s: %w", path, err)
	}
	ref := BlobRef{Hash: hex.EncodeToString(h.Sum(nil)), Size: n}
	if err := b.install(path, ref.Hash, hold...); err != nil {
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
func (b *BlobStore) PutLink(ctx context.Context, path string, hold ...Hold) (BlobRef, error) {
	tmp := filepath.Join(b.tmp, fmt.Sprintf("link-%d-%s", time.Now().UnixNano(), filepath.Base(path)))
	if err := os.Link(path, tmp); err == nil {
		ref, err := b.PutFile(tmp, hold...)
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
	return b.Put(ctx, f, hold...)
}

// install renames a synced file to its content address, under the blob's
// lock, with the modification time set to now. If the blob already exists
// the new copy is dropped (same name, same bytes) and the stored one is
// refreshed instead.
func (b *BlobStore) install(src, hash string, hold ...Hold) error {
	dst, _ := b.Path(hash)
	added, err := b.installLocked(src, dst, hash, hold)
	if err != nil || !added {
		return err
	}
	return syncDir(filepath.Dir(dst))
}

func (b *BlobStore) installLocked(src, dst, hash string, hold []Hold) (added bool, err error) {
	unlock := b.lock(hash)
	defer unlock()
	for _, h := range hold {
		h(hash)
	}
	if present, err := b.refreshLocked(dst, hash); present || err != nil {
		if err != nil {
			return false, err
		}
		return false, os.Remove(src)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return false, err
	}
	if err := os.Chmod(src, 0o640); err != nil {
		return false, err
	}
	// Written a while ago maybe (a long upload, its fsync, a task's
	// output hashed first): stored now.
	now := time.Now()
	if err := os.Chtimes(src, now, now); err != nil {
		return false, err
	}
	fi, err := os.Stat(src)
	if err != nil {
		return false, err
	}
	if err := os.Rename(src, dst); err != nil {
		return false, err
	}
	b.bytes.Add(fi.Size())
	b.noteStored(hash)
	return true, nil
}

// refreshLocked, under the blob's lock, reports whether the blob is stored
// and if so sets its modification time to now: it counts as stored again.
func (b *BlobStore) refreshLocked(path, hash string) (present bool, err error) {
	if _, err := os.Stat(path); err != nil {
		return false, nil
	}
	hookStoredAgain(hash)
	now := time.Now()
	if err := os.Chtimes(path, now, now); err != nil {
		return false, fmt.Errorf("store %s again: %w", hash, err)
	}
	b.noteStored(hash)
	return true, nil
}

// refresh is refreshLocked taking the lock.
func (b *BlobStore) refresh(hash string) (present bool, err error) {
	p, err := b.Path(hash)
	if err != nil {
		return false, err
	}
	unlock := b.lock(hash)
	defer unlock()
	return b.refreshLocked(p, hash)
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

// PutBytes stores a small blob held in memory (a manifest). hold is as
// for Put.
func (b *BlobStore) PutBytes(data []byte, hold ...Hold) (BlobRef, error) {
	f, err := os.CreateTemp(b.tmp, "bytes-*")
	if err != nil {
		return BlobRef{}, fmt.Errorf("put blob: %w", err)
	}
	name := f.Name()
	defer os.Remove(name)
	_, err = f.Write(data)
	err = syncClose(f, err)
	if err != nil {
		return BlobRef{}, fmt.Errorf("put blob: %w", err)
	}
	sum := sha256.Sum256(data)
	ref := BlobRef{Hash: hex.EncodeToString(sum[:]), Size: int64(len(data))}
	return ref, b.install(name, ref.Hash, hold...)
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
	if present, err := b.refresh(want.Hash); present || err != nil {
		return err
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
	err = syncClose(f, nil)
	if err == nil {
		err = b.install(f.Name(), want.Hash)
	}
	if err != nil {
		return fmt.Errorf("receive blob %s: %w", want.Hash, err)
	}
	return nil
}

// syncClose finishes a written temp file: it syncs it unless writing
// already failed (err), and closes it; the first error wins.
func syncClose(f *os.File, err error) error {
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
