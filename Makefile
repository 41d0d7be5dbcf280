# gosty — see README.md. Every target installs what it needs (as root, with
# apt-get) or stops with a message saying what is missing.

GO      ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BIN     := bin/gosty
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
DATA    ?= ./data
HTTP    ?= :8080

.PHONY: all build run cluster test test-short test-k8s kube-bins s3-bin bench ui deps deps-go deps-ffmpeg deps-iptables deps-prometheus deps-node deps-chromium deps-k8s fuzz fuzz-ci vet clean

all: build

build: deps-go ui
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/gosty

run: build deps-ffmpeg
	$(BIN) node --data-dir $(DATA) --http-addr $(HTTP)

# A local cluster: NODES nodes on 127.0.0.1..NODES, API on each :8080,
# data in ./data/cluster/gosty-N, the cluster and gossip keys it makes (once) in
# ./data/cluster. Ctrl-C stops them, highest ordinal first.
NODES ?= 3
cluster: build deps-ffmpeg
	$(BIN) cluster --nodes $(NODES) --data-dir ./data/cluster

# The web UI: web/ (plain JavaScript, hls.js from npm) bundled by esbuild
# into httpapi/ui/dist, which the next go build embeds. npm ci runs again
# only when package.json or the lock file changed.
ui: web/node_modules/.installed
	cd web && npm run build --silent

web/node_modules/.installed: web/package.json web/package-lock.json | deps-node
	cd web && npm ci --no-audit --no-fund
	touch $@

vet: deps-go
	$(GO) vet ./...
	$(GO) vet -tags gostysynthetic ./node/ ./cmd/gosty/

test: deps deps-iptables deps-prometheus deps-chromium s3-bin ui vet
	GOSTY_VERSITYGW="$(S3_BIN)" $(GO) test -count=1 -timeout 30m ./...
	$(GO) test -short -p 1 -run '^$$' -bench . -benchtime 1x ./bench/ ./cmd/gosty/
	@$(MAKE) --no-print-directory fuzz-ci

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

# apt_dep makes sure the commands $(1) are on PATH. When one is missing,
# root installs the Debian packages (apt-get install arguments $(2), named
# $(3) in its message); anyone else is told $(4), and with $(5) = fail the
# target fails. No argument may hold a comma ($(call) splits on them).
define apt_dep
	@if $(foreach c,$(1),! command -v $(c) >/dev/null ||) false; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing $(3) with apt-get"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) >/dev/null; \
		else \
			echo "$(4)"; $(if $(5),exit 1;) \
		fi; \
	fi
endef

deps-ffmpeg:
	$(call apt_dep,ffmpeg ffprobe,ffmpeg,ffmpeg,ffmpeg and ffprobe are missing: install them (Debian/Ubuntu: sudo apt-get install ffmpeg),fail)

# The partition test cuts nodes apart with iptables on loopback (as root).
deps-iptables:
	$(call apt_dep,iptables,iptables,iptables,iptables is missing: the partition test will be skipped (Debian/Ubuntu: sudo apt-get install iptables))

# The dashboard test runs Debian's Prometheus against a local cluster, and
# promtool checks the alert rules and every node's /metrics.
deps-prometheus:
	$(call apt_dep,prometheus promtool,--no-install-recommends prometheus,prometheus,prometheus is missing: the dashboard and alert tests will be skipped (Debian/Ubuntu: sudo apt-get install prometheus))

# Node.js 18 or newer with npm (Debian's packages will do).
deps-node:
	$(call apt_dep,node npm,nodejs npm,nodejs and npm,Node.js and npm are missing: install them to build the web UI (Debian/Ubuntu: sudo apt-get install nodejs npm),fail)

# The UI test drives headless Chromium (as root, with apt-get).
deps-chromium:
	$(call apt_dep,chromium,chromium,chromium,chromium is missing: the browser test will be skipped (Debian: sudo apt-get install chromium))

# Kubernetes control plane for the k8s/ tests: kube-apiserver and
# kube-controller-manager built from the Go module proxy (the separate module
# k8s/tools/kube pins k8s.io/kubernetes), and the Prometheus operator's CRDs
# generated with controller-gen (module k8s/tools/crd), all cached outside
# the repository. The first build takes several minutes; later runs find the
# files and skip it.
KUBE_VERSION ?= v1.37.2
KUBE_BIN_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/gosty/kube-$(KUBE_VERSION)/bin
KUBE_MINOR   := $(word 2,$(subst ., ,$(KUBE_VERSION)))
KUBE_LDFLAGS := -s -w -X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(KUBE_MINOR) \
	-X k8s.io/component-base/version.gitTreeState=clean
KUBE_BINS    := kube-apiserver kube-controller-manager
MONITORING_API := github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1

