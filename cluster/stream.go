package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gosty/gosty/cluster/peerproto"
)

// Streaming a blob whose address is not known yet: an upload is copied to
// other nodes while it still comes in, so that once its last byte is here
// the copies are too (see node's acknowledged uploads). The body is a
// chunked POST to peerproto.PathStream; the blob's size and sha256 follow
// the bytes as HTTP trailers (peerproto.HeaderSize, HeaderHash), and the
// receiver installs the blob only if what it read matches them. A body
// that ends early (the sender gave up) lacks the trailers and is refused,
// so nothing is stored.

// errStalled ends a stream whose receiver took no bytes for its stall
// bound.
var errStalled = errors.New("the receiver took no bytes")

// BlobStream is one blob on its way to one peer. Write feeds it (from one
// goroutine) and Close ends it with the blob's ref and waits for the
// peer's verdict; Abort gives up. Whatever happens, the request ends by
// Close or Abort.
type BlobStream struct {
	to     string
	pw     *io.PipeWriter
	pr     *io.PipeReader
	req    *http.Request
	cancel context.CancelFunc
	stall  time.Duration
	timer  *time.Timer
	done   chan struct{}
	err    error // the peer's verdict; set before done is closed

	mu     sync.Mutex
	failed error // the first write error; later writes return it
}

// Stream opens a streamed copy to the peer at internal address to. Each
// Write waits until the peer takes its bytes, at most stall (then the
// stream fails with an error, and so do later writes): a slow peer slows
// the writer, a stopped one is given up.
func (p *Peers) Stream(ctx context.Context, to, reason string, stall time.Duration) (*BlobStream, error) {
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	counter := p.transfer.WithLabelValues(peerproto.DirectionOut, peerproto.TransferReason(reason))
	req, err := p.newRequest(ctx, http.MethodPost, to, peerproto.PathStream, reason, peerproto.CountingReader{R: pr, C: counter})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("stream to %s: %w", to, err)
	}
	req.ContentLength = -1 // chunked: the trailers follow the body
	req.Header.Set("Content-Type", "application/octet-stream")
	// The values are filled in place by Close: the transport may read the
	// map (its keys) while the body streams, so it is never written to.
	req.Trailer = http.Header{peerproto.HeaderSize: {""}, peerproto.HeaderHash: {""}}
	s := &BlobStream{to: to, pw: pw, pr: pr, req: req, cancel: cancel, stall: stall, done: make(chan struct{})}
	s.timer = time.AfterFunc(time.Hour, func() { s.fail(errStalled) })
	s.timer.Stop()
	go func() {
		defer close(s.done)
		resp, err := p.client.Do(req)
		if err != nil {
			s.err = err
		} else {
			if resp.StatusCode != http.StatusCreated {
				s.err = responseError(resp)
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		// A peer that answered (or failed) before the body ended takes no
		// more: writes must not block on it.
		if s.err != nil {
			pr.CloseWithError(s.err)
		} else {
			pr.CloseWithError(errors.New("the peer answered before the stream ended"))
		}
	}()
	return s, nil
}

// To is the peer's internal address.
func (s *BlobStream) To() string { return s.to }

// Write hands bytes to the peer, waiting at most the stall bound.
func (s *BlobStream) Write(b []byte) (int, error) {
	s.mu.Lock()
	failed := s.failed
	s.mu.Unlock()
	if failed != nil {
		return 0, failed
	}
	s.timer.Reset(s.stall)
	n, err := s.pw.Write(b)
	s.timer.Stop()
	if err != nil {
		s.fail(err)
		s.mu.Lock()
		err = s.failed
		s.mu.Unlock()
		return n, fmt.Errorf("stream to %s: %w", s.to, err)
	}
	return n, nil
}

// fail ends the stream with err (the first error is kept).
func (s *BlobStream) fail(err error) {
	s.mu.Lock()
	if s.failed == nil {
		s.failed = err
	}
	s.mu.Unlock()
	s.pw.CloseWithError(err)
	s.cancel()
}

// Abort gives the stream up; the peer stores nothing.
func (s *BlobStream) Abort() {
	s.fail(errors.New("stream aborted"))
	<-s.done
}

// Close ends the body with ref's size and hash and waits, until ctx ends,
// for the peer to say it stored the blob (fsynced, verified). An error
// means the peer may not have it; the stream is then aborted.
func (s *BlobStream) Close(ctx context.Context, ref BlobRef) error {
	s.mu.Lock()
	failed := s.failed
	s.mu.Unlock()
	if failed != nil {
		s.Abort()
		return fmt.Errorf("stream %s to %s: %w", ref.Hash, s.to, failed)
	}
	// The transport reads the trailers' values once the body has ended,
	// which the pipe's Close orders after these writes.
	s.req.Trailer[peerproto.HeaderSize][0] = strconv.FormatInt(ref.Size, 10)
	s.req.Trailer[peerproto.HeaderHash][0] = ref.Hash
	s.pw.Close()
	select {
	case <-s.done:
	case <-ctx.Done():
		s.fail(ctx.Err())
		<-s.done
		return fmt.Errorf("stream %s to %s: %w", ref.Hash, s.to, ctx.Err())
	}
	s.cancel()
	if s.err != nil {
		return fmt.Errorf("stream %s to %s: %w", ref.Hash, s.to, s.err)
	}
	return nil
}
