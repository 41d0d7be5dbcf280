// Package gc is the blob collector (collector.go) and the pins that keep
// it off blobs whose command is not in the log yet (pins.go): it deletes
// the local blobs no job needs any more, without a command, deciding each
// delete under the blob's lock in the blob store.
//
// It lives under cluster, next to the blob store and the FSM whose blob
// events (cluster.BlobEvents) it follows, because those are the data it
// owns: the rules of when a blob may go are read here with the lock
// order they rely on (cluster.BlobStore.DeleteIf), not in the node that
// builds it. What it needs from outside is declared here and small: the
// manifests (Manifests, the node's cache) and a way to drop a claim the
// disk lost (Collector.Lost). node only builds it from its config, feeds
// it the FSM's events and runs it.
package gc
