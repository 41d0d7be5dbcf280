package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gosty/gosty/cluster/peerproto"
)

func TestBlobStorePutOpenDelete(t *testing.T) {
	dir := t.TempDir()
	b, err := OpenBlobStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := strings.Repeat("gosty", 10000)
	sum := sha256.Sum256([]byte(data))
	ref, err := b.Put(context.Background(), strings.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if ref.Hash != hex.EncodeToString(sum[:]) || ref.Size != int64(len(data)) {
		t.Fatalf("ref %+v", ref)
	}
	// The same bytes again: same blob, no error, no second file.
	if ref2, err := b.Put(context.Background(), strings.NewReader(data)); err != nil || ref2 != ref {
		t.Fatalf("second put: %v %+v", err, ref2)
	}
	f, err := b.Open(ref.Hash)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if string(got) != data {
		t.Fatal("content differs")
	}
	list, err := b.List()
	if err != nil || len(list) != 1 || list[0].Ref != ref {
		t.Fatalf("list: %v %+v", err, list)
	}
	if err := b.Delete(ref.Hash); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Open(ref.Hash); !errors.Is(err, ErrNotFound) {
		t.Fatalf("open after delete: %v", err)
	}
	if ents, _ := os.ReadDir(b.TempDir()); len(ents) != 0 {
		t.Fatalf("temp files left: %v", ents)
	}
}

func TestBlobStoreRefusesNonHashNames(t *testing.T) {
	b, err := OpenBlobStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"", "../../etc/passwd", strings.Repeat("A", 64), strings.Repeat("a", 63), "/" + strings.Repeat("a", 63)} {
		if _, err := b.Open(h); !errors.Is(err, ErrInvalid) {
			t.Errorf("Open(%q): %v", h, err)
		}
	}
}

