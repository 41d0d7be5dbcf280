package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gosty/gosty/node"
	"github.com/gosty/gosty/node/nodetest"
)

// startNodes runs an in-process cluster of size nodes on 127.0.0.1 with
// free ports, every node joining the first, and waits until all are ready
// and alive. tweak adjusts each node's config. stop ends them all.
func startNodes(b *testing.B, dir string, size int, tweak func(*node.Config)) (bases []string, stop func()) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var nodes []*node.Node
	var stops []chan struct{}
	stop = func() {
		cancel()
		for _, s := range stops {
			<-s
		}
	}
	// The nodes join the first, so they need both keys, as in production.
	if err := os.MkdirAll(dir, 0o750); err != nil {
		b.Fatal(err)
	}
	clusterKey, gossipKey := filepath.Join(dir, "cluster.key"), filepath.Join(dir, "gossip.key")
	for path, key := range map[string]string{clusterKey: "bench-cluster-key", gossipKey: "bench-gossip-key-0123456789abcde"} {
		if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	for i := range size {
		cfg := node.DefaultConfig()
		cfg.Name = fmt.Sprintf("gosty-%d", i)
		cfg.DataDir = filepath.Join(dir, cfg.Name)
		cfg.HTTPAddr, cfg.BindAddr = "127.0.0.1:0", "127.0.0.1"
		cfg.RaftPort, cfg.GossipPort, cfg.InternalPort = 0, 0, 0
		cfg.ClusterKeyFile, cfg.GossipKeyFile = clusterKey, gossipKey
		cfg.Logger = benchLogger(b, dir, cfg.Name)
		if i > 0 {
			cfg.Join = []string{nodes[0].GossipAddr()}
		}
		if tweak != nil {
			tweak(&cfg)
		}
		n, err := node.New(cfg)
		if err != nil {
			stop()
			b.Fatal(err)
		}
		s := make(chan struct{})
		go func() { n.Run(ctx); close(s) }()
		stops = append(stops, s)
		nodes = append(nodes, n)
		bases = append(bases, "http://"+n.HTTPAddr())
	}
	for _, base := range bases {
		nodetest.WaitReady(b, base, 60*time.Second)
	}
	waitMembers(b, bases[0], size)
	return bases, stop
}

// benchLogger discards a node's log, or with GOSTY_BENCH_LOGS set keeps it
// there as <cluster dir>-<node>.log, for reading where a job's time went.
func benchLogger(b *testing.B, dir, name string) *slog.Logger {
	logs := os.Getenv("GOSTY_BENCH_LOGS")
	if logs == "" {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := os.MkdirAll(logs, 0o755); err != nil {
		b.Fatal(err)
	}
	f, err := os.Create(filepath.Join(logs, filepath.Base(dir)+"-"+name+".log"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return slog.New(slog.NewTextHandler(f, nil))
}
