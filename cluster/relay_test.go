package cluster

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gosty/gosty/cluster/peerproto"
)

// A relayed upload request reaches the owner's internal route with the
// cluster key (never the caller's Authorization), the tus headers, and a
// PATCH body that waits for the owner's 100 Continue and is counted.
func TestRelayUploadRequest(t *testing.T) {
	type seen struct {
		method, path, auth, reason, expect, offset string
		body                                       []byte
	}
	got := make(chan seen, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := seen{method: r.Method, path: r.URL.Path, auth: r.Header.Get("Authorization"), reason: r.Header.Get(peerproto.HeaderReason),
			expect: r.Header.Get("Expect"), offset: r.Header.Get("Upload-Offset")}
		if r.Header.Get("Upload-Offset") == "7" {
			// Refused before the body: the body never leaves the sender.
			w.WriteHeader(http.StatusConflict)
			got <- s
			return
		}
		s.body, _ = io.ReadAll(r.Body)
		got <- s
		w.Header().Set("Upload-Offset", "5")
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	p := NewPeers(PeerConfig{Blobs: peerTestStore(t), Logger: slog.New(slog.DiscardHandler)})
	addr := strings.TrimPrefix(srv.URL, "http://")
	id := "gosty-0.0123456789abcdef0123456789abcdef"
	hdr := http.Header{"Upload-Offset": {"0"}, "Authorization": {"Bearer client-token"}, "Tus-Resumable": {"1.0.0"}}
	resp, err := p.RelayUpload(context.Background(), addr, UploadCall{Method: http.MethodPatch, ID: id, Header: hdr,
		Body: bytes.NewReader([]byte("hello")), ContentLength: 5})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	s := <-got
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Upload-Offset") != "5" {
		t.Fatalf("answer %d offset %q", resp.StatusCode, resp.Header.Get("Upload-Offset"))
	}
	if s.method != http.MethodPatch || s.path != peerproto.Prefix+"/uploads/"+id || s.auth != "" ||
		s.reason != peerproto.ReasonUpload || string(s.body) != "hello" || s.offset != "0" || s.expect != "100-continue" {
		t.Fatalf("the owner saw %+v", s)
	}
	if n := peerCounter(t, p.transfer, peerproto.DirectionOut, peerproto.ReasonUpload); n != 5 {
		t.Fatalf("counted %v bytes out, want 5", n)
	}
	// Refused before the body (a wrong offset): no byte counted.
	resp, err = p.RelayUpload(context.Background(), addr, UploadCall{Method: http.MethodPatch, ID: id,
		Header: http.Header{"Upload-Offset": {"7"}}, Body: strings.NewReader(strings.Repeat("x", 1<<20)), ContentLength: 1 << 20})
	if err != nil || resp.StatusCode != http.StatusConflict {
		t.Fatalf("refused PATCH: %v %v", resp, err)
	}
	resp.Body.Close()
	if s := <-got; s.expect != "100-continue" {
		t.Fatalf("refused PATCH: the owner saw %+v", s)
	}
	if n := peerCounter(t, p.transfer, peerproto.DirectionOut, peerproto.ReasonUpload); n != 5 {
		t.Fatalf("a refused body was sent: %v bytes counted", n)
	}
	// HEAD: no body.
	resp, err = p.RelayUpload(context.Background(), addr, UploadCall{Method: http.MethodHead, ID: id, Header: http.Header{}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if s := <-got; s.method != http.MethodHead || len(s.body) != 0 || s.expect != "" {
		t.Fatalf("HEAD: %+v", s)
	}
	// Nobody there: an error, no answer.
	srv.Close()
	if _, err := p.RelayUpload(context.Background(), addr, UploadCall{Method: http.MethodHead, ID: id}); err == nil ||
		!strings.Contains(err.Error(), id) {
		t.Fatalf("relay to a closed port: %v", err)
	}
}
