package node

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestMetricsExposed scrapes a real node and checks the series DESIGN.md
// names are there with sane values for a one-node cluster.
func TestMetricsExposed(t *testing.T) {
	n := startNode(t, filepath.Join(t.TempDir(), "data"), nil)
	body := scrape(t, n.base)
	for _, want := range []string{
		`gosty_raft_state{state="leader"} 1`,
		`gosty_raft_state{state="follower"} 0`,
		"gosty_raft_voters 1",
		"gosty_raft_servers 1",
		"gosty_raft_healthy_voters 1",
		"gosty_raft_failure_tolerance 0",
		"gosty_raft_last_contact_seconds 0",
		`gosty_members{state="alive"} 1`,
		`gosty_members{state="dead"} 0`,
		`gosty_jobs{state="queued"} 0`,
		"gosty_queue_depth 0",
		"gosty_blobs_under_replicated 0",
		"gosty_task_slots 2",
		"gosty_tasks_in_flight",
		"gosty_upload_bytes_total 0",
		`gosty_upload_ack_seconds_count{outcome="failed"} 0`,
		"gosty_raft_term ",
		"gosty_raft_commit_index ",
		"gosty_raft_applied_index ",
		`gosty_jobs_finished_total{state="failed"} 0`,
		"gosty_blob_store_bytes 0",
		"gosty_data_volume_free_bytes ",
		"gosty_data_volume_size_bytes ",
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// scrape returns the text of a node's /metrics.
func scrape(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	return string(b)
}
