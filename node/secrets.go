package node

import (
	"encoding/base64"
	"fmt"
	"os"
	"strings"

	"github.com/gosty/gosty/httpapi"
	"github.com/gosty/gosty/node/webhook"
)

// Secrets (API tokens, the cluster key, the gossip and playback keys) are
// read from files, so that Kubernetes Secrets mount straight in; their
// values never appear in logs or error messages, only the files' paths.

// readTokens reads API tokens, one a line; blank lines and lines starting
// with # are skipped. "" means no token is required.
func readTokens(path string) ([]string, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.ContainsAny(line, " \t") {
			return nil, fmt.Errorf("%s: a token may not contain spaces (one token a line)", path)
		}
		out = append(out, line)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no token", path)
	}
	return out, nil
}

// playbackKey is the signing key of signed playback: the key file's
// contents, or one derived from the cluster key. nil for public playback.
func playbackKey(cfg Config, clusterKey string) ([]byte, error) {
	if cfg.Playback != PlaybackSigned {
		return nil, nil
	}
	if cfg.PlaybackKeyFile != "" {
		return readKey(cfg.PlaybackKeyFile, "playback")
	}
	if clusterKey == "" {
		return nil, fmt.Errorf("signed playback needs --playback-key-file or --cluster-key-file")
	}
	return httpapi.DerivePlaybackKey(clusterKey), nil
}

// webhookKey is the key webhook deliveries are signed with: the key file's
// contents, or one derived from the cluster key. nil when webhooks are off.
func webhookKey(cfg Config, clusterKey string) ([]byte, error) {
	if cfg.WebhookKeyFile != "" {
		return readKey(cfg.WebhookKeyFile, "webhook")
	}
	if clusterKey == "" {
		return nil, nil
	}
	return webhook.DeriveKey(clusterKey), nil
}

// readSecret reads a token or key from a file; "" means none configured.
func readSecret(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// readKey reads a signing key, the what key, from a file: at least 16
// bytes, so that it cannot be guessed.
func readKey(path, what string) ([]byte, error) {
	k, err := readSecret(path)
	if err != nil {
		return nil, err
	}
	if len(k) < 16 {
		return nil, fmt.Errorf("%s: a %s key needs at least 16 bytes", path, what)
	}
	return []byte(k), nil
}

// readGossipKey reads a gossip encryption key: base64 text or raw bytes of
// 16, 24 or 32 bytes.
func readGossipKey(path string) ([]byte, error) {
	s, err := readSecret(path)
	if err != nil || s == "" {
		return nil, err
	}
	if k, err := base64.StdEncoding.DecodeString(s); err == nil && validKeyLen(len(k)) {
		return k, nil
	}
	if validKeyLen(len(s)) {
		return []byte(s), nil
	}
	return nil, fmt.Errorf("%s: want 16, 24 or 32 bytes (raw or base64)", path)
}

func validKeyLen(n int) bool { return n == 16 || n == 24 || n == 32 }

// insecurity lists what is open on a node whose peer ports other machines
// can reach, for want of a key: nil when it has both keys, or when only
// this machine can reach it (a lone node on loopback).
func insecurity(cfg Config, peersAuthenticated, gossipKey bool) []string {
	if !cfg.Exposed() {
		return nil
	}
	var out []string
	if !peersAuthenticated {
		out = append(out, "no cluster key: raft and the internal API (TLS, but unauthenticated) accept anyone who reaches them (log entries, every blob)")
	}
	if !gossipKey {
		out = append(out, "no gossip key: gossip is neither encrypted nor authenticated (anyone can join the member list)")
	}
	return out
}
