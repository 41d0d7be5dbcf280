package main

import (
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/node/nodetest"
)

// partition cuts one loopback address off from its subnet with iptables
// (nodes dial from their bind address, so source and destination say who
// talks); the test's own requests come from 127.0.0.1 and still pass.
type partition struct {
	t     *testing.T
	chain string
}

func newPartition(t *testing.T, subnet int) *partition {
	t.Helper()
	if out, err := exec.Command("iptables", "-S", "INPUT").CombinedOutput(); err != nil {
		t.Skipf("iptables is not usable here (make test installs it as root): %v %s", err, out)
	}
	p := &partition{t: t, chain: fmt.Sprintf("GOSTY-TEST-%d", subnet)}
	// A run killed before its cleanup leaves its chain behind: the chain
	// belongs to this test's subnet alone, so take it down first.
	p.remove()
	p.run("-N", p.chain)
	p.run("-I", "INPUT", "-j", p.chain)
	t.Cleanup(p.remove)
	return p
}

// remove unhooks, flushes and deletes the chain (each step may find
// nothing to do).
func (p *partition) remove() {
	for exec.Command("iptables", "-D", "INPUT", "-j", p.chain).Run() == nil {
	}
	exec.Command("iptables", "-F", p.chain).Run()
	exec.Command("iptables", "-X", p.chain).Run()
}

func (p *partition) run(args ...string) {
	p.t.Helper()
	if out, err := exec.Command("iptables", args...).CombinedOutput(); err != nil {
		p.t.Fatalf("iptables %v: %v %s", args, err, out)
	}
}

// isolate drops everything between ip and the rest of its /24.
func (p *partition) isolate(ip string) {
	net := ip[:strings.LastIndexByte(ip, '.')] + ".0/24"
	p.run("-A", p.chain, "-s", ip, "-d", ip, "-j", "RETURN")
	p.run("-A", p.chain, "-s", ip, "-d", net, "-j", "DROP")
	p.run("-A", p.chain, "-s", net, "-d", ip, "-j", "DROP")
}

func (p *partition) heal() { p.run("-F", p.chain) }

// TestPartitionedLeader cuts the leader off: it can no longer commit (an
// upload to it fails and leaves no job anywhere), the majority elects a new
// leader and completes a job, and after healing the old leader catches up.
func TestPartitionedLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node processes and ffmpeg")
	}
	p := newPartition(t, 17)
	c := e2e.FastCluster(t, 17, 3, "--slots", "1")
	c.StartAll(t, 3)
	v := c.Agree(t, []int{0, 1, 2}, 3, 3)
	cut := c.Ordinal(v.Leader)
	var majority []int
	for i := range 3 {
		if i != cut {
			majority = append(majority, i)
		}
	}
	p.isolate(c.IP(cut))
	isolated := time.Now()

	// The majority elects a new leader and sees the old one gone.
	c.Agree(t, majority, 2, 2)
	t.Logf("partition → new leader on the majority side: %v", time.Since(isolated).Round(10*time.Millisecond))

	dir := t.TempDir()
	src := nodetest.GenClip(t, filepath.Join(dir, "clip.mp4"), "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=6",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p")

	// The cut-off node cannot commit: the upload fails, and no job exists.
	code, body := rawUpload(t, c.HTTP(cut), src)
	if code < 500 {
		t.Fatalf("an upload to the isolated node answered %d: %s", code, body)
	}
	var list struct{ Jobs []struct{ ID string } }
	if err := e2e.GetJSON(c.HTTP(majority[0])+"/api/v1/jobs", &list); err != nil || len(list.Jobs) != 0 {
		t.Fatalf("the isolated node's upload left jobs %v (%v)", list.Jobs, err)
	}

	// The majority keeps working.
	id := e2e.Upload(t, c.HTTP(majority[0]), src, `{"chunk_seconds":2}`)
	waitJobOn(t, c, []int{majority[0]}, id)

	// Healed, the old leader rejoins and catches up with the job log.
	p.heal()
	c.Agree(t, []int{0, 1, 2}, 3, 3)
	j := waitJobOn(t, c, []int{cut}, id)
	checkPlayableDuration(t, c.HTTP(cut), j, 6)
}

func rawUpload(t *testing.T, base, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/api/v1/jobs?filename=clip.mp4", strings.NewReader(e2e.ReadFile(t, path)))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		return 599, err.Error()
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	n, _ := resp.Body.Read(buf)
	b.Write(buf[:n])
	return resp.StatusCode, b.String()
}
