package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gosty/gosty/internal/e2e"
	"github.com/gosty/gosty/node/nodetest"
)

// TestCLIReadsWithToken: against a node with API tokens (reads closed),
// the CLI's reads fail without a token with the server's reason (exit 3)
// and work with --api-token-file, or its GOSTY_API_TOKEN_FILE variable.
func TestCLIReadsWithToken(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a node process")
	}
	dir := t.TempDir()
	tf := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tf, []byte("cli-read-token-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := e2e.FastCluster(t, 112, 1, "--api-token-file", tf)
	if err := c.Start(0); err != nil {
		t.Fatal(err)
	}
	base := c.HTTP(0)
	nodetest.WaitReady(t, base, 30*time.Second)
	for _, cmd := range [][]string{{"jobs"}, {"members"}, {"job", "nosuchjob"}} {
		args := append(cmd[:1:1], "--server", base)
		args = append(args, cmd[1:]...)
		_, stderr, code := gosty(t, args...)
		if code != exitRequest || !strings.Contains(stderr, "API token is required") {
			t.Errorf("gosty %s without a token: exit %d, stderr %q", strings.Join(cmd, " "), code, stderr)
		}
		withTok := append(cmd[:1:1], "--server", base, "--api-token-file", tf)
		withTok = append(withTok, cmd[1:]...)
		stdout, stderr, code := gosty(t, withTok...)
		want := 0
		if cmd[0] == "job" {
			want = exitRequest // past auth, and no such job
			if !strings.Contains(stderr, "not_found") {
				t.Errorf("gosty job nosuchjob with the token: %q, want not_found", stderr)
			}
		}
		if code != want || strings.Contains(stderr, "token") {
			t.Errorf("gosty %s with the token: exit %d, stdout %q, stderr %q", strings.Join(cmd, " "), code, stdout, stderr)
		}
	}
	t.Setenv("GOSTY_API_TOKEN_FILE", tf)
	if stdout, stderr, code := gosty(t, "members", "--server", base); code != 0 || !strings.Contains(stdout, "gosty-0") {
		t.Errorf("gosty members with GOSTY_API_TOKEN_FILE: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}
