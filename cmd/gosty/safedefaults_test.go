package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/internal/pods"
	"github.com/gosty/gosty/node/nodetest"
)

// Safe defaults (issue 16, item 1). Loopback subnet 127.0.110.x:
// TestJoinNeedsKeys on .1-.3, TestLocalClusterMakesKeys on .11-.13.

// TestJoinNeedsKeys: a node with --join and no keys (or one of the two)
// does not start: it exits non-zero at once, before it makes its data dir,
// and says which key flags are missing and that --insecure overrides; with
// --insecure it runs, says so at ERROR level and in GET /api/v1/cluster,
// and listens where --bind-addr says.
func TestJoinNeedsKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node processes")
	}
	dir := t.TempDir()
	ck := filepath.Join(dir, "cluster.key")
	os.WriteFile(ck, []byte(e2e.ClusterKey+"\n"), 0o600)
	for _, tc := range []struct {
		name    string
		extra   []string
		env     string // GOSTY_JOIN (as the manifests set it) instead of --join
		missing []string
	}{
		{"no keys", nil, "", []string{"--cluster-key-file", "--gossip-key-file"}},
		{"no gossip key", []string{"--cluster-key-file", ck}, "", []string{"--gossip-key-file"}},
		{"no keys, GOSTY_JOIN", nil, "127.0.110.2", []string{"--cluster-key-file", "--gossip-key-file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := filepath.Join(dir, "data-"+strings.NewReplacer(" ", "-", ",", "").Replace(tc.name))
			args := []string{"node", "--name", "gosty-1", "--data-dir", data, "--http-addr", "127.0.110.1:0",
				"--bind-addr", "127.0.110.1"}
			if tc.env != "" {
				t.Setenv("GOSTY_JOIN", tc.env)
			} else {
				args = append(args, "--join", "127.0.110.2")
			}
			start := time.Now()
			_, stderr, code := gosty(t, append(args, tc.extra...)...)
			if code == 0 {
				t.Fatalf("a node with --join and %s started (exit 0); stderr:\n%s", tc.name, stderr)
			}
			for _, want := range append(tc.missing, "--insecure", "--join") {
				if !strings.Contains(stderr, want) {
					t.Errorf("the refusal does not name %s:\n%s", want, stderr)
				}
			}
			if len(tc.missing) == 1 && strings.Contains(stderr, "--cluster-key-file") {
				t.Errorf("the refusal names --cluster-key-file, which was given:\n%s", stderr)
			}
			if _, err := os.Stat(data); err == nil {
				t.Errorf("the refused node made its data dir")
			}
			t.Logf("exit %d after %v: %s", code, time.Since(start).Round(time.Millisecond), strings.TrimSpace(stderr))
		})
	}
	if t.Failed() {
		return
	}

	// With --insecure (and no keys: the later empty flags win over the
	// harness's) the node runs, joined to itself, and says what is open.
	c := e2e.New(t, e2e.Opts{Subnet: 110, First: 3, Size: 1, Fast: true},
		"--insecure", "--cluster-key-file", "", "--gossip-key-file", "")
	if err := c.Start(0); err != nil {
		t.Fatal(err)
	}
	c.Agree(t, []int{0}, 1, 1)
	st, err := c.Status(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Insecure) != 2 || !strings.Contains(st.Insecure[0], "no cluster key") || !strings.Contains(st.Insecure[1], "no gossip key") {
		t.Errorf("GET /api/v1/cluster says insecure %q, want the missing cluster and gossip keys", st.Insecure)
	}
	if out, _, code := gosty(t, "members", "--server", c.HTTP(0)); code != 0 || !strings.Contains(out, "INSECURE") {
		t.Errorf("gosty members (exit %d) does not say INSECURE:\n%s", code, out)
	}
	if n := c.Logs.Count(`"level":"ERROR","msg":"INSECURE`); n != 1 {
		t.Errorf("%d ERROR lines saying INSECURE, want 1", n)
	}
	// The peer ports are where --bind-addr puts them, HTTP where
	// --http-addr does.
	pid := c.Pid(0)
	checkListeners(t, pid, map[string]bool{"127.0.110.3": true}, "127.0.110.3:8080")
}