kube-bins: deps-go
	@mkdir -p "$(KUBE_BIN_DIR)"
	@for b in $(KUBE_BINS); do \
		if [ -x "$(KUBE_BIN_DIR)/$$b" ]; then echo "$$b: cached in $(KUBE_BIN_DIR)"; continue; fi; \
		echo "building $$b $(KUBE_VERSION) into $(KUBE_BIN_DIR) (the first build takes several minutes)"; \
		( cd k8s/tools/kube && CGO_ENABLED=0 $(GO) build -ldflags "$(KUBE_LDFLAGS)" \
			-o "$(KUBE_BIN_DIR)/$$b.tmp" k8s.io/kubernetes/cmd/$$b ) && \
		mv "$(KUBE_BIN_DIR)/$$b.tmp" "$(KUBE_BIN_DIR)/$$b" || exit 1; \
	done
	@if [ -s "$(KUBE_BIN_DIR)/crds/monitoring.coreos.com_servicemonitors.yaml" ]; then \
		echo "Prometheus operator CRDs: cached in $(KUBE_BIN_DIR)/crds"; \
	else \
		echo "generating the Prometheus operator CRDs into $(KUBE_BIN_DIR)/crds"; \
		( cd k8s/tools/crd && $(GO) build -o "$(KUBE_BIN_DIR)/controller-gen" sigs.k8s.io/controller-tools/cmd/controller-gen && \
		  rm -rf "$(KUBE_BIN_DIR)/crds.tmp" && \
		  "$(KUBE_BIN_DIR)/controller-gen" crd:crdVersions=v1 paths=$(MONITORING_API) output:crd:dir="$(KUBE_BIN_DIR)/crds.tmp" ) && \
		rm -rf "$(KUBE_BIN_DIR)/crds" && mv "$(KUBE_BIN_DIR)/crds.tmp" "$(KUBE_BIN_DIR)/crds" || exit 1; \
	fi

# The S3 server of the publish tests (objstore, node): versitygw, built once
# from the Go module proxy with `go install module@version` (its own go.mod
# pins its dependencies) and cached outside the repository like the
# Kubernetes binaries. About 3 minutes the first time (downloads included);
# later runs find the file and skip it. Tests find it through
# GOSTY_VERSITYGW (or this cache path); without it they skip, unless
# GOSTY_REQUIRE_S3 is set (CI), when they fail.
VERSITYGW_VERSION ?= v1.8.0
S3_BIN_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/gosty/versitygw-$(VERSITYGW_VERSION)
S3_BIN     := $(S3_BIN_DIR)/versitygw

s3-bin: deps-go
	@if [ -x "$(S3_BIN)" ]; then echo "versitygw: cached in $(S3_BIN_DIR)"; else \
		echo "building versitygw $(VERSITYGW_VERSION) into $(S3_BIN_DIR) (the first build takes a few minutes)"; \
		mkdir -p "$(S3_BIN_DIR)/tmp" && \
		GOBIN="$(S3_BIN_DIR)/tmp" CGO_ENABLED=0 $(GO) install -ldflags "-s -w" github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION) && \
		mv "$(S3_BIN_DIR)/tmp/versitygw" "$(S3_BIN)" && rmdir "$(S3_BIN_DIR)/tmp" || exit 1; \
	fi

# etcd for kube-apiserver (Debian's etcd-server) and kubectl.
deps-k8s:
	@if ! command -v etcd >/dev/null || ! command -v kubectl >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			pkgs=""; command -v etcd >/dev/null || pkgs="etcd-server"; command -v kubectl >/dev/null || pkgs="$$pkgs kubectl"; \
			echo "installing $$pkgs with apt-get"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkgs >/dev/null || \
			{ echo "could not install $$pkgs: install etcd (Debian: etcd-server) and kubectl"; exit 1; }; \
		else \
			echo "etcd or kubectl is missing: install them (Debian/Ubuntu: sudo apt-get install etcd-server; kubectl: https://kubernetes.io/docs/tasks/tools/)"; exit 1; \
		fi; \
	fi

# The Kubernetes tests (k8s/*_test.go): every manifest against a real
# kube-apiserver and etcd (server-side dry run with strict field validation,
# then the deploy steps of docs/operating.md), cross-references between the manifests
# and the node, the scale endpoint with and without the shipped Role, and
# the StatefulSet run for real (kube-controller-manager, pods as local gosty
# processes, scaled to 5 and back to 2 with jobs running; needs ffmpeg).
# `make test` runs them too, but skips the control-plane part when the
# binaries are not built; here a missing piece fails.
test-k8s: deps-go deps-ffmpeg deps-k8s kube-bins
	GOSTY_REQUIRE_KUBE=1 KUBE_BIN_DIR="$(KUBE_BIN_DIR)" $(GO) test -count=1 -timeout 15m -v ./k8s/...

clean:
	rm -rf bin web/node_modules
	find httpapi/ui/dist -mindepth 1 ! -name .keep -delete

# Fuzz tests (go test -fuzz takes one target per run): every Fuzz function
# of FUZZPKGS runs for FUZZTIME. `make test` runs a short pass (FUZZTIME_CI
# each, about 1 minute in all); `make fuzz FUZZTIME=10m` for a long one.
# Failing inputs land in the package's testdata/fuzz/ and are replayed by
# every `go test` from then on. The short pass counts executions rather
# than time: with Go 1.26 a duration can end a busy run with a spurious
# "context deadline exceeded" and no failing input (golang/go#75804, fixed
# in Go 1.27); a count has no deadline to race.
FUZZTIME    ?= 10s
FUZZTIME_CI ?= 5000x
FUZZPKGS    ?= ./cluster/ ./transcoder/
# Minimizing each new interesting input may take this long (go test stops
# counting execs meanwhile); short runs are better spent fuzzing.
FUZZMINIMIZETIME ?= 2s
fuzz: deps-go
	@set -e; for pkg in $(FUZZPKGS); do \
		for fn in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$fn for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) $$pkg; \
		done; \
	done
fuzz-ci:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME_CI)
