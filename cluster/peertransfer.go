package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	stdhash "hash"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gosty/gosty/cluster/peerproto"
	"github.com/prometheus/client_golang/prometheus"
)

// Moving a whole blob between nodes: Pull makes it local from its holders,
// Push sends a local one to a peer. Both verify size and sha256 (the
// receiver does, for a push) before the blob is installed.

type pullCall struct {
	done chan struct{}
	err  error
}

// maxPullAttempts bounds the GETs one Pull makes (answers "not here" from a
// holder do not count: each holder gives at most one).
const maxPullAttempts = 5

// Pull makes the blob local. If the blob is already stored it only
// refreshes it (as a store of the same bytes does); otherwise it tries each
// holder (internal host:port) in order, streaming a GET into a temp file.
// An interrupted body is resumed with a Range request
// from the bytes already written (same holder, then the next), up to 5
// attempts in all. Size and sha256 are verified before the blob is
// installed. The error wraps ErrNotFound when no holder has the blob, and
// ErrInvalid when the bytes did not match ref. Concurrent pulls of one blob
// share the work.
func (p *Peers) Pull(ctx context.Context, ref BlobRef, holders []string, reason string) error {
	if !ValidHash(ref.Hash) || ref.Size < 0 {
		return fmt.Errorf("pull %s from %v: %w: not a valid blob ref", ref.Hash, holders, ErrInvalid)
	}
	for {
		// Already here: stored again, as far as the collector is concerned.
		if present, err := p.blobs.refresh(ref.Hash); present || err != nil {
			return err
		}
		p.mu.Lock()
		call, busy := p.pulling[ref.Hash]
		if !busy {
			call = &pullCall{done: make(chan struct{})}
			p.pulling[ref.Hash] = call
		}
		p.mu.Unlock()
		if !busy {
			call.err = p.pull(ctx, ref, holders, reason)
			p.mu.Lock()
			delete(p.pulling, ref.Hash)
			p.mu.Unlock()
			close(call.done)
			return call.err
		}
		select {
		case <-call.done:
		case <-ctx.Done():
			return fmt.Errorf("pull %s from %v: %w", ref.Hash, holders, ctx.Err())
		}
		// The other pull ended; if it failed only because its caller gave
		// up, try again ourselves.
		if call.err == nil || !(errors.Is(call.err, context.Canceled) || errors.Is(call.err, context.DeadlineExceeded)) {
			return call.err
		}
	}
}

// partial is a pull in progress: a temp file and the running hash of what
// it holds.
type partial struct {
	f *os.File
	w io.Writer // f, admitted by the blob store's Space
	h stdhash.Hash
	n int64
}

func (pt *partial) Write(b []byte) (int, error) {
	n, err := pt.w.Write(b)
	pt.h.Write(b[:n])
	pt.n += int64(n)
	return n, err
}

func (pt *partial) reset() error {
	if _, err := pt.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := pt.f.Truncate(0); err != nil {
		return err
	}
	pt.h.Reset()
	pt.n = 0
	return nil
}

