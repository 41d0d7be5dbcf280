//go:build !gostysynthetic

package main

import "github.com/gosty/gosty/node"

// benchBuild is a no-op in production builds: the synthetic encoder and the
// pprof endpoints exist only with the gostysynthetic tag (synthetic.go).
func benchBuild(*node.Config) error { return nil }
