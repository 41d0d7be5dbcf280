// Package peerlinktest holds the test side of the peer link: an HTTP client
// that calls a node's internal API as a peer does. It imports package
// testing, so only tests may import it (those of node and cmd/gosty did
// each write it before).
package peerlinktest

import (
	"log/slog"
	"net/http"
	"testing"

	"github.com/gosty/gosty/cluster/peerlink"
)

// Client is an HTTP client over an internal-purpose peer link of the
// cluster key key ("" = none), as a peer calls a node's internal API. URLs
// are https://. Its idle connections close when the test ends.
func Client(t testing.TB, key string) *http.Client {
	t.Helper()
	l, err := peerlink.New(peerlink.Config{Purpose: peerlink.Internal, Key: peerlink.DeriveKey(key, peerlink.Internal),
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{DialTLSContext: l.Dialer(nil)}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}
