package cluster

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/gosty/gosty/cluster/peerproto"
)

// Resumable uploads live in the data dir of the node that took them; the
// upload's ID names that node. Any other node that gets a client's HEAD,
// PATCH or DELETE of the upload relays it to that node over the internal
// API (a PATCH body streams through, never held in memory) and passes the
// answer on; the node that holds the upload answers as if the client had
// come straight to it. httpapi implements both ends (uploadrelay.go); this is the client.

// UploadCall is a resumable-upload request relayed to the node that holds
// the upload.
type UploadCall struct {
	Method string      // HEAD, PATCH or DELETE
	ID     string      // the upload's ID, checked by the caller
	Header http.Header // request headers to pass on (tus's, peerproto.HeaderSubmitter)
	// Body is a PATCH's body, read as it is sent (nil: none).
	Body io.Reader
	// ContentLength is Body's length; -1 = unknown (sent chunked).
	ContentLength int64
}

// RelayUpload sends call to the internal API at addr and returns the
// answer, whatever its status, for the caller to pass on; the caller closes
// its body. A body is sent only once the upload's node agrees to take it
// (Expect: 100-continue), so that an answer such as 409 (another offset) or
// 429 (no upload slot there) costs no bytes; the bytes sent count in
// gosty_transfer_bytes_total{direction="out",reason="upload"}. An error
// means no answer came: the node is unreachable, or the body or ctx failed
// (the body's own error is wrapped).
func (p *Peers) RelayUpload(ctx context.Context, addr string, call UploadCall) (*http.Response, error) {
	var body io.Reader
	if call.Body != nil && call.ContentLength != 0 {
		body = peerproto.CountingReader{R: call.Body, C: p.transfer.WithLabelValues(peerproto.DirectionOut, peerproto.ReasonUpload)}
	}
	req, err := p.newRequest(ctx, call.Method, addr, peerproto.PathUpload+url.PathEscape(call.ID), peerproto.ReasonUpload, body)
	if err != nil {
		return nil, fmt.Errorf("relay upload %s to %s: %w", call.ID, addr, err)
	}
	for k, v := range call.Header {
		if k != "Authorization" {
			req.Header[k] = v
		}
	}
	client := p.client
	if body != nil {
		req.ContentLength = call.ContentLength
		req.Header.Set("Expect", "100-continue")
		client = p.relay
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("relay upload %s to %s: %w", call.ID, addr, err)
	}
	return resp, nil
}
