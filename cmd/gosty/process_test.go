package main

import (
	"bytes"
	"fmt"
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

// proc is a gosty node process.
type proc struct {
	cmd  *exec.Cmd
	base string
	log  *bytes.Buffer
}

func startProc(t *testing.T, dataDir string, httpPort, raftPort int, extra ...string) *proc {
	t.Helper()
	args := append([]string{"node", "--name", "p1", "--data-dir", dataDir,
		"--http-addr", fmt.Sprintf("127.0.0.1:%d", httpPort), "--bind-addr", "127.0.0.1",
		"--raft-port", fmt.Sprint(raftPort), "--gossip-port", "0", "--internal-port", "0", "--log-level", "info"}, extra...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "GOSTY_TEST_MAIN=1")
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, base: fmt.Sprintf("http://127.0.0.1:%d", httpPort), log: &log}
	t.Cleanup(func() {
		// The whole group: a node's ffmpeg children must not outlive it.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		if t.Failed() {
			t.Logf("node log:\n%s", e2e.Tail(log.String(), 8000))
		}
	})
	nodetest.WaitReady(t, p.base, 20*time.Second)
	return p
}

func (p *proc) job(id string) httpapi.JobView {
	j, _ := e2e.Job(p.base, "", id)
	return j
}

// TestKillNineMidJobThenRestartFinishes kills a node process with SIGKILL
// while it transcodes, starts it again on the same data dir (and a new HTTP
// port, as a rescheduled pod would get), and expects the job to finish with
// playable output.
func TestKillNineMidJobThenRestartFinishes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg and node processes")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "clip.mp4")
	nodetest.GenClip(t, src, "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=24",
		"-f", "lavfi", "-i", "sine=duration=24", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
		"-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest")
	data := filepath.Join(dir, "data")
	raftPort := nodetest.FreePort(t)
	p := startProc(t, data, nodetest.FreePort(t), raftPort, "--slots", "1", "--preset", "medium")

	id := e2e.Upload(t, p.base, src, `{"chunk_seconds":3}`)

	// Kill once some chunks are encoded and others are not.
	nodetest.WaitFor(t, 3*time.Minute, "some chunks encoded", func() bool {
		cur := p.job(id)
		done := 0
		for _, c := range cur.Chunks {
			if c.EncodedBy != "" {
				done++
			}
		}
		return cur.State == "transcoding" && done >= 1 && done < len(cur.Chunks)
	})
	// SIGKILL the node alone, as the OOM killer would: its ffmpegs run in
	// their own process groups and must die with it, not linger.
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.cmd.Wait()
	nodetest.WaitFor(t, 10*time.Second, "the dead node's ffmpegs to exit", func() bool {
		return len(processesMentioning(data)) == 0
	})

	p2 := startProc(t, data, nodetest.FreePort(t), raftPort, "--slots", "2")
	final := e2e.WaitDone(t, 4*time.Minute, "", id, p2.base)
	out, err := exec.Command("ffprobe", "-v", "error", "-protocol_whitelist", "http,tcp",
		"-show_entries", "format=duration", "-of", "csv=p=0", p2.base+final.Outputs.HLS).Output()
	if err != nil {
		t.Fatalf("ffprobe HLS after restart: %v", err)
	}
	if d := strings.TrimSpace(string(out)); !strings.HasPrefix(d, "24") && !strings.HasPrefix(d, "23.9") {
		t.Fatalf("HLS duration after restart: %q", d)
	}
}

// processesMentioning lists pids whose command line contains s.
func processesMentioning(s string) []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), s) {
			out = append(out, e.Name())
		}
	}
	return out
}
