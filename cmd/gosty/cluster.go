package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/gosty/gosty/internal/pods"
)

// runCluster is `gosty cluster`: a local multi-node cluster in the
// foreground until interrupted.
func runCluster(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gosty cluster", flag.ContinueOnError)
	nodes := fs.Int("nodes", 3, "number of nodes")
	dir := fs.String("data-dir", "./data/cluster", "parent of the nodes' data dirs")
	prefix := fs.String("prefix", "gosty", "node name prefix (names are prefix-0, prefix-1, ...)")
	subnet := fs.String("subnet", "127.0.0", "first three octets of the nodes' loopback addresses")
	first := fs.Int("first", 1, "last octet of node 0's address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := envDefaults(fs); err != nil {
		return err
	}
	if *nodes < 1 || *first+*nodes > 255 {
		return fmt.Errorf("cluster: --nodes %d does not fit the subnet", *nodes)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	// The nodes join each other, so they need keys (a node with --join
	// refuses to start without them): made once, kept with the data.
	ck, gk, err := localKeys(*dir)
	if err != nil {
		return err
	}
	fmt.Printf("keys  %s  %s\n", ck, gk)
	// Flags after the cluster's own (gosty cluster -- --insecure, or other
	// key files) come later on each node's command line, so they win.
	nodeArgs := append([]string{"--cluster-key-file", ck, "--gossip-key-file", gk}, fs.Args()...)
	c := &pods.Set{Bin: self, Root: *dir, Prefix: *prefix, Net: *subnet, First: *first, Size: *nodes,
		Args: nodeArgs, Out: func(string) io.Writer { return os.Stderr }}
	for i := range *nodes {
		if err := c.Start(i); err != nil {
			c.StopAll(30 * time.Second)
			return err
		}
		fmt.Printf("%s  %s  data %s\n", c.Name(i), c.HTTP(i), c.DataDir(i))
	}
	<-ctx.Done()
	fmt.Println("stopping the cluster")
	c.StopAll(60 * time.Second)
	return nil
}

// localKeys returns dir/cluster.key and dir/gossip.key, each made (32
// random bytes in base64, mode 0600) if it does not exist yet, so that a
// local cluster keeps its keys across restarts like its data.
func localKeys(dir string) (clusterKey, gossipKey string, err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", "", fmt.Errorf("cluster keys: %w", err)
	}
	clusterKey, gossipKey = filepath.Join(dir, "cluster.key"), filepath.Join(dir, "gossip.key")
	for _, path := range []string{clusterKey, gossipKey} {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return "", "", fmt.Errorf("cluster keys: %w", err)
		}
		_, err = f.WriteString(base64.StdEncoding.EncodeToString(randomBytes(32)) + "\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
			return "", "", fmt.Errorf("cluster keys: %w", err)
		}
	}
	return clusterKey, gossipKey, nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return b
}
