package cluster

// The blob store as the collector and the check use it: ages, deleting
// under the blob's lock (so a concurrent store or pin is never lost), and
// listing every stored blob.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

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
	_, err := b.DeleteIf(h, func(time.Time) bool { return true })
	return err
}

// DeleteIf removes the blob h if may, called with its modification time,
// says so; deleted reports that it did. The whole of it, may included, runs
// under the blob's lock: no store of h runs meanwhile, so a store either
// came before (and may sees the time it refreshed, and any Hold it took) or
// comes after (and finds the blob gone and writes it). may must not store
// or delete blobs itself. A missing blob is not an error.
func (b *BlobStore) DeleteIf(h string, may func(modTime time.Time) bool) (deleted bool, err error) {
	p, err := b.Path(h)
	if err != nil {
		return false, err
	}
	unlock := b.lock(h)
	defer unlock()
	fi, err := os.Stat(p)
	if err != nil {
		return false, nil
	}
	if !may(fi.ModTime()) {
		return false, nil
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("delete blob %s: %w", h, err)
	}
	b.bytes.Add(-fi.Size())
	return true, nil
}

// DeleteIfSame deletes the blob h only if its file is still was (the one a
// caller read and found damaged): a good copy installed meanwhile stays.
// deleted says whether it went.
func (b *BlobStore) DeleteIfSame(h string, was os.FileInfo) (deleted bool, err error) {
	p, err := b.Path(h)
	if err != nil {
		return false, err
	}
	unlock := b.lock(h)
	defer unlock()
	cur, err := os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("delete blob %s: %w", h, err)
	}
	// An inode number can be reused by the file that replaced it; the
	// modification time and size tell the two apart.
	if !os.SameFile(cur, was) || !cur.ModTime().Equal(was.ModTime()) || cur.Size() != was.Size() {
		return false, nil
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("delete blob %s: %w", h, err)
	}
	b.bytes.Add(-cur.Size())
	return true, nil
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
