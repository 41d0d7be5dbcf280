package e2e

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/gosty/gosty/objstore/s3test"
)

// Mentioning lists the processes (but this one) whose command line
// contains s: a node's ffmpegs name its data dir, so that a test can see
// that none outlives its node, or kill what a crashed run left behind.
func Mentioning(s string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(b, []byte(s)) {
			out = append(out, pid)
		}
	}
	return out
}

// StartProcess starts one gosty process outside a Cluster (a lone node on
// its own ports, an old data dir): bin ("" is the running test binary, as
// in Opts.Bin) with args, its output to out, in its own process group.
// When the test ends the whole group (the node and its ffmpegs) is
// SIGKILLed and reaped.
func StartProcess(t testing.TB, bin string, out io.Writer, args ...string) *exec.Cmd {
	t.Helper()
	if bin == "" {
		bin = os.Args[0]
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "GOSTY_TEST_MAIN=1")
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	return cmd
}

// S3Env is the environment that points a node process's AWS credential
// chain at the root user of an objstore/s3test server (and nowhere else:
// s3test.Environ).
func S3Env() []string { return s3test.Environ(s3test.AccessKey, s3test.SecretKey) }
