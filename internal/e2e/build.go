package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// Command is the package path of the gosty command.
const Command = "github.com/gosty/gosty/cmd/gosty"

var builds struct {
	mu   sync.Mutex
	dir  string            // one temp dir for every build of this process
	bins map[string]string // build tags → binary
	errs map[string]string // build tags → why it failed
}

// Binary returns the gosty binary built with the given build tags (none:
// as released; "gostysynthetic": the benchmark build with the synthetic
// encoder), building it the first time this test process asks for that
// set of tags. Main removes the builds when the tests end.
func Binary(t testing.TB, tags ...string) string {
	t.Helper()
	key := strings.Join(tags, ",")
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if bin, ok := builds.bins[key]; ok {
		return bin
	}
	if msg, ok := builds.errs[key]; ok {
		t.Fatal(msg)
	}
	if builds.dir == "" {
		dir, err := os.MkdirTemp("", "gosty-e2e-bin-")
		if err != nil {
			t.Fatal(err)
		}
		builds.dir, builds.bins, builds.errs = dir, map[string]string{}, map[string]string{}
	}
	name := "gosty"
	if key != "" {
		name += "-" + strings.ReplaceAll(key, ",", "-")
	}
	out := filepath.Join(builds.dir, name)
	args := []string{"build"}
	if key != "" {
		args = append(args, "-tags", key)
	}
	args = append(args, "-o", out, Command)
	if msg, err := exec.Command(goBinary(), args...).CombinedOutput(); err != nil {
		builds.errs[key] = "go " + strings.Join(args, " ") + ": " + err.Error() + "\n" + string(msg)
		t.Fatal(builds.errs[key])
	}
	builds.bins[key] = out
	return out
}

// goBinary is the go command: from PATH, else the toolchain's own.
func goBinary() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// Main runs the tests and removes the binaries Binary built: a package's
// TestMain ends with os.Exit(e2e.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	builds.mu.Lock()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
		builds.dir, builds.bins, builds.errs = "", nil, nil
	}
	builds.mu.Unlock()
	return code
}
