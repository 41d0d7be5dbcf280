package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/node/nodetest"
)

// TestDamagedAndWipedCopies checks that what the log says a node holds is
// what its disk holds, on three node processes with two copies of every
// output:
//   - every blob file of one node gets a byte flipped: that node still
//     serves every file with its right bytes (a damaged copy is found on
//     reading and the bytes come from another holder), and its scrub finds
//     and deletes what is left damaged;
//   - a node comes back at once under its name with a wiped disk: the copies
//     recorded under its name stop counting, replication makes them again
//     (gosty_blobs_under_replicated reads the truth, not 0), and once it
//     reads 0 another node may die: every file still downloads with the
//     same sha256.
func TestDamagedAndWipedCopies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node processes and ffmpeg")
	}
	c := e2e.FastCluster(t, 104, 3, "--slots", "1", "--replicas", "2", "--gc-grace", "2s", "--gc-interval", "1s",
		"--scrub-interval", "3s", "--preset", "ultrafast")
	c.StartAll(t, 3)
	c.Agree(t, []int{0, 1, 2}, 3, 3)
	clip := nodetest.AVClip(t, filepath.Join(t.TempDir(), "clip.mp4"), "320x180", 6)
	id := e2e.Upload(t, c.HTTP(0), clip, `{"renditions":["180p@300k","144p@200k"],"chunk_seconds":2}`)
	j := e2e.WaitJob(t, 2*time.Minute, "the job done", "", id, func(j httpapi.JobView) bool { return j.State == "done" }, c.HTTP(0))
	files := publishedFiles(t, c.HTTP(0), j)
	want := map[string]string{}
	for _, u := range files {
		want[u] = e2e.FetchSum(t, c.HTTP(0)+u)
	}
	underReplicated := func(i int) float64 { return metricValue(c.HTTP(i), "gosty_blobs_under_replicated") }
	// settled: two good copies on disk of the source and of every file (the
	// truth), and every node's replicator says so too.
	settled := func(what string) {
		t.Helper()
		hashes := []string{fileSum(t, clip)}
		for _, sum := range want {
			hashes = append(hashes, sum)
		}
		last := time.Now()
		nodetest.WaitFor(t, 2*time.Minute, what, func() bool {
			u := []float64{underReplicated(0), underReplicated(1), underReplicated(2)}
			short := 0
			for _, h := range hashes {
				if goodCopies(c, h) < 2 {
					short++
				}
			}
			if time.Since(last) > 10*time.Second {
				t.Logf("under-replicated per node: %v; blobs with fewer than two good copies: %d", u, short)
				last = time.Now()
			}
			return short == 0 && u[0] == 0 && u[1] == 0 && u[2] == 0
		})
	}
	settled("two copies of everything")

	// Damage: flip a byte in every blob file of the node that holds most.
	dmg := 0
	for i := range 3 {
		if len(blobFiles(c, i)) > len(blobFiles(c, dmg)) {
			dmg = i
		}
	}
	wiped, killed := (dmg+1)%3, (dmg+2)%3
	flipped := 0
	filepath.WalkDir(filepath.Join(c.DataDir(dmg), "blobs"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || len(d.Name()) != 64 {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil || len(b) == 0 {
			return nil
		}
		b[len(b)/2] ^= 0x55
		if err := os.WriteFile(p, b, 0o640); err != nil {
			t.Fatal(err)
		}
		flipped++
		return nil
	})
	if flipped == 0 {
		t.Fatal("no node holds a blob")
	}
	for u, sum := range want {
		if got := e2e.FetchSum(t, c.HTTP(dmg)+u); got != sum {
			t.Fatalf("%s served %s damaged", c.Name(dmg), u)
		}
	}
	if metricValue(c.HTTP(dmg), "gosty_blobs_damaged_total") <= 0 {
		t.Fatalf("%s found no damaged copy", c.Name(dmg))
	}
	nodetest.WaitFor(t, time.Minute, "the scrub to clear the damaged copies", func() bool {
		return damagedFiles(t, filepath.Join(c.DataDir(dmg), "blobs")) == 0
	})
	settled("two good copies again")

	// Wiped: a node comes back at once under its name with an empty disk.
	c.Kill(wiped)
	if err := os.RemoveAll(filepath.Join(c.DataDir(wiped))); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(wiped); err != nil {
		t.Fatal(err)
	}
	c.Agree(t, []int{0, 1, 2}, 3, 3)
	settled("copies made again after the rebirth")
	// Another node dies: one good copy of everything is left.
	c.Kill(killed)
	for _, i := range []int{dmg, wiped} {
		for u, sum := range want {
			if got := e2e.FetchSum(t, c.HTTP(i)+u); got != sum {
				t.Fatalf("%s served %s with other bytes after the deaths", c.Name(i), u)
			}
		}
	}
}

// publishedFiles lists a done job's files by URL: the outputs and every
// URI of its HLS playlists.
func publishedFiles(t *testing.T, base string, j httpapi.JobView) []string {
	t.Helper()
	out := []string{j.Outputs.HLS, j.Outputs.DASH}
	for _, u := range j.Outputs.MP4 {
		out = append(out, u)
	}
	dir := j.Outputs.HLS[:strings.LastIndex(j.Outputs.HLS, "/")+1]
	seen := map[string]bool{}
	var walk func(u string)
	walk = func(u string) {
		resp, err := http.Get(base + u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if i := strings.Index(line, `URI="`); i >= 0 {
				line = line[i+5:]
				line = line[:strings.IndexByte(line, '"')]
			} else if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			f := dir + line
			if seen[f] {
				continue
			}
			seen[f] = true
			out = append(out, f)
			if strings.HasSuffix(line, ".m3u8") {
				walk(f)
			}
		}
	}
	walk(j.Outputs.HLS)
	return out
}

// goodCopies counts the nodes (of pods; none: the first three) whose blob
// store has a copy of hash with the right content.
func goodCopies(c *e2e.Cluster, hash string, pods ...int) int {
	if len(pods) == 0 {
		pods = []int{0, 1, 2}
	}
	n := 0
	for _, i := range pods {
		b, err := os.ReadFile(filepath.Join(c.DataDir(i), "blobs", hash[:2], hash))
		if err != nil {
			continue
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) == hash {
			n++
		}
	}
	return n
}

// damagedFiles counts the blob files under root whose content does not
// hash to their name.
func damagedFiles(t *testing.T, root string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || len(d.Name()) != 64 {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != d.Name() {
			n++
		}
		return nil
	})
	return n
}
