package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"

	"github.com/gosty/gosty/cluster/peerproto"
	"github.com/prometheus/client_golang/prometheus"
)

// Open returns a seekable reader over a remote blob without storing it.
// Seek only records the offset; the next Read opens a GET with
// "Range: bytes=off-" to the first holder that answers (and reopens, from
// the next holder, if a body breaks). The bytes are not verified: a reader
// that starts anywhere cannot hash the whole. Not safe for concurrent use.
func (p *Peers) Open(ctx context.Context, ref BlobRef, holders []string) (io.ReadSeekCloser, error) {
	if !ValidHash(ref.Hash) || ref.Size < 0 {
		return nil, fmt.Errorf("open remote blob %s: %w: not a valid blob ref", ref.Hash, ErrInvalid)
	}
	if len(holders) == 0 {
		return nil, fmt.Errorf("open remote blob %s: %w: no holder", ref.Hash, ErrNotFound)
	}
	return &remoteBlob{
		p: p, ctx: ctx, ref: ref, holders: append([]string(nil), holders...),
		counter: p.transfer.WithLabelValues(peerproto.DirectionIn, peerproto.ReasonServe),
	}, nil
}

type remoteBlob struct {
	p       *Peers
	ctx     context.Context
	ref     BlobRef
	holders []string
	counter prometheus.Counter

	off     int64
	body    io.ReadCloser
	next    int // holder to try first when (re)opening
	retries int // reopenings since the last successful read
	closed  bool
}

const maxRemoteReopen = 3

func (r *remoteBlob) Read(b []byte) (int, error) {
	if r.closed {
		return 0, os.ErrClosed
	}
	if r.off >= r.ref.Size {
		return 0, io.EOF
	}
	if len(b) == 0 {
		return 0, nil
	}
	for {
		if r.body == nil {
			if err := r.open(); err != nil {
				return 0, err
			}
		}
		if left := r.ref.Size - r.off; int64(len(b)) > left {
			b = b[:left]
		}
		n, err := r.body.Read(b)
		r.off += int64(n)
		if n > 0 {
			r.counter.Add(float64(n))
			r.retries = 0
		}
		if err == nil || r.off >= r.ref.Size {
			if r.off >= r.ref.Size {
				r.dropBody()
			}
			return n, nil
		}
		// The body ended or broke before the blob's end.
		r.dropBody()
		if n > 0 {
			return n, nil // reopen at the next Read
		}
		if cerr := r.ctx.Err(); cerr != nil {
			return 0, cerr
		}
		r.retries++
		if r.retries > maxRemoteReopen {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, fmt.Errorf("read remote blob %s at %d: %w", r.ref.Hash, r.off, err)
		}
		r.next = (r.next + 1) % len(r.holders)
	}
}

// open starts a GET at r.off from the first holder that answers.
func (r *remoteBlob) open() error {
	var errs []error
	absent := 0
	for k := range r.holders {
		i := (r.next + k) % len(r.holders)
		body, status, err := r.get(r.holders[i])
		if err == nil {
			r.body, r.next = body, i
			return nil
		}
		if cerr := r.ctx.Err(); cerr != nil {
			return cerr
		}
		if status == http.StatusNotFound {
			absent++
		}
		errs = append(errs, fmt.Errorf("%s: %w", r.holders[i], err))
	}
	if absent == len(r.holders) {
		return fmt.Errorf("open remote blob %s: %w: no holder has it", r.ref.Hash, ErrNotFound)
	}
	return fmt.Errorf("open remote blob %s at %d: %w", r.ref.Hash, r.off, errors.Join(errs...))
}

func (r *remoteBlob) get(holder string) (io.ReadCloser, int, error) {
	req, err := r.p.newRequest(r.ctx, http.MethodGet, holder, peerproto.PathBlob+r.ref.Hash, peerproto.ReasonServe, nil)
	if err != nil {
		return nil, 0, err
	}
	if r.off > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(r.off, 10)+"-")
	}
	resp, err := r.p.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	switch {
	case resp.StatusCode == http.StatusOK && r.off == 0:
		if resp.ContentLength >= 0 && resp.ContentLength != r.ref.Size {
			resp.Body.Close()
			return nil, resp.StatusCode, fmt.Errorf("%w: holder sends %d bytes, want %d", ErrInvalid, resp.ContentLength, r.ref.Size)
		}
		return resp.Body, resp.StatusCode, nil
	case resp.StatusCode == http.StatusPartialContent:
		start, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != r.off || total != r.ref.Size {
			resp.Body.Close()
			return nil, resp.StatusCode, fmt.Errorf("%w: unexpected Content-Range %q", ErrInvalid, resp.Header.Get("Content-Range"))
		}
		return resp.Body, resp.StatusCode, nil
	case resp.StatusCode == http.StatusOK:
		resp.Body.Close()
		return nil, resp.StatusCode, errors.New("holder ignored the Range header")
	}
	defer resp.Body.Close()
	return nil, resp.StatusCode, responseError(resp)
}

func (r *remoteBlob) dropBody() {
	if r.body != nil {
		r.body.Close()
		r.body = nil
	}
}

func (r *remoteBlob) Seek(offset int64, whence int) (int64, error) {
	if r.closed {
		return 0, os.ErrClosed
	}
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.off + offset
	case io.SeekEnd:
		abs = r.ref.Size + offset
	default:
		return 0, errors.New("seek: invalid whence")
	}
	if abs < 0 {
		return 0, errors.New("seek: negative position")
	}
	if abs != r.off {
		r.dropBody()
		r.off = abs
	}
	return abs, nil
}

func (r *remoteBlob) Close() error {
	r.dropBody()
	r.closed = true
	return nil
}
