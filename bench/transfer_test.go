package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gosty/gosty/node"
	"github.com/gosty/gosty/node/nodetest"
)

// BenchmarkBytesMoved runs one job on clusters of 1, 3 and 5 in-process
// nodes and counts the bytes that crossed between nodes (every node's
// gosty_transfer_bytes_total, direction in), next to the ideal for the
// replication factor and to what the older hub design (a file server that
// every step downloads from and uploads to) moves for the same job.
func BenchmarkBytesMoved(b *testing.B) {
	seconds, sizes := 24, []int{1, 3, 5}
	if testing.Short() {
		seconds, sizes = 6, []int{1, 3}
	}
	dir := b.TempDir()
	src := filepath.Join(dir, "source.mp4")
	nodetest.GenClip(b, src, "-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=640x360:rate=25:duration=%d", seconds),
		"-f", "lavfi", "-i", fmt.Sprintf("sine=duration=%d", seconds), "-vf", "noise=alls=6:allf=t",
		"-c:v", "libx264", "-preset", "veryfast", "-g", "50", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest")

	var rows []string
	for _, n := range sizes {
		r := moveOnce(b, filepath.Join(dir, fmt.Sprint("c", n)), src, n, 2)
		b.ReportMetric(float64(r.moved), fmt.Sprintf("bytes-%dnodes", n))
		rows = append(rows, r.row(n))
	}
	if dir := os.Getenv("GOSTY_BENCH_DIR"); dir != "" && !testing.Short() {
		var buf bytes.Buffer
		fmt.Fprintf(&buf, "## Bytes moved between nodes for one job\n\n")
		fmt.Fprintf(&buf, "Measured %s: a %d s 640x360 clip with audio (default ladder: 360p, 240p, 144p; 6 s chunks), replication factor 2,\n", time.Now().UTC().Format("2006-01-02"), seconds)
		fmt.Fprintf(&buf, "uploaded to one node of an in-process cluster; every node runs 1 slot. *Moved* is the sum over nodes of\n")
		fmt.Fprintf(&buf, "`gosty_transfer_bytes_total{direction=\"in\"}`. *Ideal* is (replicas − 1) × (source + published) plus the task pulls\n")
		fmt.Fprintf(&buf, "the schedule could not avoid (chunks encoded away from the splitter, encoded chunks away from the packager).\n")
		fmt.Fprintf(&buf, "*Hub* is what the older design moves for the same job: splitter down S, up C; workers down C, up E; merger down E,\n")
		fmt.Fprintf(&buf, "up E; packager down E and audio, up P; audio worker down S, up A (no replication).\n\n")
		fmt.Fprintf(&buf, "| nodes | source | published | moved: task | moved: replicate | moved: total | ideal | moved / ideal | hub | moved / hub |\n")
		fmt.Fprintf(&buf, "|---|---|---|---|---|---|---|---|---|---|\n")
		for _, r := range rows {
			buf.WriteString(r)
		}
		fmt.Fprintf(&buf, "\n")
		if err := os.WriteFile(filepath.Join(dir, "20-bytes-moved.md"), buf.Bytes(), 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

type moveResult struct {
	source, published, task, replicate, moved, ideal, hub int64
}

func mib(v int64) string { return fmt.Sprintf("%.2f MiB", float64(v)/(1<<20)) }

func (r moveResult) row(n int) string {
	return fmt.Sprintf("| %d | %s | %s | %s | %s | %s | %s | %.2f | %s | %.2f |\n", n, mib(r.source), mib(r.published),
		mib(r.task), mib(r.replicate), mib(r.moved), mib(r.ideal), ratio(r.moved, r.ideal), mib(r.hub), ratio(r.moved, r.hub))
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

type benchJob struct {
	State, Error string
	Chunks       []struct {
		EncodedBy string `json:"encoded_by"`
		Bytes     int64  `json:"bytes"`
		Encoded   int64  `json:"encoded_bytes"`
	}
	Bytes struct {
		Source, Chunks, Encoded, Audio, Published int64
	}
}

func moveOnce(b *testing.B, dir, src string, size, replicas int) moveResult {
	bases, stop := startNodes(b, dir, size, func(cfg *node.Config) {
		cfg.Slots, cfg.Replicas, cfg.Fast, cfg.Stabilize = 1, replicas, true, time.Second
	})
	defer stop()

	id := upload(b, bases[0], src, "")
	var j benchJob
	nodetest.WaitFor(b, 5*time.Minute, "job done", func() bool {
		resp, err := http.Get(bases[0] + "/api/v1/jobs/" + id)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		json.NewDecoder(resp.Body).Decode(&j)
		return j.State == "done" || j.State == "failed"
	})
	if j.State != "done" {
		b.Fatalf("job %s: %s", j.State, j.Error)
	}
	nodetest.WaitFor(b, 60*time.Second, "replication", func() bool {
		return metric(b, bases[0], "gosty_blobs_under_replicated", "") == 0
	})

	var r moveResult
	for _, base := range bases {
		r.task += int64(metric(b, base, "gosty_transfer_bytes_total", `direction="in",reason="task"`))
		r.replicate += int64(metric(b, base, "gosty_transfer_bytes_total", `direction="in",reason="replicate"`))
		r.moved += int64(metric(b, base, "gosty_transfer_bytes_total", `direction="in"`))
	}
	r.source, r.published = j.Bytes.Source, j.Bytes.Published
	copies := int64(min(replicas, size) - 1)
	counts := map[string]int{}
	for _, c := range j.Chunks {
		counts[c.EncodedBy]++
	}
	packager, most := "", -1
	for name, k := range counts {
		if k > most {
			packager, most = name, k
		}
	}
	var unavoidable int64
	for _, c := range j.Chunks {
		if c.EncodedBy != "gosty-0" {
			unavoidable += c.Bytes
		}
		if c.EncodedBy != packager {
			unavoidable += c.Encoded
		}
	}
	r.ideal = copies*(r.source+r.published) + unavoidable
	bb := j.Bytes
	r.hub = 2*bb.Source + 2*bb.Chunks + 4*bb.Encoded + bb.Published + 2*bb.Audio
	return r
}

func waitMembers(b *testing.B, base string, n int) {
	nodetest.WaitFor(b, 60*time.Second, fmt.Sprintf("%d members", n), func() bool {
		var v struct {
			Members []struct{ State string }
		}
		resp, err := http.Get(base + "/api/v1/cluster")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		json.NewDecoder(resp.Body).Decode(&v)
		alive := 0
		for _, m := range v.Members {
			if m.State == "alive" {
				alive++
			}
		}
		return alive == n
	})
}

// metric sums the samples of a metric on one node whose labels contain
// every label pair in match (comma-separated, in exposition order).
func metric(b *testing.B, base, name, match string) float64 {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, m := range strings.Split(match, ",") {
			if m != "" && !strings.Contains(line, m) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		f := strings.Fields(line)
		v, _ := strconv.ParseFloat(f[len(f)-1], 64)
		sum += v
	}
	return sum
}
