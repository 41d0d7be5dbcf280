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
	keyFiles := map[peerlink.Purpose]string{peerlink.Raft: cfg.RaftKeyFile, peerlink.Internal: cfg.InternalKeyFile}
	mk := func(p peerlink.Purpose, lim peerlink.Limits) (*peerlink.Link, error) {
		key, err := portKey(keyFiles[p], clusterKey, p)
		if err != nil {
			return nil, err
		}
		l, err := peerlink.New(peerlink.Config{Purpose: p, Identity: id, Key: key,
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
		"key_exchange", pl.raft.Keyed() && pl.internal.Keyed())
	return pl, nil
}

// portKey is a port's key: the file's contents (at least 16 bytes), or the
// cluster key's HKDF key of the purpose; nil without either.
func portKey(file, clusterKey string, p peerlink.Purpose) ([]byte, error) {
	if file == "" {
		return peerlink.DeriveKey(clusterKey, p), nil
	}
	k, err := readSecret(file)
	if err != nil {
		return nil, fmt.Errorf("%s key: %w", p, err)
	}
	if len(k) < 16 {
		return nil, fmt.Errorf("%s: a %s key needs at least 16 bytes", file, p)
	}
	return []byte(k), nil
}
