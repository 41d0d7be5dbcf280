// Package cluster is everything that makes identical nodes one cluster:
// gossip membership (membership.go; memberlist's delegates, logs and
// transport in gossip.go, joining in membership_join.go), the replicated
// job log (raft over BoltDB in raft.go, the FSM in fsm.go over the plain
// State in state.go, whose command handlers are in apply.go (the tasks'
// in applytask.go), its blob references in refs.go,
// its orderings in index.go and list.go, its snapshot formats in
// snapshot.go; versioned commands in command.go and the log's own media
// types in logtypes.go; a done job's manifest in manifest.go; publishing
// a done job's files to object storage, job.publish, in publish.go), the
// leader's one way into the log that batches what is proposed together
// (commit.go), joining and bootstrapping (join.go), the voters and their
// quorum (autopilot.go carries out what quorum.go decides, from gossip and
// from whom raft's heartbeats reach, reach.go), leaving raft when a node
// drains, leadership handed to a voter that stays first (leave.go: it is
// the voters' business, so it lives next to the quorum rules it keeps),
// moving the cluster to a newer log version (upgrade.go),
// the leader's scheduler with its leases (scheduler.go, placement.go, leases.go),
// forwarding writes to the leader (forward.go), the secure link every raft
// and internal-API connection runs over (package peerlink: TLS 1.3 and the
// cluster key's session-bound exchange; raftlink.go is raft's side of it),
// the content-addressed blob store (blobstore.go; its space guard in
// blobspace.go, deletion and listing in blobremove.go) and the internal
// API's client, Peers (peer.go):
// moving blobs between nodes (pull and push in peertransfer.go, a remote
// reader in peerremote.go; stream.go copies an upload to a peer while it
// still comes in, its hash sent last; relay.go relays a resumable upload)
// and the control calls to the leader (peercontrol.go).
//
// The loops that keep the blobs and the jobs live in small packages
// under this one, each with the data it owns and with the few things it
// needs of the node declared as its own interfaces: replica (replication,
// a draining node's hand-off, reconciling the holder records with the
// disk), gc (the blob collector and its pins) and retention (the leader's
// expiry and history bounds). They import this package; it imports none
// of them, and none imports node or httpapi.
//
// It knows nothing of HTTP routing or of the node that wires it: the
// internal API's handlers live in httpapi, and only this package's client
// side (Peers) speaks to them. What the two ends must agree on (paths,
// headers, error codes, the error envelope, the transfer metric) is
// package peerproto, which both import, so it is spelled once.
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
//   - Sources (with a job's subtitle tracks, subtitles.go) and published
//     outputs are kept on the replication factor of alive nodes;
//     intermediate media once, redone (job.rewind) when lost.
//     An upload is acknowledged once the nodes --ack-replicas asks for hold
//     its source: job.submit names them all as holders in one entry (and
//     those that took its subtitle tracks, subtitle_holders). A URL source
//     is acknowledged once its job is in the log as ingesting (job.ingest,
//     log version 3, ingest.go); the fetching node's job.submit replaces
//     that record, or job.ingest_fail ends it; the leader takes the fetch
//     of a node that is gone (job.ingest_take), after which only the new
//     node's outcome counts.
//   - A node's raft address is resolved from gossip on every connection,
//     and nodes dial from their bind address.
//   - No change the cluster makes on its own takes it below a quorum of
//     healthy voters when a healthy non-voter could be promoted instead: a
//     voter that leaves is replaced first if the quorum needs it (even when
//     it leads: it prepares its leave before handing leadership over), a
//     server dead for the dead-server timeout is removed only if the voters
//     that answer can commit without it, and is then replaced. Healthy is
//     gossip's word and, on the leader, raft's too: gossip is seconds late
//     about a crash. A member removed while it was away joins again as a
//     non-voter. The rules and why are in quorum.go.
//   - The state stays the size of the active work plus a fixed-size record
//     per finished job: a finished job's chunks, tasks and per-file records
//     leave it (its files are listed in one manifest blob), blob records are
//     reference-counted, and finished jobs beyond the history bound are
//     forgotten. Every loop reads an index or the running jobs, never the
//     whole history, and a snapshot is an O(1) copy-on-write freeze.
//   - Disk space is admitted, not assumed: the blob store asks its Space
//     (node/disk) before it writes media (Put chunk by chunk, Receive and a
//     pull their declared size first), so a write that does not fit stores
//     nothing and wraps ErrNoSpace, which the internal API answers with 507
//     insufficient_storage and Peers maps back. A Worker that is Full (its
//     node gossips DiskMeta below its reserves) gets no new task, and does
//     not count as "another node" when a failed task avoids its last node.
//   - A blob's modification time is when it was last stored, and storing
//     bytes already there (any path: upload, task output, push, pull)
//     refreshes it. Storing a blob and deleting it take the blob's lock, and
//     a delete decides under it (BlobStore.DeleteIf), so a collector never
//     removes a blob a store has just reported stored.
//   - A new command shape is written only once every server reads it (the
//     log version, see command.go); applying an entry never depends on the
//     version a node runs, only on the state's, so old and new nodes agree
//     during a rolling update.
package cluster
