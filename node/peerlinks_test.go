package node

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gosty/gosty/cluster/peerlink"
)

// TestPortKeyFiles: --internal-key-file replaces the derived internal key
// (a peer with the cluster key's derived one is refused, one with the
// file's key gets in), the raft port keeps the derived key, and a short
// key file is refused at start.
func TestPortKeyFiles(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "internal.key")
	if err := os.WriteFile(file, []byte("internal-port-key-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.InternalKeyFile = file
	log := slog.New(slog.DiscardHandler)
	links, err := newPeerLinks(cfg, "the-cluster-key", log)
	if err != nil {
		t.Fatal(err)
	}
	if !links.raft.Keyed() || !links.internal.Keyed() {
		t.Fatal("both ports must run the exchange")
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := links.internal.Listen(raw)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.Copy(c, c)
			c.Close()
		}
	}()
	dial := func(key []byte) error {
		l, err := peerlink.New(peerlink.Config{Purpose: peerlink.Internal, Key: key, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		c, err := l.Dialer(nil)(context.Background(), "tcp", raw.Addr().String())
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(peerlink.DeriveKey("the-cluster-key", peerlink.Internal)); err == nil {
		t.Fatal("the derived internal key opened a port with a key file")
	}
	if err := dial([]byte("internal-port-key-0123456789")); err != nil {
		t.Fatalf("the file's key: %v", err)
	}

	if err := os.WriteFile(file, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := newPeerLinks(cfg, "the-cluster-key", log); err == nil || !strings.Contains(err.Error(), "at least 16 bytes") {
		t.Fatalf("a short key file: %v", err)
	}
}
