package node

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/httpapi"
)

// finishedJob commits a job and cancels it at once: a finished job with no
// media to wait for.
func finishedJob(t *testing.T, n *testNode, i int) string {
	t.Helper()
	sum := sha256.Sum256([]byte(fmt.Sprint("history source ", i)))
	j := cluster.Job{ID: fmt.Sprintf("hist%03d", i), Name: "x.mp4", Origin: "n1",
		SourceBlob: cluster.BlobRef{Hash: hex.EncodeToString(sum[:]), Size: 1},
		Renditions: []cluster.Rendition{{Name: "240p", Width: 426, Height: 240}}}
	if err := n.log.Propose(t.Context(), cluster.OpJobSubmit, cluster.SubmitJob{Job: j}); err != nil {
		t.Fatal(err)
	}
	if err := n.log.Propose(t.Context(), cluster.OpJobCancel, cluster.JobRef{JobID: j.ID}); err != nil {
		t.Fatal(err)
	}
	return j.ID
}

func listIDs(t *testing.T, base string) []string {
	t.Helper()
	var l httpapi.JobList
	resp, err := http.Get(base + "/api/v1/jobs")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, j := range l.Jobs {
		ids = append(ids, j.ID)
	}
	return ids
}

// TestHistoryBound: beyond --history's count the leader forgets the oldest
// finished jobs, beyond its age those finished longer ago; running jobs
// stay whatever their age.
func TestHistoryBound(t *testing.T) {
	n := startNode(t, t.TempDir(), func(c *Config) {
		c.HistoryJobs, c.HistoryAge, c.HistoryInterval = 3, 0, 200*time.Millisecond
	})
	waitFor(t, 10*time.Second, "log version 2", func() bool { return n.store.FSM().LogVersion() >= cluster.LogV2 })
	var ids []string
	for i := range 5 {
		ids = append(ids, finishedJob(t, n, i))
	}
	waitFor(t, 10*time.Second, "the two oldest forgotten", func() bool {
		got := fmt.Sprint(listIDs(t, n.base))
		return got == fmt.Sprint([]string{ids[4], ids[3], ids[2]})
	})
	n.stop()

	m := startNode(t, t.TempDir(), func(c *Config) {
		c.HistoryJobs, c.HistoryAge, c.HistoryInterval = 0, 2*time.Second, 200*time.Millisecond
	})
	waitFor(t, 10*time.Second, "log version 2", func() bool { return m.store.FSM().LogVersion() >= cluster.LogV2 })
	old := finishedJob(t, m, 0)
	if got := listIDs(t, m.base); len(got) != 1 || got[0] != old {
		t.Fatalf("listed %v", got)
	}
	waitFor(t, 10*time.Second, "the job older than the history age forgotten", func() bool {
		return len(listIDs(t, m.base)) == 0
	})
}

// TestHealthzWhileOpening: the public port answers /healthz from the
// moment New opens it, before the node runs, and says it is not ready.
func TestHealthzWhileOpening(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Name, cfg.DataDir, cfg.HTTPAddr, cfg.BindAddr = "n1", t.TempDir(), "127.0.0.1:0", "127.0.0.1"
	cfg.RaftPort, cfg.GossipPort, cfg.InternalPort = 0, 0, 0
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.close()
	base := "http://" + n.HTTPAddr()
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 503, "/api/v1/jobs": 503} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s while opening: %d, want %d", path, resp.StatusCode, want)
		}
	}
}
