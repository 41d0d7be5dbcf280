package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/internal/pods"
	"github.com/gosty/gosty/node/nodetest"
)

// The keys of every Cluster: the cluster key, and a 32-byte gossip key
// (raw). A test may give a node other key files (flags later on its command
// line win).
const (
	ClusterKey = "test-cluster-key"
	GossipKey  = "test-gossip-key-0123456789abcdef"
)

// Opts shape a cluster of node processes for tests and benchmarks.
type Opts struct {
	Subnet, Size int
	First        int      // last octet of pod 0 (default 1)
	Bin          string   // node binary (default: the running test binary, which runs main under GOSTY_TEST_MAIN=1); Binary builds one
	Env          []string // extra environment for every node
	Fast         bool     // --fast failure detection (tests); benchmarks of steady state run without it
	Dir          string   // parent of the data dirs (default: a test temp dir)
}

// Cluster is a set of node processes run like a StatefulSet's pods (see
// pods.Set: Start, Stop, Kill, Signal, Move, Scale, ...), on 127.0.<Subnet>.x
// with the same ports on each, with both keys, every node's output in Logs.
type Cluster struct {
	*pods.Set
	Logs *Logs
}

// FastCluster is New with --fast timings: the usual cluster of the tests.
func FastCluster(t testing.TB, subnet, size int, extra ...string) *Cluster {
	t.Helper()
	return New(t, Opts{Subnet: subnet, Size: size, Fast: true}, extra...)
}

