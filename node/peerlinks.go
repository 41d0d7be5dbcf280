package node

import (
	"fmt"
	"log/slog"

	"github.com/gosty/gosty/cluster/peerlink"
	"github.com/prometheus/client_golang/prometheus"
)

// peerLinks are the secure links of a node's two peer ports: raft and the
// internal API, always TLS 1.3 (package cluster/peerlink). One identity
// serves both: the operator's certificates, or an ephemeral self-signed
// one made at start.
type peerLinks struct {
	raft, internal *peerlink.Link
	// rejected is gosty_peer_handshakes_rejected_total, registered once
	// the node's registry exists.
	rejected *prometheus.CounterVec
}

func newPeerLinks(cfg Config, clusterKey string, logger *slog.Logger) (peerLinks, error) {
	var (
		id  *peerlink.Identity
		err error
	)
	if cfg.TLSCertFile != "" {
		if id, err = peerlink.LoadIdentity(cfg.TLSCertFile, cfg.TLSKeyFile, cfg.TLSCAFile); err != nil {
			return peerLinks{}, err
		}
	} else if id, err = peerlink.Ephemeral(); err != nil {
		return peerLinks{}, err
	}
	pl := peerLinks{rejected: peerlink.RejectedCounter()}
	mk := func(p peerlink.Purpose, lim peerlink.Limits) (*peerlink.Link, error) {
		l, err := peerlink.New(peerlink.Config{Purpose: p, Identity: id, Key: peerlink.DeriveKey(clusterKey, p),
			Limits: lim, Rejected: pl.rejected, Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("%s peer link: %w", p, err)
		}
		return l, nil
	}
	if pl.raft, err = mk(peerlink.Raft, peerlink.RaftLimits); err != nil {
		return peerLinks{}, err
	}
	// The internal port sees bursts of parallel requests from one peer
	// (pushes, pulls, relayed uploads): a generous per-IP bound, no rate.
	if pl.internal, err = mk(peerlink.Internal, peerlink.Limits{Pending: 512, PerIP: 64}); err != nil {
		return peerLinks{}, err
	}
	logger.Info("peer traffic is TLS 1.3", "certificates", map[bool]string{true: "operator (verified against --tls-ca)", false: "ephemeral"}[id.Verified()],
		"authenticated_by_cluster_key", clusterKey != "")
	return pl, nil
}
