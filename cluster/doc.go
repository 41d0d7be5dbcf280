// Package cluster is everything that makes identical nodes one cluster:
// gossip membership (membership.go), the replicated job log (raft over
// BoltDB in raft.go, the FSM in fsm.go over the plain State in state.go,
// versioned commands in command.go), joining and bootstrapping (join.go),
// the voter count (autopilot.go), the leader's scheduler with its leases
// (scheduler.go, leases.go), forwarding writes to the leader (forward.go),
// the content-addressed blob store (blobstore.go) and moving blobs between
// nodes (peer.go).
//
// It knows nothing of HTTP routing or of the node that wires it: the
// internal API's handlers live in httpapi, and only this package's client
// side (Peers) speaks to them.
//
// Rules kept here:
//   - Everything that must survive a node is a raft command; applying one
//     never reads the clock (the proposer stamps it) so replicas and replays
//     agree. A refused command changes nothing and its error goes back to
//     the proposer.
//   - Every assignment carries the leader's term and an attempt number that
//     never repeats for a task ID (tasks removed by a rewind keep their
//     count), so a report from an old run is refused.
//   - Leases, heartbeats and failure counts per node live in the leader's
//     memory only; a new leader starts with fresh leases for everyone.
//   - Sources and published outputs are kept on the replication factor of
//     alive nodes; intermediate media once, redone (job.rewind) when lost.
//   - A node's raft address is resolved from gossip on every connection,
//     and nodes dial from their bind address.
package cluster
