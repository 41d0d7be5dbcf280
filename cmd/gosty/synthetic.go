//go:build gostysynthetic

package main

// Benchmark builds only (go build -tags gostysynthetic; see the scale
// benchmark). Production binaries are built without the tag (nosynthetic.go)
// and have neither switch:
//
//   - GOSTY_SYNTHETIC_ENCODER=factor[,bytes_per_second] replaces ffmpeg
//     with the synthetic encoder (package transcoder/synthetic): a chunk
//     encode takes factor × its media duration and writes blobs of
//     realistic size, so raft, leases, heartbeats, transfers and
//     replication run for real while the CPU stays free.
//   - GOSTY_PPROF_PORT=port serves net/http/pprof on the node's bind
//     address, to profile the leader under load, for as long as the node
//     runs.

import (
	"net"
	"net/http"
	"net/http/pprof"
	"os"

	"github.com/gosty/gosty/node"
	"github.com/gosty/gosty/transcoder/synthetic"
)

// benchBuild sets the benchmark build's Config fields the environment asks
// for: the synthetic encoder and the pprof endpoints.
func benchBuild(cfg *node.Config) error {
	if port := os.Getenv("GOSTY_PPROF_PORT"); port != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		cfg.DebugAddr, cfg.DebugHandler = net.JoinHostPort(cfg.BindIP(), port), mux
	}
	spec := os.Getenv("GOSTY_SYNTHETIC_ENCODER")
	if spec == "" {
		return nil
	}
	sc, err := synthetic.Parse(spec)
	if err != nil {
		return err
	}
	logger := cfg.Logger.With("node", cfg.Name)
	sc.Logger = logger.With("component", "synthetic")
	logger.Warn("benchmark build: synthetic encoder, this node does not transcode",
		"factor", sc.Factor, "bytes_per_second", sc.BytesPerSecond)
	cfg.Transcoder = synthetic.New(sc)
	return nil
}
