package httpapi

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tus/tusd/v2/pkg/filestore"
	tus "github.com/tus/tusd/v2/pkg/handler"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/internal/tick"
)

// The resumable uploads' files (uploads.go has the protocol): removing an
// upload, sweeping the stale ones, and tus's file store with the node's
// disk space admitted before a byte is written.

// remove deletes an upload's files.
func (u *tusUploads) remove(id string) {
	for _, p := range []string{filepath.Join(u.dir, id), filepath.Join(u.dir, id+".info")} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			slog.Warn("removing an upload", "path", p, "err", err)
		}
	}
}

// SweepUploads deletes the resumable uploads that received nothing for the
// TTL, and forgets finished ones as old. It returns how many uploads it
// deleted.
func (a *API) SweepUploads(now time.Time) int {
	u := a.tus
	if u == nil {
		return 0
	}
	u.mu.Lock()
	for id, r := range u.results {
		if now.Sub(r.at) > u.ttl {
			delete(u.results, id)
		}
	}
	u.mu.Unlock()
	entries, err := os.ReadDir(u.dir)
	if err != nil {
		a.log.Warn("sweeping uploads", "err", err)
		return 0
	}
	n := 0
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".info")
		if !ok {
			continue
		}
		last := time.Time{}
		for _, p := range []string{id, id + ".info"} {
			if st, err := os.Stat(filepath.Join(u.dir, p)); err == nil && st.ModTime().After(last) {
				last = st.ModTime()
			}
		}
		if now.Sub(last) <= u.ttl {
			continue
		}
		u.mu.Lock()
		busy := u.finishMu[id] != nil
		u.mu.Unlock()
		if busy {
			continue
		}
		u.remove(id)
		a.log.Info("stale resumable upload deleted", "upload", id, "idle", now.Sub(last).Round(time.Second).String())
		n++
	}
	return n
}

// RunUploadSweeper sweeps stale resumable uploads every interval (at most
// an hour, at least a minute, a tenth of the TTL) until ctx ends.
func (a *API) RunUploadSweeper(ctx context.Context) {
	if a.tus == nil {
		return
	}
	every := min(max(a.tus.ttl/10, time.Minute), time.Hour)
	a.SweepUploads(time.Now())
	tick.Every(ctx, every, func() { a.SweepUploads(time.Now()) })
}

// spaceBody admits the bytes of a resumable upload's body before tus writes
// them; a chunk that does not fit ends the body with a 507 tus error (tus
// keeps what it wrote before, and its offset says so: the client resumes
// from there once the node has room, or another node takes the file).
type spaceBody struct {
	io.ReadCloser
	space Space
}

func (b *spaceBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		if terr := b.space.Take(int64(n)); terr != nil {
			return 0, noSpaceTusError(terr) // these bytes are dropped, never written
		}
	}
	return n, err
}

func noSpaceTusError(err error) tus.Error {
	return tusError(http.StatusInsufficientStorage, "insufficient_storage", noSpaceMessage(err))
}

// spaceStore is tus's file store with a write that fails for lack of space
// (ENOSPC from the file system itself) answered 507, as writeError would,
// rather than tus's 500.
type spaceStore struct{ filestore.FileStore }

func (s spaceStore) NewUpload(ctx context.Context, info tus.FileInfo) (tus.Upload, error) {
	up, err := s.FileStore.NewUpload(ctx, info)
	if err != nil {
		return nil, mapNoSpace(err)
	}
	return spaceUpload{up}, nil
}

func (s spaceStore) GetUpload(ctx context.Context, id string) (tus.Upload, error) {
	up, err := s.FileStore.GetUpload(ctx, id)
	if err != nil {
		return nil, err
	}
	return spaceUpload{up}, nil
}

func (s spaceStore) AsTerminatableUpload(up tus.Upload) tus.TerminatableUpload {
	if su, ok := up.(spaceUpload); ok {
		up = su.Upload
	}
	return s.FileStore.AsTerminatableUpload(up)
}

type spaceUpload struct{ tus.Upload }

func (u spaceUpload) WriteChunk(ctx context.Context, offset int64, src io.Reader) (int64, error) {
	n, err := u.Upload.WriteChunk(ctx, offset, src)
	return n, mapNoSpace(err)
}

func mapNoSpace(err error) error {
	var te tus.Error
	if err == nil || errors.As(err, &te) || !cluster.IsNoSpace(err) {
		return err
	}
	return noSpaceTusError(err)
}
