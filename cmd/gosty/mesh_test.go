package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosty/gosty/node/nodetest"
)

// logs collects each node's output, shown when a test fails.
type logs struct {
	mu  sync.Mutex
	buf map[string]*bytes.Buffer
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (l *logs) writer(name string) io.Writer {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf == nil {
		l.buf = map[string]*bytes.Buffer{}
	}
	if l.buf[name] == nil {
		l.buf[name] = &bytes.Buffer{}
	}
	return lockedWriter{&l.mu, l.buf[name]}
}

// count is how many times s appears in every node's output.
func (l *logs) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, b := range l.buf {
		n += bytes.Count(b.Bytes(), []byte(s))
	}
	return n
}

func (l *logs) dump(t testing.TB) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for name, b := range l.buf {
		t.Logf("---- %s ----\n%s", name, tail(b.String(), 40000))
	}
}

// save writes each node's output to dir/<name>.log.
func (l *logs) save(t testing.TB, dir string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Log(err)
		return
	}
	for name, b := range l.buf {
		if err := os.WriteFile(filepath.Join(dir, name+".log"), b.Bytes(), 0o644); err != nil {
			t.Log(err)
		}
	}
}

// The keys of every newCluster: the cluster key, and a 32-byte gossip key
// (raw). A test may give a node other key files (flags later on its command
// line win).
const (
	testClusterKey = "test-cluster-key"
	testGossipKey  = "test-gossip-key-0123456789abcdef"
)

// newTestCluster is a localCluster of test-binary processes on
// 127.0.<subnet>.x with --fast timings, cleaned up (every process
// SIGKILLed) when the test ends.
func newTestCluster(t testing.TB, subnet, size int, extra ...string) *localCluster {
	t.Helper()
	c, _ := newCluster(t, clusterOpts{subnet: subnet, size: size, fast: true}, extra...)
	return c
}

// clusterOpts shape a process cluster for tests and benchmarks.
type clusterOpts struct {
	subnet, size int
	first        int      // last octet of pod 0 (default 1)
	bin          string   // node binary (default: this test binary as gosty)
	env          []string // extra environment for every node
	fast         bool     // --fast failure detection (tests); benchmarks of steady state run without it
	dir          string   // parent of the data dirs (default: a test temp dir)
}

