package node

import (
	"context"
	"time"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/internal/tick"
	"github.com/gosty/gosty/node/disk"
)

// Disk space is a resource (see node/disk): uploads, tus files, blobs,
// task work files, the raft log and snapshots share the data volume.
//
//   - Media are admitted only while they leave the disk reserve and the
//     raft reserve free: uploads (declared length, then every chunk),
//     resumable uploads (Upload-Length, every PATCH), blob pushes and
//     pulls (declared size, then every chunk). What does not fit is 507
//     insufficient_storage with nothing left behind (a tus upload keeps
//     what it had, as for every 5xx).
//   - A node below the reserves (Full) gossips it; the leader gives it no
//     new task and replication looks for other targets. A task that fails
//     for lack of space counts as one ordinary failure (never a permanent
//     one: the media are fine), and the node holds itself Full for
//     defaultNoSpaceHold so that the retry goes elsewhere.
//   - The largest upload is capped at start to the volume's size less the
//     reserves: a file that could never fit gets 413 at once.

// defaultNoSpaceHold is how long a node that ran out of space in a task
// stays Full, so that the scheduler places the retry elsewhere.
const defaultNoSpaceHold = 30 * time.Second

// capUploads bounds the upload limit by what the data volume could hold.
func (n *Node) capUploads(limit int64) int64 {
	u, err := n.space.Usage()
	if err != nil {
		return limit
	}
	floor := n.space.Floor()
	room := u.Size - floor
	attrs := []any{"size", disk.FormatSize(u.Size), "free", disk.FormatSize(u.Avail),
		"disk_reserve", disk.FormatSize(n.space.ReserveBytes()), "raft_reserve", disk.FormatSize(n.space.RaftReserveBytes())}
	switch {
	case room <= 0:
		n.logger.Error("the data volume is no larger than its reserves: no upload will fit", attrs...)
		return limit
	case room < limit:
		n.logger.Warn("--max-upload-bytes exceeds what the data volume can hold; capped",
			append(attrs, "max_upload_bytes", limit, "capped_to", room)...)
		limit = room
	default:
		n.logger.Info("data volume", attrs...)
	}
	if u.Avail < floor {
		n.logger.Warn("the data volume is below its reserves: this node takes no upload, blob copy or task until it has room", attrs...)
	}
	return limit
}

// diskMeta is the volume as gossiped: MiB, and whether the node is Full.
func (n *Node) diskMeta() *cluster.DiskMeta {
	u, err := n.space.Usage()
	if err != nil {
		return &cluster.DiskMeta{Full: true}
	}
	return &cluster.DiskMeta{FreeMiB: u.Avail >> 20, SizeMiB: u.Size >> 20,
		ReserveMiB: n.space.Floor() >> 20, Full: n.space.Full()}
}

// watchDisk reads the volume every interval and gossips it when the node
// turns Full or has room again, or when the free space moved by a percent
// of the volume since it was last gossiped (so every node's view of the
// others stays close without a gossip update per write).
func (n *Node) watchDisk(ctx context.Context) {
	interval := 2 * time.Second
	if n.cfg.Fast {
		interval = 500 * time.Millisecond
	}
	n.tendBallast()
	tick.Every(ctx, interval, func() {
		n.tendBallast()
		if _, err := n.space.Refresh(); err != nil {
			n.logger.Warn("reading the data volume", "err", err)
		}
		n.gossipDisk()
	})
}

// tendBallast releases or makes the raft reserve's ballast (see
// node/disk/ballast.go) as the volume fills or empties.
func (n *Node) tendBallast() {
	ev, err := n.space.TendBallast()
	attrs := []any{"raft_reserve", disk.FormatSize(n.space.RaftReserveBytes())}
	switch {
	case err != nil:
		n.logger.Warn("the raft reserve's ballast", append(attrs, "err", err)...)
	case ev == disk.BallastReleased:
		n.logger.Error("the data volume is full: released the raft reserve's ballast so that the job log can still be written", attrs...)
	case ev == disk.BallastMade:
		n.logger.Info("the raft reserve is held by its ballast", attrs...)
	}
}

// gossipDisk gossips the volume if it changed enough since it was last
// gossiped.
func (n *Node) gossipDisk() {
	n.diskMu.Lock()
	defer n.diskMu.Unlock()
	last := n.members.Local().Meta.Disk
	cur := n.diskMeta()
	if last != nil && cur.Full == last.Full && abs(cur.FreeMiB-last.FreeMiB) < max(cur.SizeMiB/100, 1) &&
		cur.ReserveMiB == last.ReserveMiB && cur.SizeMiB == last.SizeMiB {
		return
	}
	if last == nil || cur.Full != last.Full {
		attrs := []any{"free", disk.FormatSize(cur.FreeMiB << 20), "reserves", disk.FormatSize(cur.ReserveMiB << 20)}
		if cur.Full {
			n.logger.Warn("data volume below its reserves (or just out of space): taking no new task, upload or blob copy", attrs...)
		} else {
			n.logger.Info("data volume has room again", attrs...)
		}
	}
	if err := n.members.UpdateMeta(func(m *cluster.MemberMeta) { m.Disk = cur }); err != nil {
		n.logger.Debug("gossiping the data volume", "err", err)
	}
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// taskOutOfSpace says whether a task failed for lack of space: its error
// says so (ENOSPC, an admission refused, ffmpeg's words), or the volume is
// below its reserves now (an ffmpeg that failed on a full disk may say
// anything). If so the node holds itself Full and gossips it at once,
// before the failure is reported, so that the leader places the retry on
// another node.
func (n *Node) taskOutOfSpace(err error) bool {
	if !cluster.IsNoSpace(err) {
		if _, rerr := n.space.Refresh(); rerr == nil {
			if h, _ := n.space.Headroom(); h >= 0 {
				return false
			}
		}
	}
	n.space.Hold(n.noSpaceHold)
	n.gossipDisk()
	return true
}

// full reports whether a node said in gossip that it has no room (this
// node: whether it has none now).
func (n *Node) full(name string) bool {
	if name == n.cfg.Name {
		return n.space.Full()
	}
	m, ok := n.members.Member(name)
	return ok && m.Meta.Disk != nil && m.Meta.Disk.Full
}
