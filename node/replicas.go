package node

import (
	"context"

	"github.com/gosty/gosty/cluster"
)

// replicaNodes is this node as replication and the drain's hand-off see
// it (replica.Nodes).
type replicaNodes struct{ n *Node }

func (r replicaNodes) Alive() map[string]bool    { return r.n.aliveNames() }
func (r replicaNodes) Workers() []cluster.Worker { return r.n.Workers() }
func (r replicaNodes) Full(name string) bool     { return r.n.full(name) }
func (r replicaNodes) PushCopy(ctx context.Context, ref cluster.BlobRef, set bool, target, reason string) error {
	return r.n.pushCopy(ctx, ref, set, target, reason)
}

// localBlobs is this node's blob store as reconciliation sees it
// (replica.Disk).
type localBlobs struct {
	*cluster.BlobStore
	n *Node
}

func (l localBlobs) HoldsSet(ctx context.Context, ref cluster.BlobRef) (bool, error) {
	return l.n.holdsSet(ctx, ref)
}
