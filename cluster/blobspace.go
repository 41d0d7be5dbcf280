package cluster

import (
	"io"
)

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
