package node

import (
	"context"
	"fmt"
	"net/http"

	"github.com/gosty/gosty/cluster"
)

// RelayUpload sends a resumable-upload request to the node named owner,
// which holds the upload (httpapi.UploadRelay): its internal address comes
// from gossip, and a node that is not alive there is not tried (a client
// is told to come back later rather than kept waiting on a dead address).
func (s service) RelayUpload(ctx context.Context, owner string, call cluster.UploadCall) (*http.Response, error) {
	m, ok := s.n.members.Member(owner)
	switch {
	case !ok:
		return nil, fmt.Errorf("relay upload %s: node %s is not in the cluster", call.ID, owner)
	case m.State != cluster.StateAlive:
		return nil, fmt.Errorf("relay upload %s: node %s is %s", call.ID, owner, m.State)
	case m.Meta.Internal == "":
		return nil, fmt.Errorf("relay upload %s: node %s has no internal address in gossip", call.ID, owner)
	}
	return s.n.peers.RelayUpload(ctx, m.Meta.Internal, call)
}
