package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/cluster/peerproto"
)

// The internal API's blob routes: a blob served (GET, HEAD, with Range),
// pushed (PUT) or streamed (POST, its size and hash as trailers), each
// byte counted in gosty_transfer_bytes_total under the sender's reason.
// The client is cluster.Peers (peertransfer.go, peerremote.go, stream.go).

func blobHash(c *gin.Context) (string, bool) {
	h := c.Param("hash")
	if !cluster.ValidHash(h) {
		writeErrorCode(c, http.StatusBadRequest, peerproto.CodeInvalid, "not a blob hash (lower-case hex sha256)")
		return "", false
	}
	return h, true
}

func (a *Internal) counter(c *gin.Context, direction string) prometheus.Counter {
	return a.transfer.WithLabelValues(direction, peerproto.TransferReason(c.GetHeader(peerproto.HeaderReason)))
}

// getBlob serves a local blob with Range support; the ETag is the hash, so
// If-Range works.
func (a *Internal) getBlob(c *gin.Context) {
	h, ok := blobHash(c)
	if !ok {
		return
	}
	f, err := a.blobs.Open(h)
	if err != nil {
		a.writeError(c, err)
		return
	}
	defer f.Close()
	// Blobs are large; a transfer outlives any server-wide write timeout.
	_ = http.NewResponseController(c.Writer).SetWriteDeadline(time.Time{})
	hd := c.Writer.Header()
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("ETag", `"`+h+`"`)
	hd.Set("Cache-Control", "no-store")
	w := &jsonErrorWriter{ResponseWriter: countingWriter{c.Writer, a.counter(c, peerproto.DirectionOut)}}
	http.ServeContent(w, c.Request, "", time.Time{}, f)
	w.finish()
	if w.status == http.StatusInternalServerError {
		a.log.Error("serving a blob failed", "blob", h, "err", w.message)
	}
}

// countingWriter counts the bytes actually written to the client.
type countingWriter struct {
	http.ResponseWriter
	c prometheus.Counter
}

func (w countingWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	if n > 0 {
		w.c.Add(float64(n))
	}
	return n, err
}

func (w countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// putBlob stores a blob a peer pushes; the store checks size and sha256. A
// blob already stored is answered 201 without reading the body (the client
// sends Expect: 100-continue, so the body never leaves the sender).
func (a *Internal) putBlob(c *gin.Context) {
	h, ok := blobHash(c)
	if !ok {
		return
	}
	size, err := strconv.ParseInt(c.GetHeader(peerproto.HeaderSize), 10, 64)
	if err != nil || size < 0 {
		writeErrorCode(c, http.StatusBadRequest, peerproto.CodeInvalid, "the "+peerproto.HeaderSize+" header must give the blob's size in bytes")
		return
	}
	if cl := c.Request.ContentLength; cl >= 0 && cl != size {
		writeErrorCode(c, http.StatusBadRequest, peerproto.CodeInvalid,
			fmt.Sprintf("Content-Length %d differs from %s %d", cl, peerproto.HeaderSize, size))
		return
	}
	// A blob takes as long as it takes while bytes flow, and is cut when
	// the sender stalls (the server's ReadTimeout would cut big blobs).
	idle := &idleReader{r: c.Request.Body, rc: http.NewResponseController(c.Writer), idle: DefaultUploadIdleTimeout}
	ref := cluster.BlobRef{Hash: h, Size: size}
	body := peerproto.CountingReader{R: idle, C: a.counter(c, peerproto.DirectionIn)}
	if err := a.blobs.Receive(c.Request.Context(), ref, body); err != nil {
		if errors.Is(err, cluster.ErrInvalid) && !cluster.IsNoSpace(err) {
			writeErrorCode(c, http.StatusUnprocessableEntity, peerproto.CodeChecksumMismatch, err.Error())
			return
		}
		a.writeError(c, err)
		return
	}
	writeJSON(c, http.StatusCreated, ref)
}

// streamBlob stores a blob a peer streams before it knows its address
// (an upload copied while it still comes in: cluster.Peers.Stream). Its
// size and sha256 follow the body as trailers; the blob is installed only
// if what was read matches them, so a stream that broke off (no
// trailers) or was corrupted stores nothing. 201 with the ref; 422
// checksum_mismatch; 400 invalid for a body that ended early.
func (a *Internal) streamBlob(c *gin.Context) {
	idle := &idleReader{r: c.Request.Body, rc: http.NewResponseController(c.Writer), idle: DefaultUploadIdleTimeout}
	body := peerproto.CountingReader{R: idle, C: a.counter(c, peerproto.DirectionIn)}
	var hold []cluster.Hold
	if a.streamed != nil {
		hold = append(hold, a.streamed)
	}
	ref, err := a.blobs.PutChecked(c.Request.Context(), body, func(got cluster.BlobRef) error {
		hash, size := c.Request.Trailer.Get(peerproto.HeaderHash), c.Request.Trailer.Get(peerproto.HeaderSize)
		if hash == "" || size == "" {
			return fmt.Errorf("%w: the stream ended without its %s and %s trailers", cluster.ErrInvalid, peerproto.HeaderSize, peerproto.HeaderHash)
		}
		if hash != got.Hash || size != strconv.FormatInt(got.Size, 10) {
			return fmt.Errorf("%w: checksum mismatch: the sender says %s bytes hashing to %s, %d bytes hashing to %s arrived",
				cluster.ErrInvalid, size, hash, got.Size, got.Hash)
		}
		return nil
	}, hold...)
	switch {
	case err == nil:
	case errors.Is(err, cluster.ErrInvalid):
		writeErrorCode(c, http.StatusUnprocessableEntity, peerproto.CodeChecksumMismatch, err.Error())
		return
	case idle.timedOut:
		writeErrorCode(c, http.StatusRequestTimeout, peerproto.CodeTimeout, "the stream stalled")
		return
	case errors.Is(err, io.ErrUnexpectedEOF):
		writeErrorCode(c, http.StatusBadRequest, peerproto.CodeInvalid, "the stream broke off")
		return
	default:
		a.writeError(c, err)
		return
	}
	writeJSON(c, http.StatusCreated, ref)
}
