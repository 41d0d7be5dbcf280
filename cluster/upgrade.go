package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Upgrader runs on the leader and moves the cluster to the newest log
// version this build writes (cluster.upgrade) once every server of the raft
// configuration advertises in gossip that it reads it. Until then the
// cluster writes the older shapes, so nodes of the previous release keep
// applying every entry during a rolling update; a server that is not in
// gossip (down) holds the upgrade back, since it may come back old.
type Upgrader struct {
	Store    *Store
	Members  *Membership
	Interval time.Duration
	Logger   *slog.Logger

	lastWhy string
}

// Run checks every interval while this node leads, until ctx ends or the
// cluster writes the newest version.
func (u *Upgrader) Run(ctx context.Context) {
	t := time.NewTicker(u.Interval)
	defer t.Stop()
	for {
		if u.Store.IsLeader() && u.Store.FSM().LogVersion() < CommandVersion {
			u.round(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (u *Upgrader) round(ctx context.Context) {
	why := u.blocker()
	if why != "" {
		if why != u.lastWhy {
			u.Logger.Info("log version upgrade waits", "to", CommandVersion, "because", why)
			u.lastWhy = why
		}
		return
	}
	if err := u.Store.Propose(ctx, OpClusterUpgrade, ClusterUpgrade{Version: CommandVersion}); err != nil {
		u.Logger.Warn("log version upgrade refused", "to", CommandVersion, "err", err)
		return
	}
	u.Logger.Info("the cluster writes a new log version", "version", CommandVersion)
}

// blocker says which server keeps the cluster from the newest version ("":
// none).
func (u *Upgrader) blocker() string {
	servers, err := u.Store.Configuration()
	if err != nil {
		return err.Error()
	}
	for _, srv := range servers {
		m, ok := u.Members.ByID(string(srv.ID))
		if !ok || m.State != StateAlive {
			return fmt.Sprintf("server %s is not alive in gossip", srv.ID)
		}
		if v := m.Meta.LogVersion(); v < CommandVersion {
			return fmt.Sprintf("%s reads log version %d", m.Name, v)
		}
	}
	return ""
}
