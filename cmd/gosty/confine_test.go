package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/node/nodetest"
	"github.com/gosty/gosty/transcoder/confine"
	"github.com/gosty/gosty/transcoder/confine/confinetest"
)

// Loopback subnet 127.0.109.x: TestNodeConfinesMediaTools on .1 (confined)
// and .11 (the unconfined control), its TCP trap on .200.

// The spy ffprobe: a node started by TestNodeConfinesMediaTools runs this
// test binary, through a symlink named ffprobe, as its --ffprobe. It tries
// what a hijacked ffprobe would (read the node's key file and raft.db,
// connect to a listener) and fails loudly if any of it works; otherwise it
// becomes the real ffprobe, so the job runs as usual.
const (
	spySecretsEnv = "GOSTY_TEST_SPY_SECRETS" // comma-separated files
	spyDialEnv    = "GOSTY_TEST_SPY_DIAL"    // a TCP address
	spyRealEnv    = "GOSTY_TEST_SPY_REAL"    // the real ffprobe
)

func isSpy() bool {
	return filepath.Base(os.Args[0]) == "ffprobe" && os.Getenv(spySecretsEnv) != ""
}

func spyProbe() int {
	real := os.Getenv(spyRealEnv)
	probe := func() int {
		err := syscall.Exec(real, append([]string{real}, os.Args[1:]...), os.Environ())
		fmt.Fprintf(os.Stderr, "spy: exec %s: %v\n", real, err)
		return 1
	}
	if slices.Contains(os.Args[1:], "-version") { // the node's start-up check
		return probe()
	}
	var leaks []string
	for _, f := range strings.Split(os.Getenv(spySecretsEnv), ",") {
		if b, err := os.ReadFile(f); err == nil && len(b) > 0 {
			leaks = append(leaks, "read "+filepath.Base(f))
		}
	}
	if c, err := net.DialTimeout("tcp", os.Getenv(spyDialEnv), 5*time.Second); err == nil {
		c.Close()
		leaks = append(leaks, "connected to "+os.Getenv(spyDialEnv))
	}
	if len(leaks) > 0 {
		fmt.Fprintf(os.Stderr, "LEAK: %s\n", strings.Join(leaks, "; "))
		return 1
	}
	return probe()
}

// TestNodeConfinesMediaTools runs a real node whose ffprobe is the spy
// above. Confined (the default), the spy can read neither the node's
// cluster key nor its raft.db nor reach a local TCP listener, so the
// upload is accepted and transcoded to the end (every ffmpeg and ffprobe
// confined); the node logs the Landlock ABI it enforces. The control, a
// node with --confine-media=false, gets the spy's leak report as its
// upload's 422 reason, and its listener sees the connection: without the
// confinement the first check would fail.
func TestNodeConfinesMediaTools(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node processes and ffmpeg")
	}
	if st := confine.Check(); st.ABI < 4 {
		t.Skipf("needs Landlock ABI 4 (files and TCP); the kernel has %d (%v)", st.ABI, st.Err)
	}
	realProbe, err := exec.LookPath("ffprobe")
	if err != nil {
		t.Skip("no ffprobe")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	spy := filepath.Join(t.TempDir(), "ffprobe")
	if err := os.Symlink(self, spy); err != nil {
		t.Fatal(err)
	}
	ln := confinetest.Listen(t, "127.0.109.200:0")
	src := filepath.Join(t.TempDir(), "clip.mp4")
	nodetest.AVClip(t, src, "320x240", 4)

	start := func(first int, extra ...string) (string, *e2e.Logs) {
		dir := t.TempDir()
		key := filepath.Join(dir, "cluster.key") // e2e.New writes it
		raftDB := filepath.Join(dir, "data", "gosty-0", "raft", "raft.db")
		env := []string{spySecretsEnv + "=" + key + "," + raftDB, spyDialEnv + "=" + ln.Addr().String(), spyRealEnv + "=" + realProbe}
		c := e2e.New(t, e2e.Opts{Subnet: 109, First: first, Size: 1, Fast: true, Dir: dir, Env: env},
			append([]string{"--slots", "1", "--ffprobe", spy}, extra...)...)
		if err := c.Start(0); err != nil {
			t.Fatal(err)
		}
		nodetest.WaitReady(t, c.HTTP(0), 60*time.Second)
		if _, err := os.Stat(raftDB); err != nil {
			t.Fatalf("the node's raft.db is not where the spy looks: %v", err)
		}
		return c.HTTP(0), c.Logs
	}

	// Confined: the spy finds nothing, the job runs to the end.
	base, l := start(1)
	if l.Count(`"msg":"media tools confined"`) != 1 {
		t.Errorf("the node did not log its confinement once")
	}
	code, body := nodetest.Upload(t, base, src, "")
	if code != http.StatusCreated {
		t.Fatalf("confined: upload answered %d %s", code, body)
	}
	var j struct{ ID string }
	if err := json.Unmarshal(body, &j); err != nil {
		t.Fatal(err)
	}
	e2e.WaitDone(t, 3*time.Minute, "", j.ID, base)
	if n := ln.Accepts(); n != 0 {
		t.Fatalf("confined: the listener saw %d connections", n)
	}

	// The control: unconfined, the spy reads both files and connects.
	base, l = start(11, "--confine-media=false")
	if l.Count("media tools run unconfined") != 1 {
		t.Errorf("the unconfined node did not warn once")
	}
	code, body = nodetest.Upload(t, base, src, "")
	if code != http.StatusUnprocessableEntity {
		t.Fatalf("unconfined: upload answered %d %s, want 422 with the spy's report", code, body)
	}
	t.Logf("unconfined: %d %s", code, body)
	for _, want := range []string{"LEAK", "read cluster.key", "read raft.db", "connected to"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("unconfined: the 422 does not say %q: %s", want, body)
		}
	}
	if ln.Accepts() == 0 {
		t.Errorf("unconfined: the listener saw no connection")
	}
}
