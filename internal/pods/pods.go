// Package pods runs gosty node processes on one machine the way a
// StatefulSet runs pods: `gosty cluster` uses it, and so does the test
// harness (internal/e2e).
package pods

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Set runs N node processes on one machine the way a StatefulSet
// runs pods: names prefix-0..prefix-(N-1), each on its own loopback IP with
// the same ports, each with its own data dir, all joined through the list
// of peer addresses (the stand-in for the headless Service's DNS name).
type Set struct {
	Bin    string   // the gosty binary
	Env    []string // extra environment for every node
	Root   string   // data dirs live in Root/<name>
	Prefix string   // pod name prefix
	Net    string   // first three octets, e.g. "127.0.0"
	First  int      // last octet of pod 0
	Size   int      // pods the join list covers
	Args   []string // extra node flags (set before a Start)
	Out    func(name string) io.Writer

	mu    sync.Mutex
	procs map[int]*exec.Cmd
	ips   map[int]string // an override (a pod rescheduled on a new IP)
	bins  map[int]string // an override (a pod updated to another release)
}

// SetBinary makes pod i run bin from its next Start (a rolling update).
func (c *Set) SetBinary(i int, bin string) { c.override(&c.bins, i, bin) }

// override sets pod i's entry of one of the override maps.
func (c *Set) override(m *map[int]string, i int, v string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if *m == nil {
		*m = map[int]string{}
	}
	(*m)[i] = v
}

// Name is pod i's name, prefix-i.
func (c *Set) Name(i int) string { return fmt.Sprintf("%s-%d", c.Prefix, i) }

// Ordinal is the ordinal of the pod named name (-1 if it is not one of
// this set's names).
func (c *Set) Ordinal(name string) int {
	i, err := strconv.Atoi(strings.TrimPrefix(name, c.Prefix+"-"))
	if err != nil || !strings.HasPrefix(name, c.Prefix+"-") {
		return -1
	}
	return i
}

// DataDir is pod i's data dir.
func (c *Set) DataDir(i int) string { return filepath.Join(c.Root, c.Name(i)) }

// Pid is the process ID of pod i (0 when it is not running).
func (c *Set) Pid(i int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cmd := c.procs[i]; cmd != nil {
		return cmd.Process.Pid
	}
	return 0
}

// IP is pod i's current address.
func (c *Set) IP(i int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ip, ok := c.ips[i]; ok {
		return ip
	}
	return fmt.Sprintf("%s.%d", c.Net, c.First+i)
}

// HTTP is pod i's public base URL.
func (c *Set) HTTP(i int) string { return "http://" + net.JoinHostPort(c.IP(i), "8080") }

// joinList is what the headless Service's DNS name would resolve to: the
// current address of every ordinal up to size.
func (c *Set) joinList() string {
	var peers []string
	for i := range c.Size {
		peers = append(peers, c.IP(i))
	}
	return strings.Join(peers, ",")
}

// Start starts pod i (with its existing data dir, if any).
func (c *Set) Start(i int) error {
	name, ip := c.Name(i), c.IP(i)
	args := append([]string{"node", "--name", name, "--data-dir", filepath.Join(c.Root, name),
		"--bind-addr", ip, "--http-addr", net.JoinHostPort(ip, "8080"), "--join", c.joinList()}, c.Args...)
	c.mu.Lock()
	bin := c.Bin
	if b, ok := c.bins[i]; ok {
		bin = b
	}
	c.mu.Unlock()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), c.Env...)
	if c.Out != nil {
		w := c.Out(name)
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
func (c *Set) Signal(i int, sig syscall.Signal) error {
	c.mu.Lock()
	cmd := c.procs[i]
	c.mu.Unlock()
	if cmd == nil {
		return fmt.Errorf("%s is not running", c.Name(i))
	}
	return cmd.Process.Signal(sig)
}

// Stop sends SIGTERM, waits up to grace, then SIGKILLs, like the kubelet.
func (c *Set) Stop(i int, grace time.Duration) error {
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
		return fmt.Errorf("%s did not stop within %v", c.Name(i), grace)
	}
}

// Kill SIGKILLs pod i and reaps it.
func (c *Set) Kill(i int) {
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
func (c *Set) Move(i int, ip string) { c.override(&c.ips, i, ip) }

// Running lists the ordinals of running pods, in order.
func (c *Set) Running() []int {
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
func (c *Set) Scale(n int, grace time.Duration) error {
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
	for i := c.Size + 64; i >= n; i-- {
		if !running[i] {
			continue
		}
		if err := c.Stop(i, grace); err != nil {
			return fmt.Errorf("scale down %s: %w", c.Name(i), err)
		}
		if err := os.RemoveAll(c.DataDir(i)); err != nil {
			return err
		}
	}
	return nil
}

// StopAll stops every pod, highest ordinal first.
func (c *Set) StopAll(grace time.Duration) {
	r := c.Running()
	for k := len(r) - 1; k >= 0; k-- {
		c.Stop(r[k], grace)
	}
}
