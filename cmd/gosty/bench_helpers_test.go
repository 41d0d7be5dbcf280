package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosty/gosty/internal/e2e"
)

// Helpers shared by the process benchmarks: what machine they ran on,
// CPU and memory of node processes from /proc, the nodes' JSON logs, and
// writing a results section.

// machine describes this host for a results section.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				if _, v, ok := strings.Cut(l, ":"); ok {
					model = strings.TrimSpace(v)
					break
				}
			}
		}
	}
	mem := "? GiB RAM"
	if kb := procStatusKB("/proc/meminfo", "MemTotal:"); kb > 0 {
		mem = fmt.Sprintf("%.1f GiB RAM", float64(kb)/(1<<20))
	}
	return fmt.Sprintf("%s, %d cores, %s, %s, %s/%s", model, runtime.NumCPU(), mem, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// loadAvg is the 1-minute load average (how busy the shared machine was).
func loadAvg() float64 {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// procStatusKB reads a "Key:   123 kB" line of a /proc status-like file.
func procStatusKB(path, key string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, key) {
			f := strings.Fields(l[len(key):])
			if len(f) > 0 {
				v, _ := strconv.ParseInt(f[0], 10, 64)
				return v
			}
		}
	}
	return 0
}

// userHZ is the unit of /proc/<pid>/stat times (USER_HZ, 100 on Linux).
const userHZ = 100

// procCPU is the CPU time a process used so far (user + system, itself
// and the children it waited for: a node's ffmpegs).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime, stime, cutime, cstime are fields 14-17.
	var ticks int64
	for _, k := range []int{11, 12, 13, 14} {
		if k < len(f) {
			v, _ := strconv.ParseInt(f[k], 10, 64)
			ticks += v
		}
	}
	return time.Duration(ticks) * time.Second / userHZ
}

// procSample is one reading of a process.
type procSample struct {
	at       time.Time
	cpu      time.Duration
	rss, hwm int64 // bytes
}

func readProc(pid int) procSample {
	status := fmt.Sprintf("/proc/%d/status", pid)
	return procSample{at: time.Now(), cpu: procCPU(pid),
		rss: procStatusKB(status, "VmRSS:") << 10, hwm: procStatusKB(status, "VmHWM:") << 10}
}

// sampler reads a set of processes, and the machine's CPU counters, every
// interval until stopped.
type sampler struct {
	mu      sync.Mutex
	samples map[int][]procSample
	machine []machineSample
	stop    chan struct{}
	done    chan struct{}
}

type machineSample struct {
	at          time.Time
	busy, total int64 // jiffies
}

func startSampler(pids []int, every time.Duration) *sampler {
	s := &sampler{samples: map[int][]procSample{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			s.mu.Lock()
			for _, pid := range pids {
				s.samples[pid] = append(s.samples[pid], readProc(pid))
			}
			busy, total := machineCPU()
			s.machine = append(s.machine, machineSample{time.Now(), busy, total})
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *sampler) Stop() {
	close(s.stop)
	<-s.done
}

// between returns the CPU a process used between two instants (from the
// samples nearest them) and its largest RSS sampled in between.
func (s *sampler) between(pid int, from, to time.Time) (cpu time.Duration, peak int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.samples[pid]
	var a, b *procSample
	for i := range ss {
		if a == nil || absDur(ss[i].at.Sub(from)) < absDur(a.at.Sub(from)) {
			a = &ss[i]
		}
		if b == nil || absDur(ss[i].at.Sub(to)) < absDur(b.at.Sub(to)) {
			b = &ss[i]
		}
		if !ss[i].at.Before(from) && !ss[i].at.After(to) {
			peak = max(peak, ss[i].rss)
		}
	}
	if a == nil || b == nil {
		return 0, 0
	}
	return b.cpu - a.cpu, peak
}

// machineBusy is the share of the machine's CPU time that was busy
// between two instants (samples nearest them).
func (s *sampler) machineBusy(from, to time.Time) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var a, b *machineSample
	for i := range s.machine {
		m := &s.machine[i]
		if a == nil || absDur(m.at.Sub(from)) < absDur(a.at.Sub(from)) {
			a = m
		}
		if b == nil || absDur(m.at.Sub(to)) < absDur(b.at.Sub(to)) {
			b = m
		}
	}
	if a == nil || b == nil || b.total <= a.total {
		return 0
	}
	return float64(b.busy-a.busy) / float64(b.total-a.total)
}

// machineCPU is the busy and total jiffies of the whole machine (busy is
// everything but idle and iowait).
func machineCPU() (busy, total int64) {
	b, _ := os.ReadFile("/proc/stat")
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 {
		return 0, 0
	}
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// logLine is the part of a node's JSON log line the benchmarks read.
type logLine struct {
	Time time.Time `json:"time"`
	Msg  string    `json:"msg"`
	Task string    `json:"task"`
	Kind string    `json:"kind"`
	Term uint64    `json:"term"`
	// Node is the last "node" field: the node that logged the line, or
	// for the scheduler's "task assigned" the assignee.
	Node string `json:"node"`
	node string // whose log the line is in
	// The synthetic encoder's line per chunk.
	Chunk        int       `json:"chunk"`
	Began        time.Time `json:"began"`
	WaitSeconds  float64   `json:"wait_seconds"`
	WriteSeconds float64   `json:"write_seconds"`
	// "task done" and the packager's "package inputs fetched".
	Seconds     float64 `json:"seconds"`
	Pulled      int     `json:"pulled"`
	PulledBytes int64   `json:"pulled_bytes"`
}

// logLines parses every node's log collected so far.
func logLines(l *e2e.Logs) []logLine {
	var out []logLine
	l.Each(func(name string, b []byte) {
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			var ll logLine
			if json.Unmarshal(sc.Bytes(), &ll) == nil && !ll.Time.IsZero() {
				ll.node = name
				out = append(out, ll)
			}
		}
	})
	slices.SortFunc(out, func(a, b logLine) int { return a.Time.Compare(b.Time) })
	return out
}

// logWatch finds lines in the nodes' logs, reading each line once per
// pattern.
type logWatch struct {
	off  map[string]map[string]int // pattern → node → bytes already read
	seen map[string]bool           // pattern → found
}

// found reports whether some line holds every one of subs.
func (w *logWatch) found(l *e2e.Logs, subs ...string) bool {
	key := strings.Join(subs, "\x00")
	if w.off == nil {
		w.off, w.seen = map[string]map[string]int{}, map[string]bool{}
	}
	if w.seen[key] {
		return true
	}
	if w.off[key] == nil {
		w.off[key] = map[string]int{}
	}
	l.Each(func(name string, data []byte) {
		if w.seen[key] {
			return
		}
		start := w.off[key][name]
		end := bytes.LastIndexByte(data, '\n') + 1
		if end <= start {
			return
		}
		w.off[key][name] = end
		for line := range bytes.SplitSeq(data[start:end], []byte("\n")) {
			all := true
			for _, s := range subs {
				all = all && bytes.Contains(line, []byte(s))
			}
			if all {
				w.seen[key] = true
				return
			}
		}
	})
	return w.seen[key]
}

// writeSection writes a results section when GOSTY_BENCH_DIR is set and the
// run is the full form.
func writeSection(b *testing.B, file string, body []byte) {
	dir := os.Getenv("GOSTY_BENCH_DIR")
	if dir == "" || testing.Short() {
		return
	}
	if err := os.WriteFile(filepath.Join(dir, file), body, 0o644); err != nil {
		b.Fatal(err)
	}
}

func mibOf(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }
