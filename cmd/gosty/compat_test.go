package main

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/node/nodetest"
)

// Compatibility with the previous release (25ac104, the last one whose log
// is version 1): its data dir opens with this build, and a cluster of it
// updates to this build, all nodes restarted together, while a job runs.
// (Not one node at a time: the previous release speaks plain TCP and HTTP
// to its peers, this build only TLS; see package cluster/peerlink.)

const previousRelease = "25ac10425ee109cacae9f2034cbc62baac067d39"

// fixture describes cmd/gosty/testdata/datadir-25ac104.tar.gz (written by
// testdata/mkfixture-25ac104.sh).
type fixture struct {
	Commit string `json:"commit"`
	Node   struct {
		Name string   `json:"name"`
		HTTP string   `json:"http_addr"`
		Args []string `json:"args"`
	} `json:"node"`
	Jobs []struct {
		ID       string `json:"id"`
		Name     string `json:"name"`
		Expected string `json:"expected_state"`
		Error    string `json:"error"`
		Files    []struct {
			Path   string `json:"path"`
			SHA256 string `json:"sha256"`
		} `json:"files"`
	} `json:"jobs"`
}

// TestOpensPreviousReleaseDataDir starts this build on a data dir the
// previous release wrote (a raft snapshot and log entries after it, with
// done, failed, canceled, expired and running jobs): every job is listed
// in its state, the running one finishes, every published file is served
// with the bytes it had; the finished jobs are compacted (the snapshot
// taken at stop is in the new format and holds none of their chunks or
// tasks), and after a restart on that snapshot the files are still served.
func TestOpensPreviousReleaseDataDir(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a node process and ffmpeg")
	}
	var fx fixture
	b, err := os.ReadFile("testdata/datadir-25ac104.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &fx); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(t.TempDir(), "data")
	untar(t, "testdata/datadir-25ac104.tar.gz", data)
	var args []string
	for _, a := range fx.Node.Args {
		args = append(args, strings.ReplaceAll(a, "<data-dir>", data))
	}
	base := "http://" + fx.Node.HTTP
	out := &e2e.Logs{}
	start := func() *exec.Cmd {
		t.Helper()
		cmd := e2e.StartProcess(t, "", out.Writer(fx.Node.Name), args...)
		nodetest.WaitReady(t, base, 30*time.Second)
		return cmd
	}
	t.Cleanup(func() {
		if t.Failed() {
			out.Dump(t)
		}
	})
	cmd := start()

	// The cluster moves to the new log version by itself (one node, new).
	nodetest.WaitFor(t, 30*time.Second, "log version 2", func() bool {
		var st httpapi.ClusterStatus
		return e2e.GetJSON(base+"/api/v1/cluster", &st) == nil && st.LogVersion == cluster.CommandVersion
	})
	for _, fj := range fx.Jobs {
		want := fj.Expected
		if want == "running" {
			want = "done" // it finishes under this build
		}
		var j httpapi.JobView
		nodetest.WaitFor(t, 4*time.Minute, "job "+fj.Name+" "+want, func() bool {
			j = httpapi.JobView{}
			if e2e.GetJSON(base+"/api/v1/jobs/"+fj.ID, &j) != nil {
				return false
			}
			if j.State == cluster.JobFailed && want != "failed" {
				t.Fatalf("job %s failed: %s", fj.Name, j.Error)
			}
			return string(j.State) == want || (want == "expired" && j.State == cluster.JobDone && !j.ExpiredAt.IsZero())
		})
		if j.Name != fj.Name || (fj.Error != "" && j.Error != fj.Error) {
			t.Errorf("job %s: name %q error %q", fj.ID, j.Name, j.Error)
		}
		if fj.Expected == "running" {
			e2e.FetchSum(t, base+j.Outputs.HLS) // it plays
		}
	}
	var list httpapi.JobList
	if err := e2e.GetJSON(base+"/api/v1/jobs", &list); err != nil || len(list.Jobs) != len(fx.Jobs) {
		t.Fatalf("list: %v, %d jobs, want %d", err, len(list.Jobs), len(fx.Jobs))
	}
	checkFiles := func() {
		t.Helper()
		for _, fj := range fx.Jobs {
			for _, f := range fj.Files {
				if got := e2e.FetchSum(t, base+httpapi.FileURL(fj.ID, f.Path)); got != f.SHA256 {
					t.Fatalf("job %s file %s: sha256 %s, want %s", fj.Name, f.Path, got, f.SHA256)
				}
			}
		}
	}
	checkFiles()

	// The jobs that finished under the old release are compacted (the one
	// that finished here was compact from the start), and that shows in
	// the snapshot taken at a graceful stop.
	nodetest.WaitFor(t, 30*time.Second, "the old finished jobs compacted", func() bool {
		return out.Count(`"msg":"job compacted"`) == len(fx.Jobs)-1
	})
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if n := compactJobs(t, data, true); n != len(fx.Jobs) {
		t.Fatalf("%d of %d jobs compact in the snapshot taken at stop", n, len(fx.Jobs))
	}
	start()
	checkFiles()
}

