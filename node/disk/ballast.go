package disk

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// The raft reserve is held by a ballast: a file of its size beside the
// raft log, allocated while the volume has room. Media cannot take those
// bytes whatever they do: a task's ffmpeg writes without asking, and a
// volume shared with something else fills without gosty's say. When the
// volume is all but full (free space under a few percent of the reserve)
// the ballast is deleted, and the raft log and snapshots have the whole
// reserve to write into while the node is Full and takes no media; once
// there is room for it again above both reserves, it is made again. (A
// node's log writes stop only for the moment between the volume filling
// and the next look, every watch interval.)

// ballastLow is the share of the raft reserve below which free space
// releases the ballast.
const ballastLow = 8

// AttachBallast names the ballast file (in the raft directory) and counts
// one left by an earlier run as held. A raft reserve of 0 has none.
func (s *Space) AttachBallast(path string) error {
	s.mu.Lock()
	s.ballast = path
	s.mu.Unlock()
	if s.raft <= 0 { // none wanted; an old one goes
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("raft ballast: %w", err)
		}
		return nil
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("raft ballast: %w", err)
	case fi.Size() != s.raft: // another --raft-reserve: made again at its size
		return os.Remove(path)
	}
	s.held.Store(fi.Size())
	return nil
}

// Ballast events TendBallast reports.
const (
	BallastMade     = "made"
	BallastReleased = "released"
)

// TendBallast reads the volume and releases the ballast when free space is
// under ballastLow-th of the raft reserve, or makes it when the volume has
// room for it above both reserves. event is what it did ("" nothing).
func (s *Space) TendBallast() (event string, err error) {
	s.mu.Lock()
	path := s.ballast
	s.mu.Unlock()
	if path == "" || s.raft <= 0 {
		return "", nil
	}
	u, err := s.Refresh()
	if err != nil {
		return "", err
	}
	if s.held.Load() > 0 {
		if u.Avail >= s.raft/ballastLow {
			return "", nil
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("raft ballast: %w", err)
		}
		s.held.Store(0)
		s.Refresh()
		return BallastReleased, nil
	}
	if u.Avail < s.reserve.Of(u.Size)+2*s.raft {
		return "", nil
	}
	if err := makeBallast(path, s.raft); err != nil {
		os.Remove(path)
		return "", fmt.Errorf("raft ballast: %w", err)
	}
	s.held.Store(s.raft)
	s.Refresh()
	return BallastMade, nil
}

// makeBallast allocates a file of size bytes (fallocate, or zeros where
// the file system has no fallocate) and syncs it.
func makeBallast(path string, size int64) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	err = syscall.Fallocate(int(f.Fd()), 0, 0, size)
	if errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) {
		_, err = io.Copy(f, io.LimitReader(zeroReader{}, size))
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
