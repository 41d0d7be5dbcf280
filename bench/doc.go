// Package bench holds gosty's benchmarks (the failover benchmark lives
// with the process harness in cmd/gosty): numbers measured side by side on
// one machine in one run, never absolute times compared across runs.
//
//	make bench   # full form; each benchmark writes a section into bench/results/,
//	             # and BENCHMARKS.md is those sections in name order
//
// `make test` runs the short form (a small clip, one run) so the benchmarks
// cannot rot. Knobs, all optional: GOSTY_BENCH_SECONDS (clip length, default
// 30), GOSTY_BENCH_RUNS (interleaved rounds, default 3), GOSTY_BENCH_DIR
// (write the markdown sections to this directory), GOSTY_BENCH_THREADS,
// GOSTY_BENCH_SLOTS and GOSTY_BENCH_OPTIONS (the node's --encoder-threads,
// --slots and the job's options JSON, for exploring settings).
package bench