// New is a cluster of node processes (none started yet) whose nodes run
// with extra flags. When the test ends every node's process group (the
// node and its ffmpegs) is SIGKILLed and reaped, its output dumped if the
// test failed (and saved under $GOSTY_BENCH_LOGS when set), and its data
// removed with the test's temp dir.
func New(t testing.TB, o Opts, extra ...string) *Cluster {
	t.Helper()
	dir := o.Dir
	if dir == "" {
		dir = t.TempDir()
	}
	// Every node joins the others, so it needs both keys (see
	// TestJoinNeedsKeys); tests that send the cluster key know it.
	key := filepath.Join(dir, "cluster.key")
	if err := os.WriteFile(key, []byte(ClusterKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	gossipKey := filepath.Join(dir, "gossip.key")
	if err := os.WriteFile(gossipKey, []byte(GossipKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l := &Logs{}
	env := append([]string{"GOSTY_TEST_MAIN=1"}, o.Env...)
	bin := os.Args[0]
	if o.Bin != "" {
		bin = o.Bin
	}
	first := 1
	if o.First > 0 {
		first = o.First
	}
	args := []string{"--stabilize", "2s", "--cluster-key-file", key, "--gossip-key-file", gossipKey, "--log-level", "info"}
	if o.Fast {
		args = append([]string{"--fast"}, args...)
	}
	c := &Cluster{Set: &pods.Set{
		Bin: bin, Env: env, Root: filepath.Join(dir, "data"),
		Prefix: "gosty", Net: fmt.Sprintf("127.0.%d", MovedSubnet(t, o.Subnet)), First: first, Size: o.Size,
		Args: append(args, extra...),
		Out:  l.Writer,
	}, Logs: l}
	t.Cleanup(func() {
		for _, i := range c.Running() {
			if pid := c.Pid(i); pid > 0 {
				syscall.Kill(-pid, syscall.SIGKILL) // the group: no ffmpeg outlives its node
			}
			c.Kill(i)
		}
		if t.Failed() {
			l.Dump(t)
		}
		if d := os.Getenv("GOSTY_BENCH_LOGS"); d != "" { // keep every node's log for a look
			l.Save(t, filepath.Join(d, fmt.Sprintf("%s-127.0.%d", strings.ReplaceAll(t.Name(), "/", "_"), o.Subnet)))
		}
	})
	return c
}

// StartAll starts pods 0..n-1, failing the test if one does not start.
func (c *Cluster) StartAll(t testing.TB, n int) {
	t.Helper()
	for i := range n {
		if err := c.Start(i); err != nil {
			t.Fatal(err)
		}
	}
}

// Restart stops pod i and starts it again on its data dir, as a
// restarted pod: grace 0 is a crash (SIGKILL), otherwise SIGTERM and
// SIGKILL after grace, like the kubelet.
func (c *Cluster) Restart(i int, grace time.Duration) error {
	if grace == 0 {
		c.Kill(i)
	} else if err := c.Stop(i, grace); err != nil {
		return err
	}
	return c.Start(i)
}

// Log is pod i's output so far.
func (c *Cluster) Log(i int) string { return c.Logs.Of(c.Name(i)) }

// Holders counts the pods whose data dir holds the blob with this hash.
func (c *Cluster) Holders(pods []int, hash string) int {
	dirs := make([]string, len(pods))
	for k, i := range pods {
		dirs[k] = c.DataDir(i)
	}
	return Holders(hash, dirs...)
}

// Holders counts the data dirs that hold the blob with this hash.
func Holders(hash string, dataDirs ...string) int {
	n := 0
	for _, d := range dataDirs {
		if _, err := os.Stat(filepath.Join(d, "blobs", hash[:2], hash)); err == nil {
			n++
		}
	}
	return n
}

// Status is GET /api/v1/cluster on pod i.
func (c *Cluster) Status(i int) (httpapi.ClusterStatus, error) {
	var v httpapi.ClusterStatus
	err := GetJSON(c.HTTP(i)+"/api/v1/cluster", &v)
	return v, err
}

// Summary is what every node must agree on: the leader, and each alive
// member's raft role.
func Summary(v httpapi.ClusterStatus) string {
	var parts []string
	for _, m := range v.Members {
		if m.State == "alive" {
			parts = append(parts, m.Name+"="+m.RaftRole)
		}
	}
	slices.Sort(parts)
	return v.Leader + " " + strings.Join(parts, ",")
}

// Agree waits (up to a minute) until every listed pod reports the same
// leader and roles (Summary) with the wanted number of alive members and
// voters, and returns the first pod's view.
func (c *Cluster) Agree(t testing.TB, pods []int, alive, voters int) httpapi.ClusterStatus {
	t.Helper()
	return c.AgreeWithin(t, pods, alive, voters, time.Minute)
}

// AgreeWithin is Agree with a deadline of d.
func (c *Cluster) AgreeWithin(t testing.TB, pods []int, alive, voters int, d time.Duration) httpapi.ClusterStatus {
	t.Helper()
	var v0 httpapi.ClusterStatus
	nodetest.WaitFor(t, d, fmt.Sprintf("%d pods to agree on %d alive, %d voters", len(pods), alive, voters), func() bool {
		var first string
		for k, i := range pods {
			v, err := c.Status(i)
			if err != nil || v.Leader == "" {
				return false
			}
			a, vs := 0, 0
			for _, m := range v.Members {
				if m.State == "alive" {
					a++
					if m.Voter {
						vs++
					}
				}
			}
			if a != alive || vs != voters {
				return false
			}
			if k == 0 {
				first, v0 = Summary(v), v
			} else if Summary(v) != first {
				return false
			}
		}
		return true
	})
	return v0
}

// Suffrage is a server's suffrage in the raft configuration (voter or
// nonvoter), "" when it is not in it.
func Suffrage(v httpapi.ClusterStatus, name string) string {
	for _, r := range v.Raft {
		if r.Name == name {
			return r.Suffrage
		}
	}
	return ""
}

// Raft is the raft configuration's server names, sorted, and how many of
// them are voters.
func Raft(v httpapi.ClusterStatus) (names []string, voters int) {
	for _, s := range v.Raft {
		names = append(names, s.Name)
		if s.Suffrage == "voter" {
			voters++
		}
	}
	slices.Sort(names)
	return names, voters
}

// Follower is the first running pod that is not v's leader (-1 if none).
func (c *Cluster) Follower(v httpapi.ClusterStatus) int {
	for _, i := range c.Running() {
		if c.Name(i) != v.Leader {
			return i
		}
	}
	return -1
}

// WaitNewLeader waits up to d until pod i sees a leader other than old (a
// leader that was killed), and returns its view.
func (c *Cluster) WaitNewLeader(t testing.TB, i int, old string, d time.Duration) httpapi.ClusterStatus {
	t.Helper()
	var v httpapi.ClusterStatus
	nodetest.WaitFor(t, d, "a new leader", func() bool {
		cur, err := c.Status(i)
		v = cur
		return err == nil && cur.Leader != "" && cur.Leader != old
	})
	return v
}

// MovedSubnet is the third octet a cluster of this subnet runs on:
// GOSTY_TEST_SUBNETS ("12=120,18=124") moves named subnets elsewhere, so
// that two checkouts can run the same process tests on one machine at
// once without their loopback addresses clashing.
func MovedSubnet(t testing.TB, subnet int) int {
	for _, kv := range strings.Split(os.Getenv("GOSTY_TEST_SUBNETS"), ",") {
		from, to, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			continue
		}
		f, err1 := strconv.Atoi(from)
		n, err2 := strconv.Atoi(to)
		if err1 != nil || err2 != nil || n < 1 || n > 254 {
			t.Fatalf("GOSTY_TEST_SUBNETS: bad entry %q", kv)
		}
		if f == subnet {
			return n
		}
	}
	return subnet
}
