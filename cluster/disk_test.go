package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/gosty/gosty/cluster/peerproto"
)

// A node below its disk reserve gets no new task; its running ones keep
// their slots, and it gets work again once it has room.
func TestAssignmentsSkipFullNodes(t *testing.T) {
	s := NewState()
	mustApply(t, s, OpJobSubmit, SubmitJob{Job: testJob("j", true)})
	mustApply(t, s, OpBlobAdd, BlobLocation{Blob: jobOf(t, s, "j").SourceBlob, Node: "n2"})
	// The source is on n1 and n2; n1 is full, so both go to n2.
	got := Assignments(s, []Worker{{Name: "n1", Slots: 8, Full: true}, {Name: "n2", Slots: 2}})
	if len(got) != 2 || got[0].Node != "n2" || got[1].Node != "n2" {
		t.Fatalf("want split and audio on n2, got %+v", got)
	}
	// Every holder full: nothing is placed, the tasks wait.
	if got := Assignments(s, []Worker{{Name: "n1", Slots: 8, Full: true}, {Name: "n2", Slots: 2, Full: true}, {Name: "n3", Slots: 4}}); len(got) != 0 {
		t.Fatalf("split and audio need the source's holder, which are all full; got %+v", got)
	}
	// Room again: work resumes.
	if got := Assignments(s, []Worker{{Name: "n1", Slots: 8}}); len(got) != 2 {
		t.Fatalf("n1 has room again: %+v", got)
	}
}

// A task that failed on a node is retried elsewhere, but a full node does
// not count as elsewhere: with the only other node full, the task goes
// back to where it failed rather than wait.
func TestFailedOnAvoidanceIgnoresFullNodes(t *testing.T) {
	s := NewState()
	mustApply(t, s, OpJobSubmit, SubmitJob{Job: testJob("j", true)})
	mustApply(t, s, OpBlobAdd, BlobLocation{Blob: jobOf(t, s, "j").SourceBlob, Node: "n2"})
	split := TaskID("j", TaskSplit, 0)
	mustApply(t, s, OpTaskAssign, AssignTask{TaskID: split, Node: "n1", Attempt: 1})
	mustApply(t, s, OpTaskFail, TaskFailure{TaskID: split, Node: "n1", Attempt: 1, Reason: "write: no space left on device"})
	if tk := taskOf(s, split); tk.Failures != 1 || tk.FailedOn != "n1" || tk.State != TaskPending {
		t.Fatalf("a disk failure counts once like any other: %+v", tk)
	}
	got := Assignments(s, []Worker{{Name: "n1", Slots: 1}, {Name: "n2", Slots: 1}})
	if a := find(got, split); a == nil || a.Node != "n2" {
		t.Fatalf("the retry goes to the other holder: %+v", got)
	}
	got = Assignments(s, []Worker{{Name: "n1", Slots: 1}, {Name: "n2", Slots: 1, Full: true}})
	if a := find(got, split); a == nil || a.Node != "n1" {
		t.Fatalf("the other holder is full: the retry goes back to n1: %+v", got)
	}
}

func find(as []AssignTask, id string) *AssignTask {
	for i := range as {
		if as[i].TaskID == id {
			return &as[i]
		}
	}
	return nil
}

func TestIsNoSpace(t *testing.T) {
	for _, err := range []error{
		ErrNoSpace,
		fmt.Errorf("upload: %w", ErrNoSpace),
		&os.PathError{Op: "write", Path: "/x", Err: syscall.ENOSPC},
		fmt.Errorf("put blob: %w", &os.PathError{Op: "write", Path: "/x", Err: syscall.EDQUOT}),
		errors.New("ffmpeg: exit status 1: av_interleaved_write_frame(): No space left on device"),
	} {
		if !IsNoSpace(err) {
			t.Errorf("IsNoSpace(%v) = false", err)
		}
	}
	for _, err := range []error{nil, ErrNotFound, errors.New("exit status 1"), syscall.EIO} {
		if IsNoSpace(err) {
			t.Errorf("IsNoSpace(%v) = true", err)
		}
	}
}

// budget is a Space with a fixed number of bytes left.
type budget struct {
	mu    sync.Mutex
	left  int64
	asked []int64
}

func (b *budget) Admit(n int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.asked = append(b.asked, n)
	if n > b.left {
		return fmt.Errorf("%w: %d bytes do not fit in %d", ErrNoSpace, n, b.left)
	}
	return nil
}

func (b *budget) Take(n int64) error {
	if err := b.Admit(n); err != nil {
		return err
	}
	b.mu.Lock()
	b.left -= n
	b.mu.Unlock()
	return nil
}

