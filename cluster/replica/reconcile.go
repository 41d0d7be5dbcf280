package replica

import (
	"context"
	"log/slog"

	"github.com/gosty/gosty/cluster"
)

// Log is where a node corrects the log's claims about it (the forwarder
// to the leader).
type Log interface {
	Propose(ctx context.Context, op cluster.Op, body any) error
}

// Disk is what reconciliation needs of this node's blob store.
type Disk interface {
	Has(hash string) bool
	List() ([]cluster.BlobInfo, error)
	// HoldsSet reports whether the manifest ref and every file it lists
	// are stored here.
	HoldsSet(ctx context.Context, ref cluster.BlobRef) (bool, error)
}

// Reconcile compares the log's claims about the node name with its disk
// once it is in the cluster: it drops the claims its disk cannot confirm
// (a file gone, a manifest missing a file), and reports the referenced
// blobs it has that the log does not know of.
func Reconcile(ctx context.Context, name string, fsm *cluster.FSM, disk Disk, log Log, logger *slog.Logger) {
	var claims []*cluster.BlobHolders
	after := ""
	for more := true; more && ctx.Err() == nil; {
		more = false
		fsm.Read(func(st *cluster.State) {
			k := 0
			st.Blobs(after, func(b *cluster.BlobHolders) bool {
				after = b.Hash
				if b.Nodes.Has(name) {
					claims = append(claims, b)
				}
				k++
				more = k == 1000
				return !more
			})
		})
	}
	dropped := 0
	for _, b := range claims {
		has := disk.Has(b.Hash)
		if has && b.Set() {
			var err error
			if has, err = disk.HoldsSet(ctx, b.Ref()); err != nil {
				has = false
			}
		}
		if has {
			continue
		}
		if err := log.Propose(ctx, cluster.OpBlobRemove, cluster.BlobLocation{Blob: b.Ref(), Node: name}); err != nil {
			logger.Warn("dropping a claim the disk cannot confirm", "blob", b.Hash, "err", err)
			continue
		}
		dropped++
	}
	reported, ok := reportUnknown(ctx, name, fsm, disk, log, logger)
	if !ok {
		return
	}
	logger.Info("blob store reconciled with the log", "claims", len(claims), "dropped", dropped, "reported", reported)
}

// reportUnknown records the referenced blobs stored here that the log
// does not count here (a manifest only with every file it lists). ok
// false: it stopped (a listing failed, or ctx ended).
func reportUnknown(ctx context.Context, name string, fsm *cluster.FSM, disk Disk, log Log, logger *slog.Logger) (reported int, ok bool) {
	list, err := disk.List()
	if err != nil {
		logger.Warn("reconcile: listing blobs", "err", err)
		return 0, false
	}
	var unknown []cluster.BlobRef
	fsm.Read(func(st *cluster.State) {
		for _, bi := range list {
			if b, ok := st.Blob(bi.Ref.Hash); ok && !b.Nodes.Has(name) && bi.Ref.Size == b.Size {
				unknown = append(unknown, b.Ref())
			}
		}
	})
	for _, ref := range unknown {
		if ctx.Err() != nil {
			return reported, false
		}
		if b, set := setRecord(fsm, ref.Hash); set {
			if ok, err := disk.HoldsSet(ctx, b); err != nil || !ok {
				continue
			}
		}
		if err := log.Propose(ctx, cluster.OpBlobAdd, cluster.BlobLocation{Blob: ref, Node: name}); err != nil {
			logger.Warn("reporting a copy", "blob", ref.Hash, "err", err)
			continue
		}
		reported++
	}
	return reported, true
}

func setRecord(fsm *cluster.FSM, hash string) (cluster.BlobRef, bool) {
	var ref cluster.BlobRef
	var set bool
	fsm.Read(func(st *cluster.State) {
		if b, ok := st.Blob(hash); ok && b.Set() {
			ref, set = b.Ref(), true
		}
	})
	return ref, set
}
