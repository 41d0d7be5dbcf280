package httpapi

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/cluster/peerproto"
)

// streamAll writes data to s in pieces of at most 32 KiB, as an upload
// arrives.
func streamAll(t *testing.T, s *cluster.BlobStream, data []byte) error {
	t.Helper()
	for len(data) > 0 {
		k := min(len(data), 32<<10)
		if _, err := s.Write(data[:k]); err != nil {
			return err
		}
		data = data[k:]
	}
	return nil
}

func noTemp(t *testing.T, n *peerNode) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ents, _ := os.ReadDir(n.blobs.TempDir())
		if len(ents) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("temp files left on the receiver: %v", ents)
		}
	}
}

// TestInternalStream: a blob streamed before its hash is known is stored
// once the trailers name what arrived, counted like any transfer and
// held by HoldStreamed; a wrong trailer, an aborted stream and a
// stream that breaks off store nothing and leave no temp file.
func TestInternalStream(t *testing.T) {
	src, dst := newPeerNode(t, "k"), newPeerNode(t, "k")
	data, ref := randomBlob(t, 3<<20+11)
	ctx := context.Background()

	s, err := src.peers.Stream(ctx, dst.addr, peerproto.ReasonReplicate, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := streamAll(t, s, data); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx, ref); err != nil {
		t.Fatalf("close: %v", err)
	}
	if !bytes.Equal(dst.content(t, ref.Hash), data) {
		t.Fatal("streamed content differs")
	}
	if in, out := dst.transfer(t, "in", "replicate"), src.transfer(t, "out", "replicate"); in != float64(len(data)) || out != float64(len(data)) {
		t.Fatalf("in %v out %v, want %d", in, out, len(data))
	}
	dst.mu.Lock()
	streamed := dst.streamed
	dst.mu.Unlock()
	if len(streamed) != 1 || streamed[0] != ref.Hash {
		t.Fatalf("HoldStreamed told %v", streamed)
	}

	// The sender names other bytes than it sent.
	other, otherRef := randomBlob(t, 100_000)
	s, _ = src.peers.Stream(ctx, dst.addr, peerproto.ReasonReplicate, 10*time.Second)
	if err := streamAll(t, s, other[:99_999]); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx, otherRef); !errors.Is(err, cluster.ErrInvalid) || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("close with a wrong ref: %v", err)
	}
	if dst.blobs.Has(otherRef.Hash) {
		t.Fatal("a mismatched stream was stored")
	}

	// Aborted halfway.
	s, _ = src.peers.Stream(ctx, dst.addr, peerproto.ReasonReplicate, 10*time.Second)
	if err := streamAll(t, s, other[:50_000]); err != nil {
		t.Fatal(err)
	}
	s.Abort()
	if _, err := s.Write(other[50_000:]); err == nil {
		t.Fatal("a write after Abort succeeded")
	}
	if err := s.Close(ctx, otherRef); err == nil {
		t.Fatal("Close after Abort succeeded")
	}
	noTemp(t, dst)
	if dst.blobs.Has(otherRef.Hash) {
		t.Fatal("an aborted stream was stored")
	}

	// A body that ends cleanly without the trailers (not this client's
	// doing, but a peer's bug must not store anything).
	resp, body := internalReq(t, http.MethodPost, dst.srv.URL+peerproto.Prefix+peerproto.PathStream, "k",
		bytes.NewReader(other), nil)
	if resp.StatusCode != http.StatusUnprocessableEntity || dst.blobs.Has(otherRef.Hash) {
		t.Fatalf("stream without trailers: %d %s", resp.StatusCode, body)
	}
	noTemp(t, dst)

	// The cluster key is needed.
	s, _ = src.peers.Stream(ctx, newPeerNode(t, "other-key").addr, peerproto.ReasonReplicate, 10*time.Second)
	_ = streamAll(t, s, other)
	if err := s.Close(ctx, otherRef); err == nil {
		t.Fatal("a stream without the key was taken")
	}
}

// TestStreamGivesUpOnAStalledPeer: a peer that takes no bytes (a paused
// process: its socket buffers fill, then nothing moves) fails the write
// after the stall bound, and one that never answers fails Close when its
// context ends; neither blocks the writer for longer.
func TestStreamGivesUpOnAStalledPeer(t *testing.T) {
	src := newPeerNode(t, "k")
	release := make(chan struct{})
	stalled := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release // reads nothing, answers nothing
	}))
	stalled.Listener = testPeerLink(t, "k").Listen(stalled.Listener)
	stalled.Start()
	t.Cleanup(func() { close(release); stalled.Close() })
	addr := strings.TrimPrefix(stalled.URL, "http://")
	data, ref := randomBlob(t, 64<<20)
	ctx := context.Background()

	s, err := src.peers.Stream(ctx, addr, peerproto.ReasonReplicate, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = streamAll(t, s, data)
	if err == nil || time.Since(start) > 20*time.Second {
		t.Fatalf("writes to a stalled peer: %v after %v", err, time.Since(start))
	}
	if err := s.Close(ctx, ref); err == nil {
		t.Fatal("Close of a stalled stream succeeded")
	}

	// Small enough to fit in the socket buffers: the writes pass, the
	// answer never comes.
	small, smallRef := randomBlob(t, 1000)
	s, _ = src.peers.Stream(ctx, addr, peerproto.ReasonReplicate, 300*time.Millisecond)
	if err := streamAll(t, s, small); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if err := s.Close(cctx, smallRef); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("close without an answer: %v", err)
	}
}