func TestBlobStoreCleansTempOnOpen(t *testing.T) {
	dir := t.TempDir()
	b, err := OpenBlobStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	leftover := filepath.Join(b.TempDir(), "put-crashed")
	if err := os.WriteFile(leftover, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenBlobStore(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Fatal("a crashed temp file survived reopening")
	}
}

func TestBlobStorePutCanceled(t *testing.T) {
	b, err := OpenBlobStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Put(ctx, strings.NewReader("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	if list, _ := b.List(); len(list) != 0 {
		t.Fatal("a canceled put stored a blob")
	}
}

// TestBlobStoreStoredIsYoung: a blob's modification time is when it was
// last stored, by any path: installed from a file written long ago, or
// found already there by Put, PutFile, PutBytes, Receive and Pull.
func TestBlobStoreStoredIsYoung(t *testing.T) {
	b, err := OpenBlobStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(strings.Repeat("init segment ", 1000))
	old := time.Now().Add(-time.Hour)
	age := func(h string) time.Duration {
		mt, ok := b.ModTime(h)
		if !ok {
			t.Fatal("the blob is gone")
		}
		return time.Since(mt)
	}
	// A task's output written an hour ago is stored now.
	out := filepath.Join(t.TempDir(), "out.m4s")
	if err := os.WriteFile(out, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(out, old, old); err != nil {
		t.Fatal(err)
	}
	ref, err := b.PutFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if a := age(ref.Hash); a > time.Minute {
		t.Fatalf("a blob installed from an old file is %v old", a)
	}
	p, _ := b.Path(ref.Hash)
	peers := NewPeers(PeerConfig{Blobs: b})
	again := map[string]func() error{
		"Put": func() error {
			var held []string
			if _, err := b.Put(context.Background(), bytes.NewReader(data), func(h string) { held = append(held, h) }); err != nil {
				return err
			}
			if len(held) != 1 || held[0] != ref.Hash {
				return fmt.Errorf("the hold was told %v", held)
			}
			return nil
		},
		"PutBytes": func() error { _, err := b.PutBytes(data); return err },
		"PutFile": func() error {
			f := filepath.Join(t.TempDir(), "again")
			if err := os.WriteFile(f, data, 0o600); err != nil {
				return err
			}
			_, err := b.PutFile(f)
			return err
		},
		"Receive": func() error { return b.Receive(context.Background(), ref, bytes.NewReader(data)) },
		"Pull":    func() error { return peers.Pull(context.Background(), ref, nil, peerproto.ReasonReplicate) },
	}
	for name, store := range again {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
		b.Stored()
		if err := store(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if a := age(ref.Hash); a > time.Minute {
			t.Errorf("%s of a stored blob left it %v old", name, a)
		}
		if got, _ := b.Stored(); len(got) != 1 || got[0] != ref.Hash {
			t.Errorf("%s: stored since the last round: %v", name, got)
		}
		if b.Bytes() != ref.Size {
			t.Errorf("%s: the store counts %d bytes, holds %d", name, b.Bytes(), ref.Size)
		}
	}
	// DeleteIf decides on the time it sees.
	var seen time.Time
	if gone, err := b.DeleteIf(ref.Hash, func(mt time.Time) bool { seen = mt; return false }); gone || err != nil {
		t.Fatalf("DeleteIf(no): %v %v", gone, err)
	}
	if mt, _ := b.ModTime(ref.Hash); !seen.Equal(mt) {
		t.Fatalf("DeleteIf saw %v, the blob's time is %v", seen, mt)
	}
	if gone, err := b.DeleteIf(ref.Hash, func(time.Time) bool { return true }); !gone || err != nil || b.Has(ref.Hash) || b.Bytes() != 0 {
		t.Fatalf("DeleteIf(yes): %v %v, still there %v, %d bytes counted", gone, err, b.Has(ref.Hash), b.Bytes())
	}
	if gone, err := b.DeleteIf(ref.Hash, func(time.Time) bool { t.Fatal("asked about a missing blob"); return true }); gone || err != nil {
		t.Fatalf("DeleteIf(missing): %v %v", gone, err)
	}
}

// DeleteIfSame deletes a damaged copy only if it is still the file that was
// read: a copy stored again meanwhile stays.
func TestBlobStoreDeleteIfSame(t *testing.T) {
	b, err := OpenBlobStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := strings.Repeat("damaged?", 5000)
	ref, err := b.Put(context.Background(), strings.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := b.Path(ref.Hash)
	old, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ref.Hash); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(context.Background(), strings.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if gone, err := b.DeleteIfSame(ref.Hash, old); err != nil || gone || !b.Has(ref.Hash) {
		t.Fatalf("the copy stored again was deleted for the old one: %v %v", gone, err)
	}
	cur, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if gone, err := b.DeleteIfSame(ref.Hash, cur); err != nil || !gone || b.Has(ref.Hash) {
		t.Fatalf("the file read was not deleted: %v %v", gone, err)
	}
	if b.Bytes() != 0 {
		t.Fatalf("%d bytes counted after the delete", b.Bytes())
	}
	if gone, err := b.DeleteIfSame(ref.Hash, cur); err != nil || gone {
		t.Fatalf("deleting a gone blob: %v %v", gone, err)
	}
}

// TestBlobStorePutChecked: the check sees the ref of what was read and
// its refusal stores nothing, temp file included.
func TestBlobStorePutChecked(t *testing.T) {
	b, err := OpenBlobStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := strings.Repeat("checked", 5000)
	sum := sha256.Sum256([]byte(data))
	want := BlobRef{Hash: hex.EncodeToString(sum[:]), Size: int64(len(data))}
	refuse := errors.New("the trailer says otherwise")
	var seen BlobRef
	_, err = b.PutChecked(context.Background(), strings.NewReader(data), func(got BlobRef) error {
		seen = got
		return refuse
	})
	if !errors.Is(err, refuse) || seen != want {
		t.Fatalf("refused put: %v, check saw %+v", err, seen)
	}
	if b.Has(want.Hash) || b.Bytes() != 0 {
		t.Fatal("a refused blob was stored")
	}
	if ents, _ := os.ReadDir(b.TempDir()); len(ents) != 0 {
		t.Fatalf("temp files left: %v", ents)
	}
	ref, err := b.PutChecked(context.Background(), strings.NewReader(data), func(got BlobRef) error { return nil })
	if err != nil || ref != want || !b.Has(want.Hash) {
		t.Fatalf("accepted put: %+v %v", ref, err)
	}
}