// TestLoneNodeListensOnLoopback starts a node as `make run` does (no
// --join, no --bind-addr; the HTTP address on every interface): gossip (TCP
// and UDP), raft and the internal API listen on 127.0.0.1 only, which the
// process's own sockets show, and a non-loopback address of this machine
// refuses them while it answers HTTP. The ports are free ones given with
// the flags (the defaults 7946-7948 may be taken by a local cluster); the
// bind address is the default.
func TestLoneNodeListensOnLoopback(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a node process")
	}
	ports := map[string]int{}
	for _, p := range []string{"http", "gossip", "raft", "internal"} {
		for {
			port := nodetest.FreePort(t)
			if !slices.Contains(mapValues(ports), port) && udpFree(port) {
				ports[p] = port
				break
			}
		}
	}
	var out e2e.Buffer
	cmd := e2e.StartProcess(t, "", &out, "node", "--name", "lone", "--data-dir", filepath.Join(t.TempDir(), "data"),
		"--http-addr", fmt.Sprintf(":%d", ports["http"]), "--gossip-port", strconv.Itoa(ports["gossip"]),
		"--raft-port", strconv.Itoa(ports["raft"]), "--internal-port", strconv.Itoa(ports["internal"]), "--fast")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node log:\n%s", out.Tail(8000))
		}
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", ports["http"])
	nodetest.WaitReady(t, base, 60*time.Second)

	ls := checkListeners(t, cmd.Process.Pid, map[string]bool{"127.0.0.1": true}, fmt.Sprintf(":%d", ports["http"]))
	for _, want := range []string{
		fmt.Sprintf("tcp 127.0.0.1:%d", ports["gossip"]), fmt.Sprintf("udp 127.0.0.1:%d", ports["gossip"]),
		fmt.Sprintf("tcp 127.0.0.1:%d", ports["raft"]), fmt.Sprintf("tcp 127.0.0.1:%d", ports["internal"]),
	} {
		if !slices.Contains(ls, want) {
			t.Errorf("no listener %s among %q", want, ls)
		}
	}
	if !strings.Contains(out.String(), `"bind":"127.0.0.1"`) {
		t.Errorf("the node does not log its bind address 127.0.0.1")
	}

	// From a non-loopback address of this machine: HTTP answers, the peer
	// ports refuse.
	ip := nonLoopbackIP()
	if ip == "" {
		t.Logf("no non-loopback address to dial from; the sockets above are the check")
		return
	}
	dial := func(port int) error {
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(ip, strconv.Itoa(port)), 5*time.Second)
		if err == nil {
			conn.Close()
		}
		return err
	}
	if err := dial(ports["http"]); err != nil {
		t.Errorf("HTTP on %s: %v (the dial check cannot tell)", ip, err)
	}
	for _, p := range []string{"gossip", "raft", "internal"} {
		if err := dial(ports[p]); err == nil {
			t.Errorf("the %s port answers on %s", p, ip)
		}
	}
	t.Logf("listeners %q; peer ports refused on %s", ls, ip)
}

// TestLocalClusterMakesKeys runs `gosty cluster` (what `make cluster`
// runs) with no keys given: it makes a cluster key and a gossip key in its
// data dir, the nodes (which --join each other) start with them and form
// a cluster that runs nothing insecure, and gossip is encrypted.
func TestLocalClusterMakesKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node processes")
	}
	dir := filepath.Join(t.TempDir(), "cluster")
	cmd := exec.Command(os.Args[0], "cluster", "--nodes", "3", "--subnet", "127.0.110", "--first", "11",
		"--data-dir", dir, "--", "--fast", "--stabilize", "2s")
	cmd.Env = append(os.Environ(), "GOSTY_TEST_MAIN=1")
	var out e2e.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// The nodes inherit the output pipe; once the cluster command is gone,
	// do not wait on them for its end.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// exited is closed once the cluster command is gone, waitErr then
	// holds what Wait said (both the cleanup and the test read them).
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		// Stop it as Ctrl-C does (it stops its nodes); should that fail,
		// kill whatever still runs with this test's data dir.
		select {
		case <-exited:
		default:
			cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-exited:
			case <-time.After(2 * time.Minute):
				killProcsWith(dir)
				cmd.Process.Kill()
				<-exited
			}
		}
		killProcsWith(dir)
		if t.Failed() {
			t.Logf("gosty cluster output:\n%s", e2e.Tail(out.String(), 30000))
		}
	})
	c := &e2e.Cluster{Set: &pods.Set{Prefix: "gosty", Net: "127.0.110", First: 11, Size: 3}} // the pods `gosty cluster` started
	c.Agree(t, []int{0, 1, 2}, 3, 3)

	for _, name := range []string{"cluster.key", "gossip.key"} {
		path := filepath.Join(dir, name)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
		b, _ := os.ReadFile(path)
		if raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b))); err != nil || len(raw) != 32 {
			t.Errorf("%s: want 32 random bytes in base64: %v, %d bytes", name, err, len(raw))
		}
	}
	for i := range 3 {
		if st, err := c.Status(i); err != nil || len(st.Insecure) > 0 {
			t.Errorf("%s: %v, insecure %q", c.Name(i), err, st.Insecure)
		}
	}
	if s := out.String(); strings.Count(s, `"encrypted":true`) < 3 || strings.Contains(s, "INSECURE") {
		t.Errorf("want 3 nodes gossiping encrypted and none insecure")
	}

	// Ctrl-C stops the cluster.
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-exited:
		if waitErr != nil {
			t.Errorf("gosty cluster exited with %v", waitErr)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("gosty cluster did not stop within 2 minutes of SIGINT")
	}
}

