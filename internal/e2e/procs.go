package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
)

// Mentioning lists the processes (but this one) whose command line
// contains s: a node's ffmpegs name its data dir, so that a test can see
// that none outlives its node, or kill what a crashed run left behind.
func Mentioning(s string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(b, []byte(s)) {
			out = append(out, pid)
		}
	}
	return out
}
