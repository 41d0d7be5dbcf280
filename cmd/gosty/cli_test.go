package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/node/nodetest"
)

// gosty runs the test binary as the gosty command and returns its stdout,
// stderr and exit code.
func gosty(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "GOSTY_TEST_MAIN=1")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("gosty %v: %v", args, err)
		}
	case <-time.After(5 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("gosty %v did not finish; stderr:\n%s", args, errOut.String())
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// TestCLISubmitWait drives `gosty submit --wait` against a real node: a good
// clip exits 0 with the finished job as JSON, a clip that fails while
// transcoding exits 1 with the reason, a refused upload exits 3, and bad
// usage exits 2.
func TestCLISubmitWait(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a node process and ffmpeg")
	}
	c := e2e.FastCluster(t, 27, 1, "--preset", "ultrafast")
	if err := c.Start(0); err != nil {
		t.Fatal(err)
	}
	server := c.HTTP(0)
	nodetest.WaitReady(t, server, time.Minute)
	dir := t.TempDir()
	good := nodetest.AVClip(t, filepath.Join(dir, "good.mp4"), "640x360", 6)

	t.Run("done", func(t *testing.T) {
		stdout, stderr, code := gosty(t, "submit", "--server", server, "--wait", "--output", "json",
			"--renditions", "360p,240p", "--chunk-seconds", "2", "--progress", "on", good)
		if code != 0 {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
		var out httpapi.JobList
		if err := json.Unmarshal([]byte(stdout), &out); err != nil {
			t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
		}
		if len(out.Jobs) != 1 {
			t.Fatalf("want one job, got %s", stdout)
		}
		j := out.Jobs[0]
		if j.State != "done" || j.Progress != 1 || j.Outputs.HLS == "" || j.Name != "good.mp4" {
			t.Fatalf("job: %+v", j)
		}
		if len(j.Chunks) < 2 || len(j.Renditions) != 2 {
			t.Fatalf("want ≥2 chunks and the 2 asked renditions, got %d and %+v", len(j.Chunks), j.Renditions)
		}
		// The bars went to stderr, never into the JSON on stdout.
		for _, want := range []string{"upload    good.mp4", "transcode good.mp4"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr lacks the %q bar:\n%s", want, stderr)
			}
		}
		// `gosty job` and `gosty jobs` see it too.
		text, _, code := gosty(t, "job", "--server", server, j.ID)
		if code != 0 || !regexp.MustCompile(`(?m)^state\s+done$`).MatchString(text) || !strings.Contains(text, "rendition  360p") {
			t.Errorf("gosty job: exit %d\n%s", code, text)
		}
		if !regexp.MustCompile(`(?m)^poster\s+http\S+/files/poster\.jpg$`).MatchString(text) ||
			!regexp.MustCompile(`(?m)^previews\s+http\S+/files/storyboard/storyboard\.vtt$`).MatchString(text) {
			t.Errorf("gosty job names no poster or storyboard:\n%s", text)
		}
		list, _, code := gosty(t, "jobs", "--server", server, "--output", "json")
		if code != 0 || !strings.Contains(list, j.ID) {
			t.Errorf("gosty jobs: exit %d\n%s", code, list)
		}
	})

	t.Run("failed", func(t *testing.T) {
		// With the index up front the probe sees a whole video, and the
		// missing second half shows up only when the job splits it.
		whole := nodetest.GenClip(t, filepath.Join(dir, "faststart.mp4"), "-i", good, "-c", "copy", "-movflags", "+faststart")
		b, err := os.ReadFile(whole)
		if err != nil {
			t.Fatal(err)
		}
		half := filepath.Join(dir, "cut.mp4")
		if err := os.WriteFile(half, b[:len(b)/2], 0o600); err != nil {
			t.Fatal(err)
		}
		stdout, stderr, code := gosty(t, "submit", "--server", server, "--wait", "--output", "json", half)
		if code == 3 {
			t.Fatalf("the node refused the upload instead of failing the job (exit 3): %s", stderr)
		}
		if code != 1 {
			t.Fatalf("exit %d, want 1\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
		var out httpapi.JobList
		if err := json.Unmarshal([]byte(stdout), &out); err != nil || len(out.Jobs) != 1 {
			t.Fatalf("stdout: %v\n%s", err, stdout)
		}
		j := out.Jobs[0]
		if j.State != "failed" || j.Error == "" {
			t.Fatalf("job: %+v", j)
		}
		if !strings.Contains(stderr, j.Error) {
			t.Errorf("stderr does not give the reason %q:\n%s", j.Error, stderr)
		}
	})

	t.Run("refused", func(t *testing.T) {
		text := filepath.Join(dir, "notes.mp4")
		if err := os.WriteFile(text, []byte(strings.Repeat("not a video\n", 100)), 0o600); err != nil {
			t.Fatal(err)
		}
		_, stderr, code := gosty(t, "submit", "--server", server, "--wait", text)
		if code != 3 || !strings.Contains(stderr, "notes.mp4") {
			t.Fatalf("exit %d, want 3 naming the file\nstderr: %s", code, stderr)
		}
	})

	t.Run("pages", func(t *testing.T) {
		// Two jobs by now: good.mp4 (done), then cut.mp4 (failed).
		page := func(args ...string) httpapi.JobList {
			t.Helper()
			out, stderr, code := gosty(t, append([]string{"jobs", "--server", server, "--output", "json"}, args...)...)
			var l httpapi.JobList
			if code != 0 || json.Unmarshal([]byte(out), &l) != nil {
				t.Fatalf("gosty jobs %v: exit %d\n%s%s", args, code, out, stderr)
			}
			return l
		}
		if l := page("--limit", "1"); len(l.Jobs) != 1 || l.Jobs[0].Name != "cut.mp4" || l.NextCursor == "" {
			t.Errorf("one page of one: %+v", l)
		}
		if l := page("--limit", "1", "--all"); len(l.Jobs) != 2 || l.Jobs[1].Name != "good.mp4" || l.NextCursor != "" {
			t.Errorf("every page: %+v", l)
		}
		if l := page("--state", "failed"); len(l.Jobs) != 1 || l.Jobs[0].Name != "cut.mp4" {
			t.Errorf("failed jobs: %+v", l)
		}
		if text, _, code := gosty(t, "jobs", "--server", server, "--limit", "1"); code != 0 || !strings.Contains(text, "(more: --all") {
			t.Errorf("text page: exit %d\n%s", code, text)
		}
	})

	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{
			{"submit", "--server", server},
			{"jobs", "--output", "yaml"},
			{"jobs", "--server", server, "--limit", "501"},
			{"job"},
			{"submit", "--options", "{", good},
		} {
			if _, stderr, code := gosty(t, args...); code != 2 {
				t.Errorf("gosty %v: exit %d, want 2 (%s)", args, code, stderr)
			}
		}
	})
}
