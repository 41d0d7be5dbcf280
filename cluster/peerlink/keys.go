package peerlink

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
)

// Purpose names what a derived key is for. Each purpose has its own key,
// so that one leaking (a webhook receiver sees signatures made with the
// webhook key) says nothing of the others, and a key cannot be used where
// another is meant.
type Purpose string

// The purposes of keys derived from the cluster key.
const (
	Raft     Purpose = "raft"     // the raft port's exchange
	Internal Purpose = "internal" // the internal API port's exchange
	Playback Purpose = "playback" // signed playback URLs
	Webhook  Purpose = "webhook"  // webhook delivery signatures
)

// kdfSalt is fixed: the cluster key is the only secret input, and a fixed
// salt keeps every node deriving the same keys.
const kdfSalt = "gosty cluster key derivation v2"

// KeySize is the size of derived keys.
const KeySize = 32

// DeriveKey returns the key of purpose p: HKDF-SHA256 of the cluster key
// with info "gosty/<purpose>". Every node with the same cluster key derives
// the same keys, and no derived key reveals the cluster key or another
// purpose's key. An empty cluster key gives nil.
func DeriveKey(clusterKey string, p Purpose) []byte {
	if clusterKey == "" {
		return nil
	}
	k, err := hkdf.Key(sha256.New, []byte(clusterKey), []byte(kdfSalt), "gosty/"+string(p), KeySize)
	if err != nil {
		// Only a key length beyond 255 hash sizes fails.
		panic(fmt.Sprintf("peerlink: hkdf: %v", err))
	}
	return k
}
