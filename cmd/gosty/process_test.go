package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/node/nodetest"
)

// The test binary doubles as the gosty binary: with GOSTY_TEST_MAIN set it
// runs main, so process tests start real node processes without a build step.
func TestMain(m *testing.M) {
	if isSpy() { // before GOSTY_TEST_MAIN, which the spy inherits from its node
		os.Exit(spyProbe())
	}
	if os.Getenv("GOSTY_TEST_MAIN") == "1" {
		installTestHooks()
		os.Args = append([]string{"gosty"}, os.Args[1:]...)
		main()
		os.Exit(0)
	}
	os.Exit(e2e.Main(m))
}

// TestKillNineMidJobThenRestartFinishes kills a node process with SIGKILL
// while it transcodes, starts it again on the same data dir (and a new
// address, as a rescheduled pod would get), and expects the job to finish
// with playable output.
func TestKillNineMidJobThenRestartFinishes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg and node processes")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "clip.mp4")
	nodetest.AVClip(t, src, "640x360", 24)
	// One pod on 127.0.128.1; back on 127.0.128.2 after the kill, as a
	// rescheduled pod would be.
	c := e2e.New(t, e2e.Opts{Subnet: 128, Size: 1}, "--slots", "1", "--preset", "medium")
	c.StartAll(t, 1)
	nodetest.WaitReady(t, c.HTTP(0), 20*time.Second)
	id := e2e.Upload(t, c.HTTP(0), src, `{"chunk_seconds":3}`)

	// Kill once some chunks are encoded and others are not.
	e2e.WaitJob(t, 3*time.Minute, "some chunks encoded", "", id, func(j httpapi.JobView) bool {
		done := e2e.Encoded(j)
		return j.State == "transcoding" && done >= 1 && done < len(j.Chunks)
	}, c.HTTP(0))
	// SIGKILL the node alone, as the OOM killer would: its ffmpegs run in
	// their own process groups and must die with it, not linger.
	if err := c.Signal(0, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.Kill(0) // reaps it
	data := c.DataDir(0)
	nodetest.WaitFor(t, 10*time.Second, "the dead node's ffmpegs to exit", func() bool {
		return len(e2e.Mentioning(data)) == 0
	})

	c.Move(0, "127.0.128.2")
	c.Args = append(c.Args, "--slots", "2")
	c.StartAll(t, 1)
	nodetest.WaitReady(t, c.HTTP(0), 20*time.Second)
	final := e2e.WaitDone(t, 4*time.Minute, "", id, c.HTTP(0))
	out, err := exec.Command("ffprobe", "-v", "error", "-protocol_whitelist", "http,tcp",
		"-show_entries", "format=duration", "-of", "csv=p=0", c.HTTP(0)+final.Outputs.HLS).Output()
	if err != nil {
		t.Fatalf("ffprobe HLS after restart: %v", err)
	}
	if d := strings.TrimSpace(string(out)); !strings.HasPrefix(d, "24") && !strings.HasPrefix(d, "23.9") {
		t.Fatalf("HLS duration after restart: %q", d)
	}
}
