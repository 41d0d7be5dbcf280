# gosty: one image for every node of a cluster (see docs/operating.md,
# "Deploy on Kubernetes"). Build: docker build -t gosty .
# Run a one-node cluster: docker run -p 8080:8080 -v gosty-data:/var/lib/gosty gosty

# --- build: the same as `make build`, static, no cgo.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/gosty ./cmd/gosty

# --- run: Debian slim with ffmpeg/ffprobe, as an unprivileged user.
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ffmpeg ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 65532 gosty \
 && useradd --uid 65532 --gid 65532 --home-dir /var/lib/gosty --no-create-home --shell /usr/sbin/nologin gosty \
 && install -d -o 65532 -g 65532 -m 0750 /var/lib/gosty
COPY --from=build /out/gosty /usr/local/bin/gosty
USER 65532:65532
WORKDIR /var/lib/gosty
ENV GOSTY_DATA_DIR=/var/lib/gosty \
    GOSTY_HTTP_ADDR=:8080
VOLUME /var/lib/gosty
# 8080 public API, UI and metrics; 7946 gossip (TCP and UDP); 7947 raft; 7948 internal API.
# A lone node (no GOSTY_JOIN) keeps 7946-7948 on loopback; nodes that join
# each other listen on every interface and need GOSTY_CLUSTER_KEY_FILE and
# GOSTY_GOSSIP_KEY_FILE (files from a mounted secret), else they refuse to
# start (GOSTY_INSECURE=true overrides, logged at ERROR level).
EXPOSE 8080 7946/tcp 7946/udp 7947 7948
ENTRYPOINT ["/usr/local/bin/gosty"]
CMD ["node"]
