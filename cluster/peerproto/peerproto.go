// Package peerproto is the vocabulary of gosty's internal (node-to-node)
// HTTP API: its paths, headers, error codes, error envelope and the metric
// of the bytes it moves. Only nodes talk to that API, on the internal port
// of --bind-addr, over a peerlink (package cluster/peerlink), so requests
// carry no credentials.
//
// Why a package of its own: the API's server is httpapi.Internal and its
// client is cluster.Peers, in two packages that must not import each other
// the wrong way (httpapi imports cluster). Before, the two ends were tied
// only by string constants written twice; now both import these, so a
// route, a header or a code is spelled in one place.
//
// Rules kept here:
//   - The wire is frozen: nodes of the previous release talk to new ones
//     during a rolling update, so a value here never changes (a rename of a
//     Go name is fine). peerproto_test.go pins every value to its literal.
//   - This package imports neither cluster, node nor httpapi (only the
//     Prometheus client), so that both ends can import it. The mapping of
//     the codes to cluster's errors is on each end: cluster (errorCodes,
//     codes → errors) and httpapi (Internal.writeError, errors → codes).
package peerproto

// Prefix is the path prefix of every internal route.
const Prefix = "/internal/v1"

// The routes, below Prefix. A path that ends in "/" is followed by one
// path segment: a blob's hash, a job's or an upload's ID (path-escaped).
const (
	// PathBlob + hash: GET and HEAD serve a stored blob (with Range), PUT
	// stores a pushed one (HeaderSize, Expect: 100-continue).
	PathBlob = "/blobs/"
	// PathStream (POST) stores a blob streamed before its address is
	// known: a chunked body with HeaderSize and HeaderHash as trailers.
	PathStream = "/blobs"
	// PathPropose (POST) commits a command forwarded to the leader.
	PathPropose = "/propose"
	// PathJoin (POST) asks the leader to add a node to raft.
	PathJoin = "/raft/join"
	// PathRemove (POST) asks the leader to take a server out of raft.
	PathRemove = "/raft/remove"
	// PathStatus (GET) is a node's view of raft.
	PathStatus = "/raft/status"
	// PathHeartbeat (POST) is a worker's heartbeat to the leader.
	PathHeartbeat = "/heartbeat"
	// PathProgress + job ID (GET) is what workers last reported for the
	// job's running tasks.
	PathProgress = "/progress/"
	// PathUpload + upload ID (HEAD, PATCH, DELETE) is a resumable upload
	// relayed to the node that holds it.
	PathUpload = "/uploads/"
)

// Headers (and trailers) of the internal API.
const (
	// HeaderReason says why bytes move: one of the Reason* values. Every
	// request carries it, so that both ends count the bytes they move
	// under the same reason.
	HeaderReason = "X-Gosty-Reason"
	// HeaderSize is the size of a pushed blob (PUT), and the trailer that
	// gives a streamed blob's size (PathStream).
	HeaderSize = "X-Gosty-Size"
	// HeaderHash is the trailer that gives a streamed blob's sha256.
	HeaderHash = "X-Gosty-Hash"
	// HeaderSubmitter carries, on a relayed upload request, the submitter
	// identity the relaying node derived from the client's API token, so
	// that the job is committed under it. Only peers, which hold the
	// cluster key, can send it; it is absent when the relaying node has no
	// API tokens configured.
	HeaderSubmitter = "X-Gosty-Submitter"
)

// Error codes of the internal API, in ErrorDetail.Code.
const (
	CodeNotLeader           = "not_leader"           // 503, with Retry-After: ask the leader
	CodeStale               = "stale"                // 409: a report from an old assignment
	CodeConflict            = "conflict"             // 409
	CodeNotFound            = "not_found"            // 404: no such blob, job or route
	CodeInvalid             = "invalid"              // 400
	CodeChecksumMismatch    = "checksum_mismatch"    // 422: the bytes are not the blob's
	CodeTooLarge            = "too_large"            // 413: a body over its limit
	CodeInsufficientStorage = "insufficient_storage" // 507: no room on the receiver; try another node
	CodeCanceled            = "canceled"             // 499: the caller went away
	CodeTimeout             = "timeout"              // 504, or 408 for a stalled stream
	CodeInternal            = "internal"             // 500
	CodeMethodNotAllowed    = "method_not_allowed"   // 405
)

// ErrorBody is the envelope of every error answer:
// {"error":{"code":"...","message":"..."}}. The public API answers its
// errors in the same envelope (httpapi writes both through one function,
// and openapi.yaml's Error schema is checked against this type), so the
// shape is declared once, here.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is an error's code and message.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}
