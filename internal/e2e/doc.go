// Package e2e is the one harness of gosty's process-level tests: the
// cluster, fault (failover, partition, chaos, restart, quorum), benchmark
// and Kubernetes tests run real node processes through it.
//
// It builds the gosty binary once per test process (Binary, cached per set
// of build tags; Main removes the builds), starts and stops nodes like pods
// (Cluster: one loopback address per node, the same ports on each;
// Start/Stop/Kill/Signal/Restart; every node's output dumped when the test
// fails, every process killed and every temp dir removed when it ends),
// uploads a file (Upload), submits a URL (SubmitURL), reads jobs through the
// API's own types (httpapi.JobView, httpapi.JobList) and waits for a state
// with a deadline (WaitJob), and waits until all nodes agree on one leader
// and the voters (Agree). Median, SleepCtx, Buffer, Tail and ReadFile are
// the small helpers the tests used to declare again and again. Clips come
// from node/nodetest (GenClip, AVClip), as do WaitFor, WaitReady, FreePort
// and the one multipart builder (Form, Upload, UploadAuth), which the
// harness builds on.
//
// The cluster's view is read as httpapi.ClusterStatus, the type the API
// answers GET /api/v1/cluster with (it moves to httpapi with issue 20's
// item 3; then only the import changes).
//
// It lives under internal/ because it is test machinery, not an API: only
// this module's test code imports it (the cmd/gosty and k8s tests, the
// k8s tests' kubelet, and node's tests for Buffer), and nothing outside the module can start depending
// on it. It imports package testing, so no production package may import
// it; the pod runner it shares with `gosty cluster` is internal/pods.
package e2e