// newCluster is a localCluster of node processes, cleaned up (every
// process SIGKILLed) when the test ends; it returns the nodes' collected
// output too.
func newCluster(t testing.TB, o clusterOpts, extra ...string) (*localCluster, *logs) {
	t.Helper()
	dir := o.dir
	if dir == "" {
		dir = t.TempDir()
	}
	// Every node joins the others, so it needs both keys (see
	// TestJoinNeedsKeys); tests that send the cluster key know it.
	key := filepath.Join(dir, "cluster.key")
	if err := os.WriteFile(key, []byte(testClusterKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	gossipKey := filepath.Join(dir, "gossip.key")
	if err := os.WriteFile(gossipKey, []byte(testGossipKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l := &logs{}
	env := append([]string{"GOSTY_TEST_MAIN=1"}, o.env...)
	bin := os.Args[0]
	if o.bin != "" {
		bin = o.bin
	}
	first := 1
	if o.first > 0 {
		first = o.first
	}
	args := []string{"--stabilize", "2s", "--cluster-key-file", key, "--gossip-key-file", gossipKey, "--log-level", "info"}
	if o.fast {
		args = append([]string{"--fast"}, args...)
	}
	c := &localCluster{
		bin: bin, env: env, dir: filepath.Join(dir, "data"),
		prefix: "gosty", net: fmt.Sprintf("127.0.%d", movedSubnet(t, o.subnet)), first: first, size: o.size,
		args: append(args, extra...),
		out:  l.writer,
	}
	t.Cleanup(func() {
		c.mu.Lock()
		var all []int
		for i := range c.procs {
			all = append(all, i)
		}
		c.mu.Unlock()
		for _, i := range all {
			c.Kill(i)
		}
		if t.Failed() {
			l.dump(t)
		}
		if d := os.Getenv("GOSTY_BENCH_LOGS"); d != "" { // keep every node's log for a look
			l.save(t, filepath.Join(d, fmt.Sprintf("%s-127.0.%d", strings.ReplaceAll(t.Name(), "/", "_"), o.subnet)))
		}
	})
	return c, l
}

// movedSubnet is the third octet a cluster of this subnet runs on:
// GOSTY_TEST_SUBNETS ("12=120,18=124") moves named subnets elsewhere, so
// that two checkouts can run the same process tests on one machine at
// once without their loopback addresses clashing.
func movedSubnet(t testing.TB, subnet int) int {
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

func getJSON(url string, v any) error { return getJSONAuth(url, "", v) }

// getJSONAuth is getJSON with an API token ("" sends none).
func getJSONAuth(url, token string, v any) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// summary is what every node must agree on: leader, and each alive
// member's raft role.
func (v clusterView) summary() string {
	var parts []string
	for _, m := range v.Members {
		if m.State == "alive" {
			parts = append(parts, m.Name+"="+m.RaftRole)
		}
	}
	sort.Strings(parts)
	return v.Leader + " " + strings.Join(parts, ",")
}

// agree waits until every listed pod reports the same cluster view with
// the wanted number of alive members and voters, and returns it.
func agree(t testing.TB, c *localCluster, pods []int, alive, voters int) clusterView {
	t.Helper()
	var v0 clusterView
	nodetest.WaitFor(t, 60*time.Second, fmt.Sprintf("%d pods to agree on %d alive, %d voters", len(pods), alive, voters), func() bool {
		var first string
		for k, i := range pods {
			var v clusterView
			if err := getJSON(c.HTTP(i)+"/api/v1/cluster", &v); err != nil || v.Leader == "" {
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
				first, v0 = v.summary(), v
			} else if v.summary() != first {
				return false
			}
		}
		return true
	})
	return v0
}

func uploadTo(t testing.TB, base, path, options string) string {
	t.Helper()
	code, body := nodetest.Upload(t, base, path, options)
	if code != http.StatusCreated {
		t.Fatalf("upload to %s: %d %s", base, code, body)
	}
	var j struct{ ID string }
	if err := json.Unmarshal(body, &j); err != nil {
		t.Fatal(err)
	}
	return j.ID
}

func fetchSum(t testing.TB, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	h := sha256.New()
	if _, err := io.Copy(h, resp.Body); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// holdersOf counts the pods whose data dir holds the blob with this hash.
func holdersOf(c *localCluster, pods []int, hash string) int {
	n := 0
	for _, i := range pods {
		if _, err := os.Stat(filepath.Join(c.dir, c.name(i), "blobs", hash[:2], hash)); err == nil {
			n++
		}
	}
	return n
}

// TestMeshFormsSharesWorkAndReplicates starts three nodes at the same
// moment (one cluster, one leader, three voters after promotion), adds a
// fourth as a non-voter, runs a job submitted to a follower across nodes,
// and checks that any node serves identical bytes and that sources and
// outputs reach the replication factor.
func TestMeshFormsSharesWorkAndReplicates(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node processes and ffmpeg")
	}
	c := newTestCluster(t, 10, 3, "--slots", "1", "--replicas", "2", "--preset", "ultrafast")
	for i := range 3 {
		if err := c.Start(i); err != nil {
			t.Fatal(err)
		}
	}
	v := agree(t, c, []int{0, 1, 2}, 3, 3)
	t.Logf("formed: %s", v.summary())

	if err := c.Start(3); err != nil {
		t.Fatal(err)
	}
	v = agree(t, c, []int{0, 1, 2, 3}, 4, 3)
	for _, m := range v.Members {
		if m.Name == "gosty-3" && (m.Voter || m.RaftRole != "nonvoter") {
			t.Fatalf("the fourth node should stay a non-voter: %+v", m)
		}
	}

	follower := -1
	for i := range 4 {
		if c.name(i) != v.Leader {
			follower = i
			break
		}
	}
	src := filepath.Join(t.TempDir(), "clip.mp4")
	nodetest.GenClip(t, src, "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=16",
		"-f", "lavfi", "-i", "sine=duration=16", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
		"-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest")
	id := uploadTo(t, c.HTTP(follower), src, `{"chunk_seconds":2}`)

	var job struct {
		State, Error string
		Chunks       []struct {
			EncodedBy string `json:"encoded_by"`
		}
		Outputs struct {
			HLS string            `json:"hls"`
			MP4 map[string]string `json:"mp4"`
		}
	}
	nodetest.WaitFor(t, 4*time.Minute, "job to finish", func() bool {
		if err := getJSON(c.HTTP(follower)+"/api/v1/jobs/"+id, &job); err != nil {
			return false
		}
		return job.State == "done" || job.State == "failed"
	})
	if job.State != "done" {
		t.Fatalf("job ended %s: %s", job.State, job.Error)
	}
	encoders := map[string]int{}
	for _, ch := range job.Chunks {
		encoders[ch.EncodedBy]++
	}
	if len(encoders) < 2 {
		t.Fatalf("all chunks encoded on one node: %v", encoders)
	}
	t.Logf("chunks per node: %v", encoders)

	// Any node serves the same bytes, local or streamed from a holder.
	var files []string
	files = append(files, job.Outputs.HLS)
	for _, u := range job.Outputs.MP4 {
		files = append(files, u)
	}
	// Reads are local: wait until every node has applied the job's end.
	for i := range 4 {
		waitJobOn(t, c, []int{i}, id)
	}
	sums := map[string]string{}
	for _, f := range files {
		for i := range 4 {
			s := fetchSum(t, c.HTTP(i)+f)
			if prev, ok := sums[f]; ok && prev != s {
				t.Fatalf("%s differs between nodes", f)
			}
			sums[f] = s
		}
	}

	// Sources and outputs reach two copies.
	srcBytes, _ := os.ReadFile(src)
	srcSum := sha256.Sum256(srcBytes)
	want := append([]string{hex.EncodeToString(srcSum[:])}, func() (out []string) {
		for _, s := range sums {
			out = append(out, s)
		}
		return out
	}()...)
	nodetest.WaitFor(t, 60*time.Second, "sources and outputs replicated", func() bool {
		for _, h := range want {
			if holdersOf(c, []int{0, 1, 2, 3}, h) < 2 {
				return false
			}
		}
		return true
	})
	// The metrics say the same: nothing short of copies, and task pulls
	// and replication pushes were counted.
	nodetest.WaitFor(t, 30*time.Second, "gosty_blobs_under_replicated 0", func() bool {
		return strings.Contains(metricsText(t, c.HTTP(0)), "\ngosty_blobs_under_replicated 0\n")
	})
	var moved string
	for i := range 4 {
		moved += metricsText(t, c.HTTP(i))
	}
	for _, want := range []string{`direction="in",reason="task"`, `direction="in",reason="replicate"`, `direction="out",reason="replicate"`} {
		if !strings.Contains(moved, "gosty_transfer_bytes_total{"+want+"}") {
			t.Errorf("no gosty_transfer_bytes_total{%s} on any node", want)
		}
	}
}

func metricsText(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestNodeRejoinsOnNewIP kills a node (as a lost machine would) and starts
// it with the same data dir on another address, as a rescheduled pod gets;
// gossip carries its new raft address and it rejoins with no manual step.
func TestNodeRejoinsOnNewIP(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node processes")
	}
	c := newTestCluster(t, 11, 3)
	for i := range 3 {
		if err := c.Start(i); err != nil {
			t.Fatal(err)
		}
	}
	agree(t, c, []int{0, 1, 2}, 3, 3)
	c.Kill(2)
	c.Move(2, "127.0.11.50")
	if err := c.Start(2); err != nil {
		t.Fatal(err)
	}
	v := agree(t, c, []int{0, 1, 2}, 3, 3)
	t.Logf("after the move: %s", v.summary())
	nodetest.WaitReady(t, c.HTTP(2), 30*time.Second)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
