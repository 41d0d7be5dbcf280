// Package bench holds gosty's in-process benchmarks; the ones that run
// node processes live with the process harness in cmd/gosty. Ratios are
// measured side by side on one machine in one run, never absolute times
// compared across runs.
//
//	make bench                 # full form: every benchmark writes a section into
//	                           # bench/results/NN-name.md; BENCHMARKS.md is those
//	                           # sections in name order
//	make bench BENCH=Memory    # one benchmark (its section is replaced, the others kept)
//
// The suite (section file, where, what):
//
//	10-overhead.md       BenchmarkOverhead (bench): a one-node and a three-node cluster
//	                     against one plain ffmpeg command doing the same encoding, in
//	                     rotating rounds, per clip length and kind of content (easy:
//	                     testsrc2; real: camera-like grain and wobble): wall and CPU
//	                     ratios (one node: target wall ≤ 1.10 at 20 s, ≤ 1.0 from 60 s)
//	20-bytes-moved.md    BenchmarkBytesMoved (bench): bytes moved between nodes for one
//	                     job on 1, 3 and 5 nodes, against the ideal for the replication
//	                     factor and against the hub design
//	30-failover.md       BenchmarkFailover (cmd/gosty): leader kill → next assignment,
//	                     worker kill → its chunk elsewhere, full restart → job resumed
//	40-control-plane.md  BenchmarkControlPlane (cmd/gosty): 5, 10 and 20 node processes
//	                     built with -tags gostysynthetic (the synthetic encoder of
//	                     transcoder/synthetic), 2,000 chunks: scheduling efficiency
//	                     (target ≥ 0.9 at 20 nodes), task entries/s, the leader's CPU,
//	                     memory and profile
//	50-memory.md         BenchmarkMemory (cmd/gosty): a node's RSS idle, receiving a
//	                     2 GiB upload and serving it back (target < 150 MiB)
//	60-rate-control.md   BenchmarkRateControl (bench): three kinds of content through the
//	                     default ladder with ABR and with capped CRF: each rung's rate as
//	                     encoded and its SSIM, what capped CRF saves
//
// `make test` runs the short form (small inputs, one run, well under a
// minute each) so the benchmarks cannot rot; it writes no results.
//
// Knobs, all optional: GOSTY_BENCH_DIR (write the sections to this
// directory; make bench sets it), GOSTY_BENCH_RUNS (rounds or runs of the
// overhead, failover and memory benchmarks, default 3), GOSTY_BENCH_SECONDS
// (overhead clip lengths, a list, default 10,20,60; 300 for the 5-minute
// case), GOSTY_BENCH_CONTENT (overhead contents, default easy,real),
// GOSTY_BENCH_CLUSTERS (overhead cluster sizes, default 1,3), GOSTY_BENCH_THREADS,
// GOSTY_BENCH_SLOTS and GOSTY_BENCH_OPTIONS (the overhead nodes'
// --encoder-threads, --slots and the job's options JSON, for exploring
// settings), GOSTY_BENCH_CHUNKS, GOSTY_BENCH_CHUNK_SECONDS and
// GOSTY_BENCH_NODES (control plane: chunks, default 2000, of 6 media
// seconds, and cluster sizes, default 5,10,20; GOSTY_TASK_QUEUE=0, which
// the node processes read as --task-queue, compares without pipelining),
// GOSTY_BENCH_UPLOAD_MIB
// (memory: upload size, default 2048), GOSTY_BENCH_LOGS (keep every process
// cluster's node logs, the overhead clusters' node logs, and the
// control-plane CPU profiles, in this directory).
//
// Process clusters use loopback addresses 127.0.40.x–127.0.47.x (failover
// 40–42, control plane 44–46, memory 47) with the fixed node ports.
package bench
