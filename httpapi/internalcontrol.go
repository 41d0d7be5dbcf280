package httpapi

import (
	"errors"
	"io"
	"net"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/gosty/gosty/cluster"
	"github.com/gosty/gosty/cluster/peerproto"
	"github.com/gosty/gosty/internal/strictjson"
)

// The internal API's control routes: commands forwarded to the leader,
// joining and leaving raft, heartbeats, task progress and a node's raft
// status. The client is cluster.Peers (peercontrol.go).

// Limits of request bodies on the internal API.
const (
	maxProposeBytes = 8 << 20
	maxJoinBytes    = 64 << 10
)

// propose commits a command forwarded by a follower.
func (a *Internal) propose(c *gin.Context) {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxProposeBytes))
	if err != nil {
		a.writeError(c, err)
		return
	}
	if len(body) == 0 {
		writeErrorCode(c, http.StatusBadRequest, peerproto.CodeInvalid, "empty command")
		return
	}
	idx, err := a.raft.ApplyForwarded(c.Request.Context(), body)
	if err != nil {
		a.writeError(c, err)
		return
	}
	writeJSON(c, http.StatusOK, gin.H{"index": idx})
}

// decodeStrict reads a JSON object body of at most limit bytes with no
// unknown fields and nothing after it; on failure it has answered.
func (a *Internal) decodeStrict(c *gin.Context, limit int64, what string, v any) bool {
	if err := strictjson.Decode(http.MaxBytesReader(c.Writer, c.Request.Body, limit), v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			a.writeError(c, err)
			return false
		}
		writeErrorCode(c, http.StatusBadRequest, peerproto.CodeInvalid, "malformed "+what+": "+err.Error())
		return false
	}
	return true
}

// answerOK answers a command's outcome: {"ok":true}, or its error.
func (a *Internal) answerOK(c *gin.Context, err error) {
	if err != nil {
		a.writeError(c, err)
		return
	}
	writeJSON(c, http.StatusOK, gin.H{"ok": true})
}

// join asks this node (the leader) to add a node to raft.
func (a *Internal) join(c *gin.Context) {
	var req cluster.JoinRequest
	if !a.decodeStrict(c, maxJoinBytes, "join request", &req) {
		return
	}
	if req.ID == "" || req.Addr == "" {
		writeErrorCode(c, http.StatusBadRequest, peerproto.CodeInvalid, "a join request needs id and addr")
		return
	}
	if _, _, err := net.SplitHostPort(req.Addr); err != nil {
		writeErrorCode(c, http.StatusBadRequest, peerproto.CodeInvalid, "addr must be host:port: "+err.Error())
		return
	}
	a.answerOK(c, a.raft.Join(c.Request.Context(), req))
}

// remove takes a departing node out of raft on the leader.
func (a *Internal) remove(c *gin.Context) {
	var req cluster.RemoveRequest
	if !a.decodeStrict(c, maxJoinBytes, "remove request", &req) {
		return
	}
	a.answerOK(c, a.raft.Remove(c.Request.Context(), req))
}

// heartbeat renews the leases of a worker's running tasks on the leader.
func (a *Internal) heartbeat(c *gin.Context) {
	var hb cluster.Heartbeat
	if !a.decodeStrict(c, maxJoinBytes, "heartbeat", &hb) {
		return
	}
	a.answerOK(c, a.raft.Heartbeat(c.Request.Context(), hb))
}

func (a *Internal) progress(c *gin.Context) {
	tasks, err := a.raft.Progress(c.Param("job"))
	if err != nil {
		a.writeError(c, err)
		return
	}
	writeJSON(c, http.StatusOK, gin.H{"tasks": tasks})
}

func (a *Internal) status(c *gin.Context) {
	writeJSON(c, http.StatusOK, a.raft.Status())
}
