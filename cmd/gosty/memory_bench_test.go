package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/gosty/gosty/cluster/peerlink/peerlinktest"
	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/node/nodetest"
)

// BenchmarkMemory measures a node process's resident memory while idle,
// while it receives a large upload (a generated stream, never a file on
// the client's disk) and while it serves the stored blob back to a peer
// (the internal blob endpoint, with the cluster key). Uploads and blobs
// stream through fixed buffers, so the peaks should stay flat whatever the
// size.
func BenchmarkMemory(b *testing.B) {
	size, runs, settle := int64(envInt("GOSTY_BENCH_UPLOAD_MIB", 2048))<<20, envInt("GOSTY_BENCH_RUNS", 3), 5*time.Second
	if testing.Short() {
		size, runs, settle = 64<<20, 1, time.Second
	}
	bin := e2e.Binary(b)
	c := e2e.New(b, e2e.Opts{Subnet: 47, Size: 1, Bin: bin})
	if err := c.Start(0); err != nil {
		b.Fatal(err)
	}
	started := time.Now()
	nodetest.WaitReady(b, c.HTTP(0), 60*time.Second)
	b.Logf("ready after %v", time.Since(started).Round(10*time.Millisecond))
	pid := c.Pid(0)

	// Idle: a few seconds after it is ready, nothing to do.
	time.Sleep(settle)
	idle := idleRSS(pid, settle)

	var recv, serve, rss []int64
	var recvRate, serveRate []float64 // MiB/s
	for r := range runs {
		resetPeak(pid)
		var sum string
		var code int
		peak, dur := during(pid, func() { code, sum = uploadStream(b, c.HTTP(0), size, uint64(r)) })
		recv = append(recv, peak)
		recvRate = append(recvRate, float64(size)/(1<<20)/dur.Seconds())
		if code != http.StatusUnprocessableEntity && code != http.StatusCreated {
			b.Fatalf("upload answered %d", code)
		}
		b.Logf("run %d: received %s in %v (answer %d), peak RSS %s", r+1, mibOf(size), dur.Round(10*time.Millisecond), code, mibOf(peak))

		resetPeak(pid)
		var got int64
		peak, dur = during(pid, func() { got = fetchBlob(b, "https://"+c.IP(0)+":7948", sum) })
		serve = append(serve, peak)
		serveRate = append(serveRate, float64(size)/(1<<20)/dur.Seconds())
		if got != size {
			b.Fatalf("served %d bytes of %d", got, size)
		}
		b.Logf("run %d: served %s in %v, peak RSS %s", r+1, mibOf(size), dur.Round(10*time.Millisecond), mibOf(peak))
		rss = append(rss, readProc(pid).rss)
	}
	time.Sleep(settle)
	after := idleRSS(pid, settle)
	b.ReportMetric(float64(slices.Max(recv))/(1<<20), "recv-peak-MiB")
	b.ReportMetric(float64(slices.Max(serve))/(1<<20), "serve-peak-MiB")
	b.ReportMetric(float64(idle)/(1<<20), "idle-MiB")

	var buf bytes.Buffer
	fmt.Fprintf(&buf, "## Memory of a node\n\n")
	fmt.Fprintf(&buf, "Measured %s with `make bench BENCH=Memory` (BenchmarkMemory in cmd/gosty): one `gosty node` process (built without tags, as\n", time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&buf, "released), %d runs. Each run uploads a generated %s stream as multipart to `POST /api/v1/jobs` (the node stores and hashes it,\n", runs, mibOf(size))
	fmt.Fprintf(&buf, "then refuses it as media: 422; the whole body is read either way) and then fetches the stored blob from the internal\n")
	fmt.Fprintf(&buf, "endpoint `GET /internal/v1/blobs/{hash}` with the cluster key, as a peer would. Peak = VmHWM after resetting it\n")
	fmt.Fprintf(&buf, "(`/proc/<pid>/clear_refs`) at the start of the phase, and never less than VmRSS sampled every 50 ms.\n\n")
	fmt.Fprintf(&buf, "- Machine: %s\n\n", machine())
	fmt.Fprintf(&buf, "| phase | RSS median | spread | all runs | target | throughput (median) |\n|---|---|---|---|---|---|\n")
	fmt.Fprintf(&buf, "| idle (after start) | %s | | | | |\n", mibOf(idle))
	fmt.Fprintf(&buf, "| receiving %s (peak) | %s | %s–%s | %s | < 150 MiB: %s | %.0f MiB/s |\n", mibOf(size), mibOf(e2e.Median(recv)), mibOf(slices.Min(recv)), mibOf(slices.Max(recv)), mibsOf(recv), verdict(slices.Max(recv) < 150<<20), e2e.Median(recvRate))
	fmt.Fprintf(&buf, "| serving %s (peak) | %s | %s–%s | %s | < 150 MiB: %s | %.0f MiB/s |\n", mibOf(size), mibOf(e2e.Median(serve)), mibOf(slices.Min(serve)), mibOf(slices.Max(serve)), mibsOf(serve), verdict(slices.Max(serve) < 150<<20), e2e.Median(serveRate))
	fmt.Fprintf(&buf, "| after each run | %s | %s–%s | %s | flat | |\n", mibOf(e2e.Median(rss)), mibOf(slices.Min(rss)), mibOf(slices.Max(rss)), mibsOf(rss))
	fmt.Fprintf(&buf, "| idle (after the runs) | %s | | | | |\n\n", mibOf(after))
	writeSection(b, "50-memory.md", buf.Bytes())
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func mibsOf(xs []int64) string {
	var out []byte
	for i, x := range xs {
		if i > 0 {
			out = append(out, ", "...)
		}
		out = fmt.Appendf(out, "%.0f", float64(x)/(1<<20))
	}
	return "[" + string(out) + "] MiB"
}

// idleRSS is the median RSS sampled every 100 ms for d.
func idleRSS(pid int, d time.Duration) int64 {
	var xs []float64
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		xs = append(xs, float64(readProc(pid).rss))
	}
	return int64(e2e.Median(xs))
}

