// Command gosty is the one binary: `gosty node` runs a cluster node, the
// other subcommands are the client.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time: -ldflags "-X main.version=..."
var version = "dev"

const usage = `gosty — a self-hosted video transcoding cluster

Usage:
  gosty node [flags]          run a node (gosty node -h for flags)
  gosty cluster [--nodes N]   run N local nodes on 127.0.0.1..N, API on each :8080
                              (keys made in its --data-dir; node flags after --)
  gosty submit FILE...        upload videos and print their job ids
                              [--renditions 720p,360p] [--codec h264] [--wait]
                              [--progress auto|on|off]
  gosty jobs [--limit N] [--state S] [--all]
                              list jobs, newest first, a page at a time
  gosty job ID                show one job
  gosty cancel ID             cancel a running job, or delete a finished one
  gosty members               show the cluster's members
  gosty version               print the version

Client commands take --server URL (default http://127.0.0.1:8080) and
--output text|json. Exit codes: 0 success, 1 a job failed or was canceled,
2 bad usage, 3 the server was unreachable or refused the request.

Every flag can also be set in the environment as GOSTY_<NAME> (upper case,
'-' becomes '_'), e.g. GOSTY_DATA_DIR=/var/lib/gosty.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "node":
		err = runNode(ctx, args)
	case "cluster":
		err = runCluster(ctx, args)
	case "submit", "jobs", "job", "cancel", "members":
		err = runClient(ctx, cmd, args)
	case "version", "--version", "-v":
		fmt.Println("gosty", version)
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "gosty: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gosty:", err)
		os.Exit(exitCode(err))
	}
}
