# gosty — see README.md. Every target installs what it needs (as root, with
# apt-get) or stops with a message saying what is missing.

GO      ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BIN     := bin/gosty
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
DATA    ?= ./data
HTTP    ?= :8080

.PHONY: all build run cluster test test-short bench deps deps-go deps-ffmpeg deps-iptables deps-prometheus vet clean

all: build

build: deps-go
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/gosty

run: build deps-ffmpeg
	$(BIN) node --data-dir $(DATA) --http-addr $(HTTP)

# A local cluster: NODES nodes on 127.0.0.1..NODES, API on each :8080,
# data in ./data/cluster/gosty-N. Ctrl-C stops them, highest ordinal first.
NODES ?= 3
cluster: build deps-ffmpeg
	$(BIN) cluster --nodes $(NODES) --data-dir ./data/cluster

vet: deps-go
	$(GO) vet ./...
	$(GO) vet -tags gostysynthetic ./node/ ./cmd/gosty/

test: deps deps-iptables deps-prometheus vet
	$(GO) test -count=1 -timeout 20m ./...
	$(GO) test -short -p 1 -run '^$$' -bench . -benchtime 1x ./bench/ ./cmd/gosty/

test-short: deps-go
	$(GO) test -count=1 -short ./...

# Benchmarks measure gosty on this machine (against plain ffmpeg, the ideal
# and the older hub design); each writes its section to bench/results/ and
# BENCHMARKS.md is those sections in name order. BENCH=Name runs one
# (Overhead, BytesMoved, Failover, ControlPlane, Memory). One package at a
# time (-p 1): benchmarks must not share the machine with each other.
bench: deps
	mkdir -p bench/results
	GOSTY_BENCH_DIR=$(CURDIR)/bench/results $(GO) test -p 1 -run '^$$' -bench '$(or $(BENCH),.)' -benchtime 1x -timeout 120m ./bench/ ./cmd/gosty/
	{ printf '# Benchmarks\n\nProduced by `make bench` (sections in bench/results/, one per benchmark; `make bench BENCH=Name` reruns one).\n\n'; cat bench/results/*.md; } > BENCHMARKS.md

deps: deps-go deps-ffmpeg

deps-go:
	@$(GO) version >/dev/null 2>&1 || { echo "Go is missing: install Go 1.26 (https://go.dev/dl) or put it on PATH"; exit 1; }

deps-ffmpeg:
	@if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing ffmpeg with apt-get"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null; \
		else \
			echo "ffmpeg and ffprobe are missing: install them (Debian/Ubuntu: sudo apt-get install ffmpeg)"; exit 1; \
		fi; \
	fi

# The partition test cuts nodes apart with iptables on loopback (as root).
deps-iptables:
	@if ! command -v iptables >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing iptables with apt-get"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables >/dev/null; \
		else \
			echo "iptables is missing: the partition test will be skipped (Debian/Ubuntu: sudo apt-get install iptables)"; \
		fi; \
	fi

# The dashboard test runs Debian's Prometheus against a local cluster, and
# promtool checks the alert rules and every node's /metrics.
deps-prometheus:
	@if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing prometheus with apt-get"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
		else \
			echo "prometheus is missing: the dashboard and alert tests will be skipped (Debian/Ubuntu: sudo apt-get install prometheus)"; \
		fi; \
	fi

clean:
	rm -rf bin
