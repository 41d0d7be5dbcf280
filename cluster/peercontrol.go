package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/gosty/gosty/cluster/peerproto"
)

// The control calls of the internal API: small JSON requests, most of them
// to the leader, that carry no blob bytes (reason "other").

// JoinRequest asks the leader to add a node to raft (as a non-voter).
type JoinRequest struct {
	Name string `json:"name"`
	ID   string `json:"id"`
	Addr string `json:"addr"` // raft host:port
	// No field may be added: nodes of the previous release decode join
	// requests strictly. What else the leader needs to know of a joining
	// node (the log version it reads) comes from gossip.
}

// RaftStatus is one node's view of raft.
type RaftStatus struct {
	HasState   bool   `json:"has_state"`
	Leader     string `json:"leader"` // raft ID, "" if none
	LeaderAddr string `json:"leader_addr"`
	Term       uint64 `json:"term"`
	ID         string `json:"id"`
}

// Propose forwards an encoded command to the leader's internal address and
// returns the log index it was applied at. The leader's verdict comes back
// as the matching cluster error (ErrNotLeader, ErrStale, ErrConflict,
// ErrNotFound, ErrInvalid) with the leader's message.
func (p *Peers) Propose(ctx context.Context, leader string, cmd []byte) (uint64, error) {
	req, err := p.newRequest(ctx, http.MethodPost, leader, peerproto.PathPropose, peerproto.ReasonOther, bytes.NewReader(cmd))
	if err != nil {
		return 0, fmt.Errorf("propose to %s: %w", leader, err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	var out struct {
		Index uint64 `json:"index"`
	}
	if err := p.doJSON(req, &out); err != nil {
		return 0, fmt.Errorf("propose to %s: %w", leader, err)
	}
	return out.Index, nil
}

// Join asks the leader to add a node to raft.
func (p *Peers) Join(ctx context.Context, leader string, jr JoinRequest) error {
	if err := p.postJSON(ctx, leader, peerproto.PathJoin, jr); err != nil {
		return fmt.Errorf("join via %s: %w", leader, err)
	}
	return nil
}

// Remove asks the leader to take a departing server out of raft.
func (p *Peers) Remove(ctx context.Context, leader string, req RemoveRequest) error {
	if err := p.postJSON(ctx, leader, peerproto.PathRemove, req); err != nil {
		return fmt.Errorf("remove via %s: %w", leader, err)
	}
	return nil
}

// Heartbeat sends a worker's heartbeat to the leader.
func (p *Peers) Heartbeat(ctx context.Context, leader string, hb Heartbeat) error {
	if err := p.postJSON(ctx, leader, peerproto.PathHeartbeat, hb); err != nil {
		return fmt.Errorf("heartbeat to %s: %w", leader, err)
	}
	return nil
}

// Progress asks the leader what workers last reported for a job's running
// tasks (task id → fraction done).
func (p *Peers) Progress(ctx context.Context, leader, jobID string) (map[string]float64, error) {
	req, err := p.newRequest(ctx, http.MethodGet, leader, peerproto.PathProgress+url.PathEscape(jobID), peerproto.ReasonOther, nil)
	if err != nil {
		return nil, fmt.Errorf("progress of %s from %s: %w", jobID, leader, err)
	}
	var out struct {
		Tasks map[string]float64 `json:"tasks"`
	}
	if err := p.doJSON(req, &out); err != nil {
		return nil, fmt.Errorf("progress of %s from %s: %w", jobID, leader, err)
	}
	return out.Tasks, nil
}

// postJSON posts v as JSON and expects a 2xx answer.
func (p *Peers) postJSON(ctx context.Context, addr, path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	req, err := p.newRequest(ctx, http.MethodPost, addr, path, peerproto.ReasonOther, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return p.doJSON(req, nil)
}

// Status asks a node for its view of raft.
func (p *Peers) Status(ctx context.Context, addr string) (RaftStatus, error) {
	var st RaftStatus
	req, err := p.newRequest(ctx, http.MethodGet, addr, peerproto.PathStatus, peerproto.ReasonOther, nil)
	if err != nil {
		return st, fmt.Errorf("raft status of %s: %w", addr, err)
	}
	if err := p.doJSON(req, &st); err != nil {
		return st, fmt.Errorf("raft status of %s: %w", addr, err)
	}
	return st, nil
}

// doJSON sends req and decodes a 2xx JSON answer into out (nil: ignore).
func (p *Peers) doJSON(req *http.Request, out any) error {
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return responseError(resp)
	}
	body := io.LimitReader(resp.Body, 1<<20)
	if out == nil {
		_, _ = io.Copy(io.Discard, body)
		return nil
	}
	if err := json.NewDecoder(body).Decode(out); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return nil
}