// TestLocalKeys: localKeys makes both keys once and keeps them.
func TestLocalKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "c")
	ck, gk, err := localKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	a1, _ := os.ReadFile(ck)
	b1, _ := os.ReadFile(gk)
	if bytes.Equal(a1, b1) || len(a1) == 0 {
		t.Fatalf("cluster key %q, gossip key %q", a1, b1)
	}
	ck2, gk2, err := localKeys(dir)
	if err != nil || ck2 != ck || gk2 != gk {
		t.Fatal(err, ck2, gk2)
	}
	a2, _ := os.ReadFile(ck)
	b2, _ := os.ReadFile(gk)
	if !bytes.Equal(a1, a2) || !bytes.Equal(b1, b2) {
		t.Fatal("the keys changed on the second call")
	}
}

// checkListeners lists pid's listening sockets as "tcp ip:port" and "udp
// ip:port" (from /proc: the process's socket inodes, found in the net
// tables) and fails the test for any that is neither on an allowed IP nor
// the public address public (":port" = every interface).
func checkListeners(t *testing.T, pid int, allowed map[string]bool, public string) []string {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if inode, ok := strings.CutPrefix(link, "socket:["); err == nil && ok {
			inodes[strings.TrimSuffix(inode, "]")] = true
		}
	}
	_, publicPort, _ := net.SplitHostPort(public)
	var out []string
	for _, table := range []string{"tcp", "tcp6", "udp", "udp6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || !inodes[fields[9]] {
				continue
			}
			proto := strings.TrimSuffix(table, "6")
			if proto == "tcp" && fields[3] != "0A" { // LISTEN
				continue
			}
			if proto == "udp" && fields[3] != "07" { // unconnected
				continue
			}
			ip, port := procAddr(t, fields[1])
			l := fmt.Sprintf("%s %s", proto, net.JoinHostPort(ip.String(), strconv.Itoa(port)))
			out = append(out, l)
			isPublic := proto == "tcp" && strconv.Itoa(port) == publicPort &&
				(public == net.JoinHostPort(ip.String(), publicPort) || strings.HasPrefix(public, ":") && ip.IsUnspecified())
			if !allowed[ip.String()] && !isPublic {
				t.Errorf("the node listens on %s", l)
			}
		}
		f.Close()
	}
	slices.Sort(out)
	if len(out) < 5 {
		t.Errorf("only %q found listening: want HTTP, gossip (TCP and UDP), raft and internal", out)
	}
	return out
}

// procAddr decodes a /proc/net address ("0100007F:1F90"): the IP as the
// kernel's 32-bit words in host byte order, the port in hex.
func procAddr(t *testing.T, s string) (net.IP, int) {
	t.Helper()
	h, p, ok := strings.Cut(s, ":")
	raw, err := hex.DecodeString(h)
	port, perr := strconv.ParseUint(p, 16, 16)
	if !ok || err != nil || perr != nil || (len(raw) != 4 && len(raw) != 16) {
		t.Fatalf("bad /proc/net address %q", s)
	}
	ip := make(net.IP, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.BigEndian.PutUint32(ip[i:], binary.NativeEndian.Uint32(raw[i:]))
	}
	if v4 := ip.To4(); v4 != nil && len(raw) == 16 && !ip.IsUnspecified() {
		ip = v4 // an IPv4-mapped address
	}
	return ip, int(port)
}

// nonLoopbackIP is an IPv4 address of this machine that is not loopback
// ("" if there is none).
func nonLoopbackIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP.String()
		}
	}
	return ""
}

func udpFree(port int) bool {
	c, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func mapValues(m map[string]int) []int {
	var out []int
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// killProcsWith SIGKILLs every process whose command line mentions dir
// (the nodes of a `gosty cluster` that could not stop them).
func killProcsWith(dir string) {
	for _, pid := range e2e.Mentioning(dir) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}
