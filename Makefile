# gosty — see README.md. Every target installs what it needs (as root, with
# apt-get) or stops with a message saying what is missing.

GO      ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BIN     := bin/gosty
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
DATA    ?= ./data
HTTP    ?= :8080

.PHONY: all build run test test-short bench deps deps-go deps-ffmpeg vet clean

all: build

build: deps-go
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/gosty

run: build deps-ffmpeg
	$(BIN) node --data-dir $(DATA) --http-addr $(HTTP)

vet: deps-go
	$(GO) vet ./...

test: deps vet
	$(GO) test -count=1 -timeout 20m ./...
	$(GO) test -short -run '^$$' -bench . -benchtime 1x ./bench/

test-short: deps-go
	$(GO) test -count=1 -short ./...

# Benchmarks compare gosty with plain ffmpeg on this machine; results go to
# BENCHMARKS.md.
bench: deps
	GOSTY_BENCH_REPORT=$(CURDIR)/BENCHMARKS.md $(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./bench/

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

clean:
	rm -rf bin
