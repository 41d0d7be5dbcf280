package confine

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gosty/gosty/transcoder/confine/confinetest"
)

// The test binary doubles as a "tool" to confine: with CONFINE_TEST_SPY=1
// it tries everything a hijacked ffmpeg might and prints what worked.
func TestMain(m *testing.M) {
	if os.Getenv("CONFINE_TEST_SPY") == "1" {
		os.Exit(spy(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// spy attempts each access and prints a JSON object: attempt name → ""
// when it worked, else the error.
func spy(args []string) int {
	fs := flag.NewFlagSet("spy", flag.ContinueOnError)
	input := fs.String("input", "", "a file it is allowed to read")
	work := fs.String("work", "", "a directory it is allowed to write")
	secrets := fs.String("secrets", "", "comma-separated files it must not read")
	outside := fs.String("outside", "", "a directory it must not write or list")
	tcp := fs.String("tcp", "", "a TCP address it must not reach")
	udp := fs.String("udp", "", "a UDP address it must not reach")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	res := map[string]string{}
	note := func(name string, err error) {
		res[name] = ""
		if err != nil {
			res[name] = err.Error()
		}
	}
	_, err := os.ReadFile(*input)
	note("read input", err)
	note("write work", os.WriteFile(filepath.Join(*work, "out.bin"), []byte("ok"), 0o644))
	for _, s := range strings.Split(*secrets, ",") {
		_, err := os.ReadFile(s)
		note("read "+filepath.Base(s), err)
	}
	_, err = os.ReadDir(*outside)
	note("list outside", err)
	note("write outside", os.WriteFile(filepath.Join(*outside, "planted"), []byte("x"), 0o644))
	c, err := net.DialTimeout("tcp", *tcp, 5*time.Second)
	if err == nil {
		c.Close()
	}
	note("dial tcp", err)
	u, err := net.Dial("udp", *udp)
	if err == nil {
		_, err = u.Write([]byte("hello"))
		u.Close()
	}
	note("send udp", err)
	u6, err := net.Dial("unix", filepath.Join(*outside, "agent.sock"))
	if err == nil {
		u6.Close()
	}
	note("dial unix", err)
	json.NewEncoder(os.Stdout).Encode(res)
	return 0
}

// TestConfinedChildCannotReachSecrets runs the same child twice, once
// confined (through the re-exec wrapper, as the transcoder runs ffmpeg)
// and once not: unconfined it reads the node's key file and raft.db,
// lists and writes the data dir, and reaches a TCP listener, a UDP
// socket and a UNIX socket on this machine; confined it reads its input
// and writes its work dir, and every other attempt fails.
func TestConfinedChildCannotReachSecrets(t *testing.T) {
	st := Check()
	if st.ABI == 0 {
		t.Skipf("the kernel has no Landlock (%v): nothing to confine with", st.Err)
	}
	t.Logf("Landlock ABI %d, enforced: %s", st.ABI, st.Enforced())
	data := t.TempDir() // stands for the node's data dir
	key := filepath.Join(data, "cluster.key")
	raftDB := filepath.Join(data, "raft", "raft.db")
	if err := os.MkdirAll(filepath.Dir(raftDB), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{key, raftDB} {
		if err := os.WriteFile(f, []byte("secret"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	job := filepath.Join(data, "tasks", "t1") // the run's work dir, inside the data dir
	if err := os.MkdirAll(job, 0o755); err != nil {
		t.Fatal(err)
	}
	input := filepath.Join(data, "blobs", "ab", "abcdef")
	if err := os.MkdirAll(filepath.Dir(input), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(input, []byte("media"), 0o644); err != nil {
		t.Fatal(err)
	}

	ln := confinetest.Listen(t, "127.0.0.1:0")
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var datagrams atomic.Int64
	go func() {
		buf := make([]byte, 64)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			datagrams.Add(1)
		}
	}()
	ul, err := net.Listen("unix", filepath.Join(data, "agent.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	go func() {
		for {
			c, err := ul.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()

	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-input", input, "-work", job, "-secrets", key + "," + raftDB, "-outside", data,
		"-tcp", ln.Addr().String(), "-udp", pc.LocalAddr().String()}
	env := append(os.Environ(), "CONFINE_TEST_SPY=1")

	run := func(cmd *exec.Cmd) map[string]string {
		t.Helper()
		cmd.Env = env
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		Close(cmd)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("%v: %v\n%s", cmd.Args, err, errb.String())
		}
		res := map[string]string{}
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatalf("spy output %q: %v (stderr %s)", out.String(), err, errb.String())
		}
		return res
	}

	// Unconfined, every attempt works: the checks below can fail.
	free := run(exec.Command(bin, args...))
	for name, e := range free {
		if e != "" {
			t.Errorf("unconfined: %s failed (%s); the test could not tell confinement from a broken setup", name, e)
		}
	}
	// The listener's Accept and the UDP datagram may come a moment after
	// the child exited (the accepting goroutine is not scheduled yet on a
	// loaded machine): wait for both before counting what comes later.
	deadline := time.Now().Add(10 * time.Second)
	for (ln.Accepts() == 0 || datagrams.Load() == 0) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if ln.Accepts() == 0 {
		t.Errorf("unconfined: the TCP listener saw no connection")
	}
	_ = os.Remove(filepath.Join(data, "planted"))
	tcpBefore := ln.Accepts()
	udpBefore := datagrams.Load()
	if udpBefore == 0 {
		t.Errorf("unconfined: the UDP socket got no datagram")
	}

	// Confined twice: as the transcoder runs tools, and with Landlock
	// alone, to show what each layer refuses.
	for _, layers := range []string{"landlock+seccomp", "landlock"} {
		withoutSeccomp = layers == "landlock"
		cmd, err := Command(Policy{Read: []string{input}, Write: []string{job}}, bin, args...)
		withoutSeccomp = false
		if err != nil {
			t.Fatal(err)
		}
		jailed := run(cmd)
		t.Logf("%s: %v", layers, jailed)
		for _, allowed := range []string{"read input", "write work"} {
			if e := jailed[allowed]; e != "" {
				t.Errorf("%s: %s failed: %s", layers, allowed, e)
			}
		}
		// name → the error it must fail with
		denied := map[string]string{"read cluster.key": "permission denied", "read raft.db": "permission denied",
			"list outside": "permission denied", "write outside": "permission denied"}
		seccomp := st.Seccomp && layers != "landlock"
		switch {
		case seccomp:
			denied["dial tcp"] = "socket: permission denied"
		case st.ABI >= 4:
			denied["dial tcp"] = "connect: permission denied"
		}
		if seccomp || st.ABI >= 10 {
			denied["send udp"] = "permission denied"
		}
		if seccomp || st.ABI >= 9 {
			denied["dial unix"] = "permission denied"
		}
		for name, want := range denied {
			e, ok := jailed[name]
			switch {
			case !ok:
				t.Errorf("%s: no result for %q", layers, name)
			case e == "":
				t.Errorf("%s: %s worked", layers, name)
			case !strings.Contains(e, want):
				t.Errorf("%s: %s failed with %q, want %q", layers, name, e, want)
			}
		}
		if _, err := os.Stat(filepath.Join(data, "planted")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: a file was planted in the data dir (stat: %v)", layers, err)
		}
		if n := ln.Accepts() - tcpBefore; n != 0 && st.ABI >= 4 {
			t.Errorf("%s: the TCP listener saw %d connections", layers, n)
		}
	}
}

// TestWrapperFailureIsReported: a tool the wrapper cannot start (missing)
// ends with ExitSetup and the marked message, which the transcoder turns
// into a ConfineError rather than a media error.
func TestWrapperFailureIsReported(t *testing.T) {
	cmd, err := Command(Policy{}, "/nonexistent/ffmpeg", "-version")
	if err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	Close(cmd)
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != ExitSetup {
		t.Fatalf("err %v, want exit status %d", err, ExitSetup)
	}
	if !strings.HasPrefix(errb.String(), StderrPrefix) {
		t.Fatalf("stderr %q, want the %q prefix", errb.String(), StderrPrefix)
	}
}

// TestSeccompFilterShape checks the jump offsets of the hand-written BPF
// program: every conditional jump lands inside the program, on a return.
func TestSeccompFilterShape(t *testing.T) {
	f := seccompFilter()
	if f == nil {
		t.Skipf("no seccomp filter on %s", runtime.GOARCH)
	}
	for i, ins := range f {
		if ins.Code&0x07 != 0x05 || ins.Code == 0x05 { // BPF_JMP with a condition
			continue
		}
		for _, off := range []uint8{ins.Jt, ins.Jf} {
			to := i + 1 + int(off)
			if to >= len(f) {
				t.Fatalf("instruction %d jumps past the end", i)
			}
		}
	}
	if f[len(f)-1].Code != 0x06 || f[len(f)-2].Code != 0x06 {
		t.Fatalf("the program does not end with two returns")
	}
}
