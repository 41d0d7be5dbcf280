package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// localCluster runs N node processes on one machine the way a StatefulSet
// runs pods: names prefix-0..prefix-(N-1), each on its own loopback IP with
// the same ports, each with its own data dir, all joined through the list
// of peer addresses (the stand-in for the headless Service's DNS name).
type localCluster struct {
	bin    string   // the gosty binary
	env    []string // extra environment for every node
	dir    string   // data dirs live in dir/<name>
	prefix string   // pod name prefix
	net    string   // first three octets, e.g. "127.0.0"
	first  int      // last octet of pod 0
	size   int      // pods the join list covers
	args   []string // extra node flags
	out    func(name string) io.Writer

	mu    sync.Mutex
	procs map[int]*exec.Cmd
	ips   map[int]string // an override (a pod rescheduled on a new IP)
	bins  map[int]string // an override (a pod updated to another release)
}

// SetBinary makes pod i run bin from its next Start (a rolling update).
func (c *localCluster) SetBinary(i int, bin string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bins == nil {
		c.bins = map[int]string{}
	}
	c.bins[i] = bin
}

func (c *localCluster) name(i int) string { return fmt.Sprintf("%s-%d", c.prefix, i) }

func (c *localCluster) ip(i int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ip, ok := c.ips[i]; ok {
		return ip
	}
	return fmt.Sprintf("%s.%d", c.net, c.first+i)
}

// HTTP is pod i's public base URL.
func (c *localCluster) HTTP(i int) string { return "http://" + net.JoinHostPort(c.ip(i), "8080") }

// joinList is what the headless Service's DNS name would resolve to: the
// current address of every ordinal up to size.
func (c *localCluster) joinList() string {
	var peers []string
	for i := range c.size {
		peers = append(peers, c.ip(i))
	}
	return strings.Join(peers, ",")
}

// Start starts pod i (with its existing data dir, if any).
func (c *localCluster) Start(i int) error {
	name, ip := c.name(i), c.ip(i)
	args := append([]string{"node", "--name", name, "--data-dir", filepath.Join(c.dir, name),
		"--bind-addr", ip, "--http-addr", net.JoinHostPort(ip, "8080"), "--join", c.joinList()}, c.args...)
	c.mu.Lock()
	bin := c.bin
	if b, ok := c.bins[i]; ok {
		bin = b
	}
	c.mu.Unlock()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), c.env...)
	if c.out != nil {
		w := c.out(name)
		cmd.Stdout, cmd.Stderr = w, w
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	c.mu.Lock()
	if c.procs == nil {
		c.procs = map[int]*exec.Cmd{}
	}
	c.procs[i] = cmd
	c.mu.Unlock()
	return nil
}

// Signal sends sig to pod i's process.
func (c *localCluster) Signal(i int, sig syscall.Signal) error {
	c.mu.Lock()
	cmd := c.procs[i]
	c.mu.Unlock()
	if cmd == nil {
		return fmt.Errorf("%s is not running", c.name(i))
	}
	return cmd.Process.Signal(sig)
}

// Stop sends SIGTERM, waits up to grace, then SIGKILLs, like the kubelet.
func (c *localCluster) Stop(i int, grace time.Duration) error {
	c.mu.Lock()
	cmd := c.procs[i]
	delete(c.procs, i)
	c.mu.Unlock()
	if cmd == nil {
		return nil
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(grace):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return fmt.Errorf("%s did not stop within %v", c.name(i), grace)
	}
}

// Kill SIGKILLs pod i and reaps it.
func (c *localCluster) Kill(i int) {
	c.mu.Lock()
	cmd := c.procs[i]
	delete(c.procs, i)
	c.mu.Unlock()
	if cmd != nil {
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	}
}

// Move makes pod i come back on another IP at its next Start.
func (c *localCluster) Move(i int, ip string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ips == nil {
		c.ips = map[int]string{}
	}
	c.ips[i] = ip
}

// Running lists the ordinals of running pods, in order.
func (c *localCluster) Running() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for i := range c.procs {
		out = append(out, i)
	}
	sort.Ints(out)
	return out
}

