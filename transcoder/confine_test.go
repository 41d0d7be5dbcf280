package transcoder

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gosty/gosty/transcoder/confine"
	"github.com/gosty/gosty/transcoder/confine/confinetest"
)

// TestConfinedFFmpeg stands in for a decoder hijacked by a hostile file:
// ffmpeg itself is told to open the node's key file, its raft.db (here a
// valid video, so that an unconfined ffmpeg reads it without error) and a
// TCP listener on this machine. Unconfined (the control) it does all
// three; run as the transcoder runs every tool, confined to one input and
// a work dir, each fails with "Permission denied" and the listener sees
// no connection, while the input itself is still transcoded.
func TestConfinedFFmpeg(t *testing.T) {
	st := confine.Check()
	if st.ABI < 4 {
		t.Skipf("needs Landlock ABI 4 (files and TCP); the kernel has %d (%v)", st.ABI, st.Err)
	}
	confined := newTestTranscoder(t)
	free, err := New(Config{Unconfined: true})
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir() // the node's data dir
	key := filepath.Join(data, "cluster.key")
	if err := os.WriteFile(key, []byte("not media, a secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	clip := genClip(t, data, "clip", clipSpec{W: 160, H: 90, Rate: 25, Seconds: 1})
	raftDB := filepath.Join(data, "raft", "raft.db")
	if err := os.MkdirAll(filepath.Dir(raftDB), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(genClip(t, data, "db", clipSpec{W: 160, H: 90, Rate: 25, Seconds: 1}), raftDB); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(data, "tasks", "t1")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	ln := confinetest.Listen(t, "127.0.0.1:0")
	access := confine.Policy{Read: []string{clip}, Write: []string{work}}
	ffmpeg := func(tr *Transcoder, in string) error {
		args := append(ffmpegBase(), "-i", in, "-t", "0.2", "-f", "null", "-")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return tr.run(ctx, time.Minute, tr.ffmpeg, args, nil, access)
	}

	// The control: unconfined, ffmpeg reads both files and connects.
	if err := ffmpeg(free, inputURL(raftDB)); err != nil {
		t.Fatalf("unconfined ffmpeg could not read raft.db: %v", err)
	}
	if err := ffmpeg(free, inputURL(key)); err == nil || strings.Contains(err.Error(), "Permission denied") {
		t.Fatalf("unconfined ffmpeg on the key file: %v, want it read and refused as not media", err)
	}
	_ = ffmpeg(free, "tcp://"+ln.Addr().String())
	if ln.Accepts() == 0 {
		t.Fatal("unconfined ffmpeg did not reach the listener")
	}
	before := ln.Accepts()

	for _, in := range []string{inputURL(raftDB), inputURL(key), "tcp://" + ln.Addr().String()} {
		err := ffmpeg(confined, in)
		if err == nil || !strings.Contains(err.Error(), "Permission denied") {
			t.Errorf("confined ffmpeg -i %s: %v, want Permission denied", in, err)
		}
	}
	if n := ln.Accepts() - before; n != 0 {
		t.Errorf("confined ffmpeg reached the listener %d times", n)
	}
	// What it is given still works: its input, into its work dir.
	out := filepath.Join(work, "out.mp4")
	args := append(ffmpegBase(), "-protocol_whitelist", "file", "-i", inputURL(clip), "-c", "copy", "-f", "mp4", "-y", out)
	if err := confined.run(context.Background(), time.Minute, confined.ffmpeg, args, nil, access); err != nil {
		t.Fatalf("confined ffmpeg on its own input: %v", err)
	}
	if fi, err := os.Stat(out); err != nil || fi.Size() == 0 {
		t.Fatalf("confined ffmpeg wrote no output: %v", err)
	}
}