// resetPeak sets the process's VmHWM back to its current RSS.
func resetPeak(pid int) {
	_ = os.WriteFile("/proc/"+strconv.Itoa(pid)+"/clear_refs", []byte("5"), 0)
}

// during runs f while sampling the process's RSS every 50 ms and returns
// the peak (the larger of the samples and VmHWM at the end) and f's time.
func during(pid int, f func()) (int64, time.Duration) {
	smp := startSampler([]int{pid}, 50*time.Millisecond)
	start := time.Now()
	f()
	dur := time.Since(start)
	smp.Stop()
	_, peak := smp.between(pid, start.Add(-time.Second), time.Now().Add(time.Second))
	return max(peak, readProc(pid).hwm), dur
}

// stream yields size pseudo-random bytes: a 1 MiB random block repeated,
// each copy stamped with its index and the seed, so no two blocks (and no
// two runs) are alike.
type stream struct {
	block []byte
	left  int64
	off   int
	n     uint64
	seed  uint64
	h     hash.Hash
}

func newStream(size int64, seed uint64) *stream {
	r := rand.New(rand.NewPCG(seed, 99))
	block := make([]byte, 1<<20)
	for i := 0; i+8 <= len(block); i += 8 {
		binary.LittleEndian.PutUint64(block[i:], r.Uint64())
	}
	return &stream{block: block, left: size, off: len(block), seed: seed, h: sha256.New()}
}

func (s *stream) Read(p []byte) (int, error) {
	if s.left == 0 {
		return 0, io.EOF
	}
	if s.off == len(s.block) {
		binary.LittleEndian.PutUint64(s.block, s.n)
		binary.LittleEndian.PutUint64(s.block[8:], s.seed)
		s.n++
		s.off = 0
	}
	n := copy(p, s.block[s.off:min(len(s.block), s.off+int(min(s.left, int64(len(p)))))])
	s.off += n
	s.left -= int64(n)
	s.h.Write(p[:n])
	return n, nil
}

// uploadStream posts size generated bytes as a multipart upload and
// returns the status and the content's sha256.
func uploadStream(b *testing.B, base string, size int64, seed uint64) (int, string) {
	src := newStream(size, seed)
	form, ct := nodetest.StreamForm("big.bin", "", src)
	resp, err := http.Post(base+"/api/v1/jobs", ct, form)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if src.left != 0 {
		b.Fatalf("the node answered %d before reading the whole body (%d bytes left): %s", resp.StatusCode, src.left, body)
	}
	return resp.StatusCode, hex.EncodeToString(src.h.Sum(nil))
}

// fetchBlob reads a blob from a node's internal endpoint as a peer does
// and returns how many bytes came, checking the hash.
func fetchBlob(b *testing.B, internal, sum string) int64 {
	req, _ := http.NewRequest(http.MethodGet, internal+"/internal/v1/blobs/"+sum, nil)
	resp, err := peerlinktest.Client(b, e2e.ClusterKey).Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		b.Fatalf("GET blob %s: %d %s", sum, resp.StatusCode, msg)
	}
	h := sha256.New()
	n, err := io.CopyBuffer(h, resp.Body, make([]byte, 256<<10))
	if err != nil {
		b.Fatal(err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		b.Fatalf("blob served with hash %s, want %s", got, sum)
	}
	return n
}
