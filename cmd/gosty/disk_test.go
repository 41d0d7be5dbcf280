package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/node/nodetest"
)

// mountTmpfs mounts a tmpfs of size MiB on a fresh directory and unmounts
// it when the test ends (after whatever the test registers later, such as
// its node processes, has been cleaned up). It skips when not root.
func mountTmpfs(t *testing.T, mib int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := filepath.Join(t.TempDir(), "vol")
	mountTmpfsAt(t, dir, mib)
	return dir
}

// mountTmpfsAt is mountTmpfs on dir, which it creates.
func mountTmpfsAt(t *testing.T, dir string, mib int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm", mib), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			// Still busy (a process that outlived its kill): detach it.
			out2, err2 := exec.Command("umount", "-l", dir).CombinedOutput()
			t.Errorf("umount %s: %v: %s (lazy: %v %s)", dir, err, out, err2, out2)
		}
	})
}

// fill writes a file of n bytes on the volume (someone else's data).
func fill(t *testing.T, path string, n int) {
	t.Helper()
	if err := os.WriteFile(path, make([]byte, n), 0o600); err != nil {
		t.Fatal(err)
	}
}

func wantInsufficientStorage(t *testing.T, what string, status int, body []byte) {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string }
	}
	if status != http.StatusInsufficientStorage || json.Unmarshal(body, &e) != nil || e.Error.Code != "insufficient_storage" {
		t.Fatalf("%s: %d %s, want 507 insufficient_storage", what, status, body)
	}
	t.Logf("%s: 507 %s", what, e.Error.Message)
}

// dirEntries lists what is in dir (nothing when it does not exist).
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// TestDiskFullRefusesCleanly runs a node whose data dir is a 64 MiB tmpfs
// (disk reserve 8 MiB, raft reserve 4 MiB, a 20 MiB file of someone
// else's on the volume): an upload that declares more than the room, a
// tus upload that does, and a multipart upload of no declared length
// that grows past the room are each refused with 507 insufficient_storage
// and leave nothing behind; the node stays ready, says in gossip when the
// volume is below its reserves, and then takes and transcodes a small job.
func TestDiskFullRefusesCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a node process and ffmpeg")
	}
	vol := mountTmpfs(t, 64)
	src := filepath.Join(t.TempDir(), "small.mp4")
	nodetest.AVClip(t, src, "320x240", 4)

	c := e2e.New(t, e2e.Opts{Subnet: 107, Size: 1, Fast: true, Dir: vol},
		"--slots", "1", "--disk-reserve", "8MiB", "--raft-reserve", "4MiB")
	if err := c.Start(0); err != nil {
		t.Fatal(err)
	}
	base := c.HTTP(0)
	nodetest.WaitReady(t, base, 60*time.Second)
	data := filepath.Join(vol, "data", "gosty-0")
	tmp := filepath.Join(data, "blobs", "tmp")
	uploads := filepath.Join(data, "uploads")
	if c.Logs.Count(`"capped_to":`) == 0 {
		t.Fatal("the node did not cap --max-upload-bytes (64 GiB) to its 64 MiB volume")
	}
	fill(t, filepath.Join(vol, "other"), 20<<20)
	const big = 40 << 20 // under the cap (52 MiB), over the room (~30 MiB)

	// 1. A raw upload that declares 40 MiB: refused before it is read.
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/jobs?filename=big.mp4", io.LimitReader(zeros{}, big))
	req.ContentLength = big
	status, body := sendReq(t, req)
	wantInsufficientStorage(t, "declared upload", status, body)

	// 2. A tus upload that declares 40 MiB: refused at creation.
	req, _ = http.NewRequest(http.MethodPost, base+"/api/v1/uploads/", nil)
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Length", strconv.Itoa(big))
	status, body = sendReq(t, req)
	wantInsufficientStorage(t, "tus creation", status, body)
	if ents := dirEntries(t, uploads); len(ents) != 0 {
		t.Fatalf("a refused tus creation left %v", ents)
	}

	// 3. A multipart upload of no declared length (chunked) that grows
	// past the room: cut with 507 as it passes it.
	pr, ct := nodetest.StreamForm("growing.mp4", "", io.LimitReader(zeros{}, big))
	req, _ = http.NewRequest(http.MethodPost, base+"/api/v1/jobs", pr)
	req.Header.Set("Content-Type", ct)
	status, body = sendReq(t, req)
	pr.CloseWithError(errors.New("test done"))
	wantInsufficientStorage(t, "growing upload", status, body)
	nodetest.WaitFor(t, 10*time.Second, "the refused upload's temp file to go", func() bool {
		return len(dirEntries(t, tmp)) == 0
	})
	if blobs := storedBlobs(t, data); len(blobs) != 0 {
		t.Fatalf("refused uploads stored blobs: %v", blobs)
	}

	// 4. Below the reserves: the node says so in gossip and stays ready.
	fill(t, filepath.Join(vol, "more"), int(volFree(t, vol)-6<<20)) // 6 MiB left: under the 12 kept
	nodetest.WaitFor(t, 30*time.Second, "the node to report its volume full", func() bool {
		return diskFull(base) == "full"
	})
	nodetest.WaitReady(t, base, 5*time.Second)
	if out, _, code := gosty(t, "members", "--server", base); code != 0 || !strings.Contains(out, "full (") {
		t.Errorf("gosty members does not show the full volume (exit %d):\n%s", code, out)
	}
	code, b := nodetest.Upload(t, base, src, "")
	wantInsufficientStorage(t, "small upload on a full volume", code, b)
	if err := os.Remove(filepath.Join(vol, "more")); err != nil {
		t.Fatal(err)
	}
	nodetest.WaitFor(t, 30*time.Second, "the node to report room again", func() bool {
		return diskFull(base) == "room"
	})
	if out, _, code := gosty(t, "members", "--server", base); code != 0 || !strings.Contains(out, " room") {
		t.Errorf("gosty members does not show the room (exit %d):\n%s", code, out)
	}

	// 5. The next small job is done.
	nodetest.WaitReady(t, base, 5*time.Second)
	id := e2e.Upload(t, base, src, `{"renditions":["240p"],"chunk_seconds":2}`)
	j := e2e.WaitDone(t, 3*time.Minute, "", id, base)
	if j.State != "done" {
		t.Fatalf("small job after the refusals: %s %s", j.State, j.Error)
	}
	if ents := dirEntries(t, tmp); len(ents) != 0 {
		t.Fatalf("temp files left after the job: %v", ents)
	}
}

// diskFull is "full" or "room" as the node's own member entry says, or ""
// while it says nothing.
func diskFull(base string) string {
	var v httpapi.ClusterStatus
	if err := e2e.GetJSON(base+"/api/v1/cluster", &v); err != nil || len(v.Members) == 0 || v.Members[0].Disk == nil {
		return ""
	}
	if v.Members[0].Disk.Full {
		return "full"
	}
	return "room"
}

// sendReq makes a request and returns the status and body; a connection that
// the server closed after answering still gives its answer.
func sendReq(t *testing.T, req *http.Request) (int, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, bytes.TrimSpace(b)
}

func storedBlobs(t *testing.T, data string) []string {
	t.Helper()
	var out []string
	root := filepath.Join(data, "blobs")
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasPrefix(p, filepath.Join(root, "tmp")) {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// zeros reads as an endless run of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func volFree(t *testing.T, dir string) int64 {
	t.Helper()
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		t.Fatal(err)
	}
	return int64(fs.Bavail) * int64(fs.Bsize)
}