// The store admits what it writes: an upload that grows past the room
// fails with ErrNoSpace and leaves nothing; a push or pull whose declared
// size does not fit is refused before a byte is read.
func TestBlobStoreAdmitsWrites(t *testing.T) {
	b := peerTestStore(t)
	sp := &budget{left: 1 << 20}
	b.SetSpace(sp)
	data, ref := peerTestData(t, 3<<20)

	_, err := b.Put(context.Background(), bytes.NewReader(data))
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("put of 3 MiB into 1 MiB: %v", err)
	}
	assertNoTemp(t, b)
	if b.Has(ref.Hash) || b.Bytes() != 0 {
		t.Fatal("a refused put stored something")
	}

	read := 0
	body := readFunc(func(p []byte) (int, error) { read++; return 0, io.EOF })
	if err := b.Receive(context.Background(), ref, body); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("receive of 3 MiB into 1 MiB: %v", err)
	}
	if read != 0 {
		t.Fatal("a refused receive read the body")
	}
	assertNoTemp(t, b)

	holder := newHolder(t, &holder{})
	if err := holder.blobs.Receive(context.Background(), ref, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	p := newTestPeers(t, b, nil)
	if err := p.Pull(context.Background(), ref, []string{holder.addr()}, peerproto.ReasonTask); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("pull of 3 MiB into 1 MiB: %v", err)
	}
	if n, _ := holder.seen(); n != 0 {
		t.Fatalf("a pull that cannot fit asked the holder %d times", n)
	}
	assertNoTemp(t, b)

	// Room again: everything goes through, and Take saw the bytes.
	sp.mu.Lock()
	sp.left = 16 << 20
	sp.mu.Unlock()
	if err := p.Pull(context.Background(), ref, []string{holder.addr()}, peerproto.ReasonTask); err != nil {
		t.Fatal(err)
	}
	if left := sp.left; left != 13<<20 {
		t.Fatalf("the pull's bytes were not taken: %d left", left)
	}
}

// A pull whose holder sends more than there is room for (the room shrank
// after the pull was admitted) stops at the first refused write, with
// nothing left behind, and does not try the other holders.
func TestPullStopsWhenRoomRunsOut(t *testing.T) {
	b := peerTestStore(t)
	sp := &budget{left: 4 << 20}
	b.SetSpace(sp)
	data, ref := peerTestData(t, 3<<20)
	h1, h2 := newHolder(t, &holder{}), newHolder(t, &holder{})
	for _, h := range []*holder{h1, h2} {
		if err := h.blobs.Receive(context.Background(), ref, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
	}
	// Someone else takes most of the room between admission and writing.
	b.SetSpace(&afterFirst{Space: sp, take: 3 << 20})
	p := newTestPeers(t, b, nil)
	err := p.Pull(context.Background(), ref, []string{h1.addr(), h2.addr()}, peerproto.ReasonTask)
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("pull: %v", err)
	}
	n1, _ := h1.seen()
	n2, _ := h2.seen()
	if n1+n2 != 1 {
		t.Fatalf("a pull out of room asked %d holders' copies", n1+n2)
	}
	assertNoTemp(t, b)
}

// afterFirst lets the first Admit through, then takes `take` bytes of
// the room away.
type afterFirst struct {
	Space
	take int64
	done bool
}

func (a *afterFirst) Admit(n int64) error {
	err := a.Space.Admit(n)
	if !a.done {
		a.done = true
		_ = a.Space.Take(a.take)
	}
	return err
}

type readFunc func([]byte) (int, error)

func (f readFunc) Read(p []byte) (int, error) { return f(p) }

// PutLink stores a finished file without copying it: blob and file share
// their blocks, the file stays, and the blob outlives it.
func TestBlobStorePutLink(t *testing.T) {
	dir := t.TempDir()
	b, err := OpenBlobStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	b.SetSpace(&budget{left: 0}) // a link takes no room: never refused
	data, want := peerTestData(t, 1<<20)
	src := filepath.Join(dir, "upload")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	ref, err := b.PutLink(context.Background(), src)
	if err != nil || ref != want {
		t.Fatalf("PutLink = %v, %v; want %v", ref, err, want)
	}
	p, _ := b.Path(ref.Hash)
	fa, _ := os.Stat(src)
	fb, _ := os.Stat(p)
	if !os.SameFile(fa, fb) {
		t.Fatal("the blob is a copy, not a link")
	}
	if err := os.Remove(src); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the blob after its file went: %v", err)
	}
	assertNoTemp(t, b)
	// Linking the same bytes again keeps the one blob.
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if ref2, err := b.PutLink(context.Background(), src); err != nil || ref2 != want {
		t.Fatalf("again: %v %v", ref2, err)
	}
	assertNoTemp(t, b)
	if b.Bytes() != want.Size {
		t.Fatalf("store holds %d bytes, want %d", b.Bytes(), want.Size)
	}
}

// The disk field keeps the gossip metadata well under memberlist's limit,
// and nodes that predate it read the metadata as before.
func TestMemberMetaWithDiskFits(t *testing.T) {
	m := MemberMeta{
		ID: "0b8f6f5e-2c59-4a3e-9a7d-3f2d7c1e9b40", Raft: "[2001:db8:ffff:ffff:ffff:ffff:ffff:ffff]:7947",
		Internal: "[2001:db8:ffff:ffff:ffff:ffff:ffff:ffff]:7948", HTTP: "[2001:db8:ffff:ffff:ffff:ffff:ffff:ffff]:8080",
		Slots: 256, Version: "v1.2.3-45-gabcdef0-dirty", Leaving: true, Log: LogV2,
		Disk: &DiskMeta{FreeMiB: 1 << 40, SizeMiB: 1 << 40, ReserveMiB: 1 << 30, Full: true},
	}
	b, err := encodeMeta(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 400 {
		t.Fatalf("meta is %d bytes: %s", len(b), b)
	}
	var old struct {
		ID    string `json:"id"`
		Slots int    `json:"slots"`
	}
	if err := json.Unmarshal(b, &old); err != nil || old.Slots != 256 {
		t.Fatalf("an older node reads %+v, %v", old, err)
	}
}
