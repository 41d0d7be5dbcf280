package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
