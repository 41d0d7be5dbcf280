package node

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/cluster/peerproto"
	"github.com/gosty/gosty/internal/tick"
)

// compactLoop, while this node leads and the cluster writes log version 2,
// turns jobs that finished under version 1 (a data dir from the previous
// release, or jobs that finished during a rolling update) into the compact
// shape with job.compact. A failed, canceled or expired job just drops its
// chunks and tasks; a done job first gets the manifest of its files, stored
// on every node that holds all of them (this one pulls what it lacks when
// no node does), and those nodes become the manifest's holders.
func (n *Node) compactLoop(ctx context.Context) {
	tick.Every(ctx, 2*time.Second, func() {
		if !n.store.IsLeader() || n.store.FSM().LogVersion() < cluster.LogV2 {
			return
		}
		var jobs []cluster.Job
		var full [][]string // per job: the nodes that hold every file
		n.store.FSM().Read(func(st *cluster.State) {
			st.LegacyJobs(func(r *cluster.Job) bool {
				j, _ := st.Job(r.ID)
				jobs = append(jobs, j)
				full = append(full, fullHolders(st, j))
				return len(jobs) < 50
			})
		})
		for i, j := range jobs {
			if ctx.Err() != nil || !n.store.IsLeader() {
				break
			}
			if err := n.compactJob(ctx, j, full[i]); err != nil {
				n.logger.Warn("compacting a job failed; will retry", "job", j.ID, "err", err)
				continue
			}
			n.logger.Info("job compacted", "job", j.ID, "state", j.State, "files", len(j.Outputs))
		}
	})
}

// fullHolders lists the nodes the log says hold every published file of j.
func fullHolders(st *cluster.State, j cluster.Job) []string {
	var out []string
	first := true
	for _, b := range j.Outputs {
		rec, ok := st.Blob(b.Hash)
		if !ok {
			return nil
		}
		if first {
			for _, name := range rec.Nodes {
				out = append(out, name)
			}
			first = false
			continue
		}
		out = slices.DeleteFunc(out, func(name string) bool { return !rec.Nodes.Has(name) })
	}
	slices.Sort(out)
	return out
}

func (n *Node) compactJob(ctx context.Context, j cluster.Job, full []string) error {
	if len(j.Outputs) == 0 {
		return n.store.Propose(ctx, cluster.OpJobCompact, cluster.JobCompact{JobID: j.ID})
	}
	m := cluster.NewManifest(j.ID, j.Outputs, j.Chunks)
	owner := new(int)
	defer n.pins.Release(owner)
	ref, err := n.blobs.PutBytes(m.Encode(), n.pins.Holder(owner))
	if err != nil {
		return fmt.Errorf("store manifest: %w", err)
	}
	alive := n.aliveNames()
	var holders []string
	for _, name := range full {
		if name == n.cfg.Name || !alive[name] {
			continue
		}
		mem, ok := n.members.Member(name)
		if !ok || mem.Meta.Internal == "" {
			continue
		}
		if err := n.peers.Push(ctx, ref, mem.Meta.Internal, peerproto.ReasonReplicate); err != nil {
			n.logger.Warn("compacting: manifest push failed", "job", j.ID, "to", name, "err", err)
			continue
		}
		holders = append(holders, name)
	}
	// This node holds the set too if it has every file, or when nobody
	// else does, once it has pulled what it lacks.
	mine := true
	for _, f := range m.Files {
		if n.blobs.Has(f.Hash) {
			continue
		}
		if len(holders) > 0 {
			mine = false
			break
		}
		if _, _, err := n.fetch(ctx, f.Ref(), peerproto.ReasonReplicate); err != nil {
			return fmt.Errorf("gather %s: %w", f.Path, err)
		}
	}
	if mine {
		holders = append(holders, n.cfg.Name)
	}
	if len(holders) == 0 {
		return fmt.Errorf("no node holds every file")
	}
	return n.store.Propose(ctx, cluster.OpJobCompact, cluster.JobCompact{JobID: j.ID, Manifest: ref, Holders: holders})
}