// Scale does what the StatefulSet controller does for `kubectl scale`:
// up, it starts the missing pods name-0..name-(n-1) (fresh data dirs for
// new ordinals); down, it stops pods from the highest ordinal with SIGTERM
// and the grace period, one at a time, and deletes each removed pod's data
// (persistentVolumeClaimRetentionPolicy whenScaled: Delete).
func (c *localCluster) Scale(n int, grace time.Duration) error {
	running := map[int]bool{}
	for _, i := range c.Running() {
		running[i] = true
	}
	for i := range n {
		if !running[i] {
			if err := c.Start(i); err != nil {
				return err
			}
		}
	}
	for i := c.size + 64; i >= n; i-- {
		if !running[i] {
			continue
		}
		if err := c.Stop(i, grace); err != nil {
			return fmt.Errorf("scale down %s: %w", c.name(i), err)
		}
		if err := os.RemoveAll(filepath.Join(c.dir, c.name(i))); err != nil {
			return err
		}
	}
	return nil
}

// StopAll stops every pod, highest ordinal first.
func (c *localCluster) StopAll(grace time.Duration) {
	r := c.Running()
	for k := len(r) - 1; k >= 0; k-- {
		c.Stop(r[k], grace)
	}
}

// runCluster is `gosty cluster`: a local multi-node cluster in the
// foreground until interrupted.
func runCluster(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gosty cluster", flag.ContinueOnError)
	nodes := fs.Int("nodes", 3, "number of nodes")
	dir := fs.String("data-dir", "./data/cluster", "parent of the nodes' data dirs")
	prefix := fs.String("prefix", "gosty", "node name prefix (names are prefix-0, prefix-1, ...)")
	subnet := fs.String("subnet", "127.0.0", "first three octets of the nodes' loopback addresses")
	first := fs.Int("first", 1, "last octet of node 0's address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := envDefaults(fs); err != nil {
		return err
	}
	if *nodes < 1 || *first+*nodes > 255 {
		return fmt.Errorf("cluster: --nodes %d does not fit the subnet", *nodes)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	// The nodes join each other, so they need keys (a node with --join
	// refuses to start without them): made once, kept with the data.
	ck, gk, err := localKeys(*dir)
	if err != nil {
		return err
	}
	fmt.Printf("keys  %s  %s\n", ck, gk)
	// Flags after the cluster's own (gosty cluster -- --insecure, or other
	// key files) come later on each node's command line, so they win.
	nodeArgs := append([]string{"--cluster-key-file", ck, "--gossip-key-file", gk}, fs.Args()...)
	c := &localCluster{bin: self, dir: *dir, prefix: *prefix, net: *subnet, first: *first, size: *nodes,
		args: nodeArgs, out: func(string) io.Writer { return os.Stderr }}
	for i := range *nodes {
		if err := c.Start(i); err != nil {
			c.StopAll(30 * time.Second)
			return err
		}
		fmt.Printf("%s  %s  data %s\n", c.name(i), c.HTTP(i), filepath.Join(*dir, c.name(i)))
	}
	<-ctx.Done()
	fmt.Println("stopping the cluster")
	c.StopAll(60 * time.Second)
	return nil
}

// localKeys returns dir/cluster.key and dir/gossip.key, each made (32
// random bytes in base64, mode 0600) if it does not exist yet, so that a
// local cluster keeps its keys across restarts like its data.
func localKeys(dir string) (clusterKey, gossipKey string, err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", "", fmt.Errorf("cluster keys: %w", err)
	}
	clusterKey, gossipKey = filepath.Join(dir, "cluster.key"), filepath.Join(dir, "gossip.key")
	for _, path := range []string{clusterKey, gossipKey} {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return "", "", fmt.Errorf("cluster keys: %w", err)
		}
		_, err = f.WriteString(base64.StdEncoding.EncodeToString(randomBytes(32)) + "\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
			return "", "", fmt.Errorf("cluster keys: %w", err)
		}
	}
	return clusterKey, gossipKey, nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return b
}
