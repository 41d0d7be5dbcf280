// Package replica keeps every blob some job needs on enough nodes: the
// replication loop (replicate.go: durable blobs at the replication
// factor, each the duty of its lowest-named alive holder), the hand-off
// of a node that drains (handoff.go: what it holds goes to nodes that
// stay, ranked by rendezvous hashing, RankTargets) and, at start, the
// reconciliation of the log's holder records with the node's disk
// (reconcile.go).
//
// They live together under cluster because they read and correct the
// same data, the FSM's blob holder records, and decide with the same
// ranking. What they need of the node that runs them is declared here,
// by them, and small: Nodes (who is alive, whose disk is full, and the
// push that makes and records a copy), Disk and Log (this node's blob
// store and the forwarder to the leader). node only builds them and
// wires the FSM's blob events in.
package replica
