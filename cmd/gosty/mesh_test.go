package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/node/nodetest"
)

// TestMeshFormsSharesWorkAndReplicates starts three nodes at the same
// moment (one cluster, one leader, three voters after promotion), adds a
// fourth as a non-voter, runs a job submitted to a follower across nodes,
// and checks that any node serves identical bytes and that sources and
// outputs reach the replication factor.
func TestMeshFormsSharesWorkAndReplicates(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node processes and ffmpeg")
	}
	c := e2e.FastCluster(t, 10, 3, "--slots", "1", "--replicas", "2", "--preset", "ultrafast")
	c.StartAll(t, 3)
	v := c.Agree(t, []int{0, 1, 2}, 3, 3)
	t.Logf("formed: %s", e2e.Summary(v))

	if err := c.Start(3); err != nil {
		t.Fatal(err)
	}
	v = c.Agree(t, []int{0, 1, 2, 3}, 4, 3)
	for _, m := range v.Members {
		if m.Name == "gosty-3" && (m.Voter || m.RaftRole != "nonvoter") {
			t.Fatalf("the fourth node should stay a non-voter: %+v", m)
		}
	}

	follower := c.Follower(v)
	src := filepath.Join(t.TempDir(), "clip.mp4")
	nodetest.AVClip(t, src, "640x360", 16)
	id := e2e.Upload(t, c.HTTP(follower), src, `{"chunk_seconds":2}`)

	job := e2e.WaitDone(t, 4*time.Minute, "", id, c.HTTP(follower))
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
			s := e2e.FetchSum(t, c.HTTP(i)+f)
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
			if c.Holders([]int{0, 1, 2, 3}, h) < 2 {
				return false
			}
		}
		return true
	})
	// The metrics say the same: nothing short of copies, and task pulls
	// and replication pushes were counted.
	nodetest.WaitFor(t, 30*time.Second, "gosty_blobs_under_replicated 0", func() bool {
		return strings.Contains(e2e.Metrics(t, c.HTTP(0)), "\ngosty_blobs_under_replicated 0\n")
	})
	var moved string
	for i := range 4 {
		moved += e2e.Metrics(t, c.HTTP(i))
	}
	for _, want := range []string{`direction="in",reason="task"`, `direction="in",reason="replicate"`, `direction="out",reason="replicate"`} {
		if !strings.Contains(moved, "gosty_transfer_bytes_total{"+want+"}") {
			t.Errorf("no gosty_transfer_bytes_total{%s} on any node", want)
		}
	}
}

// TestNodeRejoinsOnNewIP kills a node (as a lost machine would) and starts
// it with the same data dir on another address, as a rescheduled pod gets;
// gossip carries its new raft address and it rejoins with no manual step.
func TestNodeRejoinsOnNewIP(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node processes")
	}
	c := e2e.FastCluster(t, 11, 3)
	c.StartAll(t, 3)
	c.Agree(t, []int{0, 1, 2}, 3, 3)
	c.Kill(2)
	c.Move(2, "127.0.11.50")
	if err := c.Start(2); err != nil {
		t.Fatal(err)
	}
	v := c.Agree(t, []int{0, 1, 2}, 3, 3)
	t.Logf("after the move: %s", e2e.Summary(v))
	nodetest.WaitReady(t, c.HTTP(2), 30*time.Second)
}