// compactJobs reads the newest raft snapshot of a data dir and counts its
// compact jobs; strict fails the test when the snapshot is not in the new
// format or keeps chunks or tasks of finished jobs.
func compactJobs(t *testing.T, data string, strict bool) int {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(data, "raft", "snapshots", "*", "state.bin"))
	sort.Slice(dirs, func(a, b int) bool { return snapIndex(dirs[a]) < snapIndex(dirs[b]) })
	if len(dirs) == 0 {
		if strict {
			t.Fatal("no snapshot")
		}
		return 0
	}
	raw, err := os.ReadFile(dirs[len(dirs)-1])
	if err == nil && strict && (len(raw) < 2 || raw[0] != 0x1f || raw[1] != 0x8b) {
		err = errors.New("the snapshot is not in the version 2 format")
	}
	var st *cluster.State
	if err == nil {
		st, err = cluster.ReadState(strings.NewReader(string(raw)))
	}
	if err != nil {
		if strict {
			t.Fatal(err)
		}
		return 0
	}
	n := 0
	p, _ := st.List(cluster.ListQuery{Limit: cluster.MaxPageSize})
	for _, j := range p.Jobs {
		if j.Compact() {
			n++
		}
		if strict && j.State.Terminal() && st.ChunkCount(j.ID) != 0 {
			t.Errorf("finished job %s keeps its chunks", j.ID)
		}
	}
	tasks := 0
	st.Tasks(func(*cluster.Task) bool { tasks++; return true })
	if strict && tasks != 0 {
		t.Errorf("the snapshot keeps %d tasks", tasks)
	}
	return n
}

func snapIndex(p string) string {
	var meta struct{ Index uint64 }
	b, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "meta.json"))
	json.Unmarshal(b, &meta)
	return fmt.Sprintf("%020d", meta.Index)
}