// pull is Pull's work, done once per blob at a time: it streams the blob
// from its holders into a temp file, verifies it and installs it.
//
// It is longer than this package's functions should be, on purpose: it is
// one retry loop whose cases (verified and installed; absent; wrong
// bytes; cut mid-body, resumed; failed, next holder) all move the same
// holder cursor, attempt budget and partial file, and the order of those
// cases is the retry policy. Split, each piece would need all that state.
func (p *Peers) pull(ctx context.Context, ref BlobRef, holders []string, reason string) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("pull %s from %v: %w", ref.Hash, holders, err)
		}
	}()
	if len(holders) == 0 {
		return fmt.Errorf("%w: no holder", ErrNotFound)
	}
	if err := p.blobs.Admit(ref.Size); err != nil {
		return err
	}
	f, err := os.CreateTemp(p.blobs.TempDir(), "pull-*")
	if err != nil {
		return err
	}
	defer func() {
		if f != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	pt := &partial{f: f, w: p.blobs.guard(f), h: sha256.New()}
	counter := p.transfer.WithLabelValues(peerproto.DirectionIn, peerproto.TransferReason(reason))

	var (
		errs     []error
		i        int // current holder
		attempts int
		absent   = make([]bool, len(holders))
		lied     = make([]bool, len(holders))
	)
	next := func() bool { // move to the next holder that may still help
		for range holders {
			i = (i + 1) % len(holders)
			if !absent[i] && !lied[i] {
				return true
			}
		}
		return false
	}
	for attempts < maxPullAttempts {
		if err := ctx.Err(); err != nil {
			return err
		}
		if absent[i] || lied[i] {
			if !next() {
				break
			}
		}
		holder := holders[i]
		before := pt.n
		attempts++
		status, gerr := p.fetch(ctx, ref, holder, reason, pt, counter)
		switch {
		case gerr == nil && pt.n == ref.Size:
			if got := hex.EncodeToString(pt.h.Sum(nil)); got != ref.Hash {
				// Whoever sent the bytes, they are wrong; start over from
				// another holder (the last one is the likeliest liar).
				lied[i] = true
				errs = append(errs, fmt.Errorf("%s: %w: checksum mismatch (content hashes to %s)", holder, ErrInvalid, got))
				if rerr := pt.reset(); rerr != nil {
					return rerr
				}
				continue
			}
			if err := f.Sync(); err != nil {
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			name := f.Name()
			f = nil
			if err := p.blobs.install(name, ref.Hash); err != nil {
				os.Remove(name)
				return err
			}
			return nil
		case gerr == nil:
			gerr = fmt.Errorf("%w: body ended at byte %d of %d", io.ErrUnexpectedEOF, pt.n, ref.Size)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if IsNoSpace(gerr) {
			return gerr // no room here: another holder will not help
		}
		errs = append(errs, fmt.Errorf("%s: %w", holder, gerr))
		switch {
		case status == http.StatusNotFound:
			absent[i] = true
			attempts-- // a holder that does not have it costs no attempt
			if p.onAbsent != nil {
				p.onAbsent(ref, holder)
			}
		case errors.Is(gerr, ErrInvalid):
			lied[i] = true
			if rerr := pt.reset(); rerr != nil {
				return rerr
			}
		case pt.n > before:
			// Progress, then a cut: resume from the same holder.
			p.log.Debug("blob pull interrupted; resuming", "blob", ref.Hash, "holder", holder,
				"offset", pt.n, "size", ref.Size, "err", gerr)
			continue
		default:
			next()
		}
		if attempts < maxPullAttempts {
			if err := sleepCtx(ctx, time.Duration(attempts)*100*time.Millisecond); err != nil {
				return err
			}
		}
	}
	allAbsent := true
	for _, a := range absent {
		allAbsent = allAbsent && a
	}
	if allAbsent {
		return fmt.Errorf("%w: no holder has the blob", ErrNotFound)
	}
	return errors.Join(errs...)
}

// fetch makes one GET for the bytes pt lacks and appends what arrives. It
// returns the response status (0 if none) and the first error.
func (p *Peers) fetch(ctx context.Context, ref BlobRef, holder, reason string, pt *partial, counter prometheus.Counter) (int, error) {
	if pt.n == ref.Size && ref.Size > 0 {
		return 0, nil
	}
	req, err := p.newRequest(ctx, http.MethodGet, holder, peerproto.PathBlob+ref.Hash, reason, nil)
	if err != nil {
		return 0, err
	}
	if pt.n > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(pt.n, 10)+"-")
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && pt.n > 0:
		start, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != pt.n || total != ref.Size {
			return resp.StatusCode, fmt.Errorf("%w: unexpected Content-Range %q for offset %d of %d",
				ErrInvalid, resp.Header.Get("Content-Range"), pt.n, ref.Size)
		}
	case resp.StatusCode == http.StatusOK:
		if pt.n > 0 { // the holder ignored the Range: take it all again
			if err := pt.reset(); err != nil {
				return resp.StatusCode, err
			}
		}
		if resp.ContentLength >= 0 && resp.ContentLength != ref.Size {
			return resp.StatusCode, fmt.Errorf("%w: holder sends %d bytes, want %d", ErrInvalid, resp.ContentLength, ref.Size)
		}
	default:
		return resp.StatusCode, responseError(resp)
	}
	left := ref.Size - pt.n
	n, err := io.Copy(pt, peerproto.CountingReader{R: io.LimitReader(resp.Body, left+1), C: counter})
	if err != nil {
		return resp.StatusCode, err
	}
	if n > left {
		return resp.StatusCode, fmt.Errorf("%w: holder sends more than %d bytes", ErrInvalid, ref.Size)
	}
	return resp.StatusCode, nil
}

// parseContentRange parses "bytes start-end/total".
func parseContentRange(s string) (start, total int64, ok bool) {
	rest, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	first, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	var err1, err2 error
	start, err1 = strconv.ParseInt(first, 10, 64)
	total, err2 = strconv.ParseInt(tot, 10, 64)
	return start, total, err1 == nil && err2 == nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Push sends a local blob to a peer that lacks it (PUT); the peer verifies
// it. An error wraps ErrInvalid when the peer refused the bytes. A peer that
// already has the blob answers before the body is sent (Expect:
// 100-continue), so pushing to it costs a round trip, not the bytes.
func (p *Peers) Push(ctx context.Context, ref BlobRef, to string, reason string) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("push %s to %s: %w", ref.Hash, to, err)
		}
	}()
	if !ValidHash(ref.Hash) || ref.Size < 0 {
		return fmt.Errorf("%w: not a valid blob ref", ErrInvalid)
	}
	f, err := p.blobs.Open(ref.Hash)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() != ref.Size {
		return fmt.Errorf("%w: local copy has %d bytes, ref says %d", ErrInvalid, fi.Size(), ref.Size)
	}
	counter := p.transfer.WithLabelValues(peerproto.DirectionOut, peerproto.TransferReason(reason))
	req, err := p.newRequest(ctx, http.MethodPut, to, peerproto.PathBlob+ref.Hash, reason,
		io.NopCloser(peerproto.CountingReader{R: f, C: counter}))
	if err != nil {
		return err
	}
	req.ContentLength = ref.Size
	if ref.Size == 0 {
		req.Body = http.NoBody
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set(peerproto.HeaderSize, strconv.FormatInt(ref.Size, 10))
	if ref.Size > 0 {
		// The receiver answers at once, without the body, if it already
		// has the blob.
		req.Header.Set("Expect", "100-continue")
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil
	}
	return responseError(resp)
}
