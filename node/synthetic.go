//go:build gostysynthetic

package node

// Benchmark builds only (go build -tags gostysynthetic; see the scale
// benchmark in cmd/gosty). Production binaries are built without the tag
// and have neither switch:
//
//   - GOSTY_SYNTHETIC_ENCODER=factor[,bytes_per_second] replaces ffmpeg
//     with the synthetic encoder (package transcoder/synthetic): a chunk
//     encode takes factor × its media duration and writes blobs of
//     realistic size, so raft, leases, heartbeats, transfers and
//     replication run for real while the CPU stays free.
//   - GOSTY_PPROF_PORT=port serves net/http/pprof on the node's bind
//     address, to profile the leader under load.

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // on http.DefaultServeMux, served only when GOSTY_PPROF_PORT is set
	"os"

	"github.com/gosty/gosty/transcoder/synthetic"
)

func init() {
	replaceTranscoder = func(cfg Config, logger *slog.Logger) (Transcoder, error) {
		if port := os.Getenv("GOSTY_PPROF_PORT"); port != "" {
			addr := net.JoinHostPort(cfg.BindIP(), port)
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return nil, fmt.Errorf("pprof listener: %w", err)
			}
			logger.Warn("benchmark build: serving pprof", "addr", addr)
			go func() {
				if err := http.Serve(ln, nil); err != nil && !errors.Is(err, http.ErrServerClosed) {
					logger.Warn("pprof server stopped", "err", err)
				}
			}()
		}
		spec := os.Getenv("GOSTY_SYNTHETIC_ENCODER")
		if spec == "" {
			return nil, nil
		}
		sc, err := synthetic.Parse(spec)
		if err != nil {
			return nil, err
		}
		sc.Logger = logger.With("component", "synthetic")
		logger.Warn("benchmark build: synthetic encoder, this node does not transcode",
			"factor", sc.Factor, "bytes_per_second", sc.BytesPerSecond)
		return synthetic.New(sc), nil
	}
}