// TestUpdateFromPreviousRelease runs a three-node cluster of the previous
// release (built from its commit), submits a job, and restarts every node
// together with this build on the same data dirs while the job runs (the
// previous release speaks plain TCP and HTTP to peers, this one TLS only,
// so a one-by-one rolling update cannot work). Another job goes in after
// the update; both finish, every node serves the same bytes, and the
// cluster moves to the new log version.
func TestUpdateFromPreviousRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the previous release and runs node processes")
	}
	old := buildRelease(t, previousRelease)
	c := e2e.FastCluster(t, 91, 3, "--slots", "1", "--preset", "faster")
	for i := range 3 {
		c.SetBinary(i, old)
		if err := c.Start(i); err != nil {
			t.Fatal(err)
		}
	}
	c.Agree(t, []int{0, 1, 2}, 3, 3)
	dir := t.TempDir()
	clip := nodetest.GenClip(t, filepath.Join(dir, "long.mp4"), "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25:duration=40",
		"-f", "lavfi", "-i", "sine=duration=40", "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-c:a", "aac", "-shortest")
	opts := `{"renditions":["360p","240p"],"chunk_seconds":2}`
	first := e2e.Upload(t, c.HTTP(0), clip, opts)

	logVersion := func(i int) int {
		st, err := c.Status(i)
		if err != nil {
			return -1
		}
		return st.LogVersion
	}
	// Every pod restarted together (SIGTERM to all, then the new
	// binary on the same data dirs), as docs/operating.md says to upgrade.
	errs := make(chan error, 3)
	for i := range 3 {
		go func() { errs <- c.Stop(i, 60*time.Second) }()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Logf("stop: %v", err) // the last ones lose their quorum while draining
		}
	}
	for i := range 3 {
		c.SetBinary(i, os.Args[0])
		if err := c.Start(i); err != nil {
			t.Fatal(err)
		}
	}
	c.Agree(t, []int{0, 1, 2}, 3, 3)
	second := e2e.Upload(t, c.HTTP(2), clip, opts)
	var j httpapi.JobView
	e2e.GetJSON(c.HTTP(0)+"/api/v1/jobs/"+first, &j)
	t.Logf("updated; first job %s %.0f%%", j.State, 100*j.Progress)
	nodetest.WaitFor(t, 30*time.Second, "the newest log version everywhere", func() bool {
		return logVersion(0) == cluster.CommandVersion && logVersion(1) == cluster.CommandVersion && logVersion(2) == cluster.CommandVersion
	})
	for _, id := range []string{first, second} {
		var j httpapi.JobView
		nodetest.WaitFor(t, 5*time.Minute, "job "+id+" done", func() bool {
			j = httpapi.JobView{}
			if e2e.GetJSON(c.HTTP(0)+"/api/v1/jobs/"+id, &j) != nil {
				return false
			}
			if j.State.Terminal() && j.State != cluster.JobDone {
				t.Fatalf("job %s %s: %s", id, j.State, j.Error)
			}
			return j.State == cluster.JobDone
		})
		urls := []string{j.Outputs.HLS, j.Outputs.DASH}
		for _, u := range j.Outputs.MP4 {
			urls = append(urls, u)
		}
		for _, u := range urls {
			want := ""
			for i := range 3 {
				nodetest.WaitFor(t, 30*time.Second, "the job on "+c.Name(i), func() bool {
					var jj httpapi.JobView
					return e2e.GetJSON(c.HTTP(i)+"/api/v1/jobs/"+id, &jj) == nil && jj.State == cluster.JobDone
				})
				if got := e2e.FetchSum(t, c.HTTP(i)+u); want == "" {
					want = got
				} else if got != want {
					t.Fatalf("%s serves %s differently", c.Name(i), u)
				}
			}
		}
		out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", c.HTTP(1)+j.Outputs.HLS).Output()
		if err != nil || !strings.HasPrefix(strings.TrimSpace(string(out)), "40") && !strings.HasPrefix(strings.TrimSpace(string(out)), "39.9") {
			t.Fatalf("job %s plays for %q (%v), want 40 s", id, out, err)
		}
	}
}

// buildRelease builds gosty at commit (from this repository's history)
// into the user's cache, once.
func buildRelease(t *testing.T, commit string) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(cache, "gosty", "release-"+commit[:7], "gosty")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	src := t.TempDir()
	archive := exec.Command("git", "-C", "../..", "archive", "--format=tar", commit)
	extract := exec.Command("tar", "-x", "-C", src)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	extract.Stdin = pipe
	var aerr strings.Builder
	archive.Stderr = &aerr
	if err := extract.Start(); err != nil {
		t.Fatal(err)
	}
	if err := archive.Run(); err != nil {
		t.Fatalf("git archive %s (the previous release must be in this clone's history): %v\n%s", commit, err, aerr.String())
	}
	if err := extract.Wait(); err != nil {
		t.Fatalf("unpacking the previous release: %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", bin+".tmp", "./cmd/gosty")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building release %s: %v\n%s", commit[:7], err, out)
	}
	if err := os.Rename(bin+".tmp", bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// untar unpacks a .tar.gz into dir.
func untar(t *testing.T, archive, dir string) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o750); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
				t.Fatal(err)
			}
			w, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o777)
			if err == nil {
				_, err = io.Copy(w, tr)
				if cerr := w.Close(); err == nil {
					err = cerr
				}
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}
