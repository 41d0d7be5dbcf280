package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/node/nodetest"
)

// TestChaos runs jobs through a four-node cluster, whose blob collectors
// look every second, while it kills a worker, kills the leader, pauses a
// node past its lease and partitions one, and checks the end state: every
// job done, every output the same on every node and held by two live
// nodes, one leader that everyone agrees on. Then it deletes a job and
// uploads the same bytes again, twice at once, through two nodes (the
// collector must not take what the new jobs share with the deleted one),
// brings a node back under its name with a wiped disk and, once every
// file has two good copies again, kills the leader: every file of every
// done job still downloads with the same sha256 from every node left.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node processes and ffmpeg")
	}
	p := newPartition(t, 18)
	c := e2e.FastCluster(t, 18, 4, "--slots", "1", "--drain-timeout", "5s", "--gc-grace", "1s", "--gc-interval", "1s")
	all := []int{0, 1, 2, 3}
	for _, i := range all {
		if err := c.Start(i); err != nil {
			t.Fatal(err)
		}
	}
	leaderOf := func() int { return c.Ordinal(c.Agree(t, all, 4, 3).Leader) }
	notLeader := func(l, skip int) int {
		for _, i := range all {
			if i != l && i != skip {
				return i
			}
		}
		return -1
	}
	dir := t.TempDir()
	var jobs, clips []string
	submit := func(pod, secs int) {
		src := nodetest.GenClip(t, filepath.Join(dir, fmt.Sprintf("clip%d.mp4", len(jobs))), "-f", "lavfi",
			"-i", fmt.Sprintf("testsrc2=size=480x270:rate=25:duration=%d", secs),
			"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=%d:duration=%d", 300+100*len(jobs), secs),
			"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest")
		clips = append(clips, src)
		jobs = append(jobs, e2e.Upload(t, c.HTTP(pod), src, `{"chunk_seconds":2,"preset":"medium"}`))
	}
	running := func(id string) func() bool {
		return func() bool {
			var j httpapi.JobView
			return e2e.GetJSON(c.HTTP(0)+"/api/v1/jobs/"+id, &j) == nil && (j.State == "transcoding" || j.State == "packaging" || j.State == "done")
		}
	}

	// 1. A worker dies and comes back.
	l := leaderOf()
	submit(l, 16)
	nodetest.WaitFor(t, 2*time.Minute, "job 1 running", running(jobs[0]))
	w := notLeader(l, -1)
	if err := c.Restart(w, 0); err != nil { // killed, back at once
		t.Fatal(err)
	}
	// 2. The leader dies and comes back.
	l = leaderOf()
	submit(notLeader(l, -1), 12)
	nodetest.WaitFor(t, 2*time.Minute, "job 2 running", running(jobs[1]))
	if err := c.Restart(l, 0); err != nil { // killed, back at once
		t.Fatal(err)
	}
	// 3. A node is paused past its lease, then resumes.
	l = leaderOf()
	submit(l, 12)
	paused := notLeader(l, -1)
	c.Signal(paused, syscall.SIGSTOP)
	time.Sleep(6 * time.Second) // the fault itself lasts a while; nothing waits on it
	c.Signal(paused, syscall.SIGCONT)
	// 4. A node is partitioned away, then healed.
	l = leaderOf()
	submit(l, 10)
	p.isolate(c.IP(notLeader(l, paused)))
	time.Sleep(5 * time.Second) // likewise: the partition's length
	p.heal()

	// The end state.
	leaderOf()
	for _, id := range jobs {
		for _, i := range all {
			waitJobOn(t, c, []int{i}, id)
		}
	}
	var sums []string
	for _, id := range jobs {
		j, err := e2e.Job(c.HTTP(0), "", id)
		if err != nil {
			t.Fatal(err)
		}
		if j.Outputs == nil {
			t.Fatalf("job %s has no outputs", id)
		}
		files := []string{j.Outputs.HLS, j.Outputs.DASH}
		for _, u := range j.Outputs.MP4 {
			files = append(files, u)
		}
		for _, f := range files {
			want := e2e.FetchSum(t, c.HTTP(0)+f)
			for _, i := range all[1:] {
				if got := e2e.FetchSum(t, c.HTTP(i)+f); got != want {
					t.Fatalf("job %s %s differs on %s", id, f, c.Name(i))
				}
			}
			sums = append(sums, want)
		}
	}
	nodetest.WaitFor(t, 60*time.Second, "two live copies of every output", func() bool {
		for _, h := range sums {
			if c.Holders(all, h) < 2 {
				return false
			}
		}
		return true
	})

	// 5. Delete a job and upload its bytes again at once, twice, through
	// two nodes, while the collectors look every second.
	l = leaderOf()
	req, _ := http.NewRequest(http.MethodDelete, c.HTTP(l)+"/api/v1/jobs/"+jobs[0], nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("delete %s: %s", jobs[0], resp.Status)
	}
	again := []string{
		e2e.Upload(t, c.HTTP(notLeader(l, -1)), clips[0], `{"chunk_seconds":2,"preset":"medium"}`),
		e2e.Upload(t, c.HTTP(l), clips[0], `{"chunk_seconds":2,"preset":"medium"}`),
	}
	jobs = append(jobs[1:], again...)
	for _, id := range again {
		waitJobOn(t, c, all, id)
	}

	// 6. A node comes back under its name with a wiped disk; once every
	// file has two good copies again, the leader dies.
	want := map[string]string{} // URL → sha256
	for _, id := range jobs {
		var j httpapi.JobView
		if err := e2e.GetJSON(c.HTTP(0)+"/api/v1/jobs/"+id, &j); err != nil || j.State != "done" {
			t.Fatalf("job %s: %v %s", id, err, j.State)
		}
		for _, u := range publishedFiles(t, c.HTTP(0), j) {
			want[u] = e2e.FetchSum(t, c.HTTP(0)+u)
		}
	}
	settled := func(what string) {
		t.Helper()
		last := time.Now()
		nodetest.WaitFor(t, 3*time.Minute, what, func() bool {
			var under []float64
			for _, i := range all {
				under = append(under, metricValue(c.HTTP(i), "gosty_blobs_under_replicated"))
			}
			short := map[string]int{}
			for u, sum := range want {
				if n := goodCopies(c, sum, all...); n < 2 {
					short[u] = n
				}
			}
			if time.Since(last) > 15*time.Second {
				t.Logf("under-replicated per node: %v; files short of two good copies: %v", under, short)
				last = time.Now()
			}
			return len(short) == 0 && under[0] == 0 && under[1] == 0 && under[2] == 0 && under[3] == 0
		})
	}
	settled("two good copies of every file") // a job is done with one; replication makes the second
	l = leaderOf()
	wiped := notLeader(l, -1)
	c.Kill(wiped)
	if err := os.RemoveAll(filepath.Join(c.DataDir(wiped))); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(wiped); err != nil {
		t.Fatal(err)
	}
	l = leaderOf()
	var live []int
	for _, i := range all {
		if i != l {
			live = append(live, i)
		}
	}
	settled("two good copies of every file after the rebirth") // one at least is not the leader's
	c.Kill(l)
	for _, i := range live {
		for u, sum := range want {
			if got := e2e.FetchSum(t, c.HTTP(i)+u); got != sum {
				t.Fatalf("%s served %s with other bytes after the rebirth and the leader's death", c.Name(i), u)
			}
		}
	}
}
