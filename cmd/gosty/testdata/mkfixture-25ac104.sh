#!/usr/bin/env bash
# mkfixture-25ac104.sh — rebuild the committed gosty data-dir fixture
# written by release 25ac104 (cmd/gosty/testdata/datadir-25ac104.*).
#
# Usage:  mkfixture-25ac104.sh GOSTY_BINARY OUTPUT_DIR
#
#   GOSTY_BINARY  gosty built from commit 25ac10425ee109cacae9f2034cbc62baac067d39:
#                   git worktree add /tmp/gosty-25ac104-src 25ac104
#                   (cd /tmp/gosty-25ac104-src && go build -o /tmp/gosty-25ac104 ./cmd/gosty)
#   OUTPUT_DIR    where the three artifacts are written (overwritten):
#                   datadir-25ac104.tar.gz   the node's data dir (node-id, raft/, blobs/)
#                   datadir-25ac104.json     manifest: node, ports, every job and what to expect
#                   datadir-25ac104.jobs.json  GET /api/v1/jobs verbatim, just before the SIGKILL
#
# Needs: bash, ffmpeg (with libx264 and the lavfi testsrc2/sine sources), curl, jq,
# sha256sum, tar, gzip. Environment: WORK (scratch dir, default a fresh mktemp -d,
# removed at the end unless KEEP_WORK=1), COMMIT (recorded in the manifest).
#
# What it does, on one node (name gosty-0, no --join, so it bootstraps a
# one-voter cluster), everything bound to 127.0.0.1:
#   1. two jobs that end `done` (one with 1 chunk, one with 3 chunks and 2
#      renditions) and one that ends `failed` (an MP4 whose index, moved up
#      front with +faststart, promises 4 s but whose bytes stop at 2 s: the
#      probe accepts it, the split fails it permanently);
#   2. small "filler" jobs until the raft log passes 1024 entries (the old
#      release's SnapshotThreshold), then deletes them (their media are
#      collected, deleted jobs leave the state);
#   3. waits until raft writes a snapshot (raft checks every SnapshotInterval,
#      120 s plus up to 120 s of jitter);
#   4. AFTER the snapshot, so that their entries are log entries past it:
#      a job with ttl 1s that ends done and then expires (stays listed with
#      expired_at, media released), a job canceled with DELETE while it
#      transcodes, and a long slow job (20 chunks, preset placebo) that is
#      left running;
#   5. saves GET /api/v1/jobs and SIGKILLs the node while that last job is in
#      state `transcoding` with some but not all chunks encoded;
#   6. drops uploads/ and blobs/tmp/ contents (a node deletes blobs/tmp at
#      start anyway) and packs the data dir's contents.
#
# The script is idempotent: every run starts from an empty data dir and
# rewrites the three artifacts. Media are generated with ffmpeg, so hashes
# differ from run to run; the manifest always describes the tarball next to it.
set -euo pipefail

BIN=${1:?usage: $0 GOSTY_BINARY OUTPUT_DIR}
OUT=${2:?usage: $0 GOSTY_BINARY OUTPUT_DIR}
COMMIT=${COMMIT:-25ac10425ee109cacae9f2034cbc62baac067d39}
TAG=25ac104

NAME=gosty-0
HOST=127.0.0.1
HTTP_PORT=18080
GOSSIP_PORT=17946
RAFT_PORT=17947
INTERNAL_PORT=17948
SLOTS=2
API=http://$HOST:$HTTP_PORT
SNAPSHOT_THRESHOLD=1024   # cluster/raft.go at 25ac104
FILLER_TARGET=1100        # applied index to reach before deleting fillers: the deletes add more

for tool in ffmpeg curl jq sha256sum tar gzip; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 2; }
done
[ -x "$BIN" ] || { echo "not executable: $BIN" >&2; exit 2; }
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

WORK=${WORK:-$(mktemp -d /tmp/mkfixture-$TAG.XXXXXX)}
rm -rf "$WORK"/data "$WORK"/src "$WORK"/files "$WORK"/node.log
mkdir -p "$WORK"/src "$WORK"/files
DATA=$WORK/data
NODE_PID=

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

cleanup() {
  if [ -n "$NODE_PID" ] && kill -0 "$NODE_PID" 2>/dev/null; then
    kill -9 "$NODE_PID" 2>/dev/null || true
    wait "$NODE_PID" 2>/dev/null || true
  fi
  if [ "${KEEP_WORK:-0}" != 1 ]; then rm -rf "$WORK"; else log "work dir kept: $WORK"; fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- sources
gen() { local out=$1; shift; ffmpeg -nostdin -v error -y "$@" "$WORK/src/$out"; }
x264=(-c:v libx264 -pix_fmt yuv420p)
aac=(-c:a aac -b:a 24k -ac 1)
log "generating sources"
# done, 1 chunk (4 s < the default 6 s chunk)
gen done-single.mp4 -f lavfi -i testsrc2=size=160x90:rate=25:duration=4 -f lavfi -i sine=frequency=440:duration=4 \
  "${x264[@]}" -preset veryfast -crf 35 -g 25 "${aac[@]}" -shortest
# done, 3 chunks of 2 s (keyframe every second), 2 renditions
gen done-chunked.mp4 -f lavfi -i testsrc2=size=160x90:rate=25:duration=6 -f lavfi -i sine=frequency=550:duration=6 \
  "${x264[@]}" -preset veryfast -crf 35 -g 25 "${aac[@]}" -shortest
# failed: whole index up front, half the bytes
gen whole.mp4 -f lavfi -i testsrc2=size=160x90:rate=25:duration=4 -f lavfi -i sine=frequency=660:duration=4 \
  "${x264[@]}" -preset veryfast -crf 35 -g 25 "${aac[@]}" -shortest -movflags +faststart
size=$(stat -c %s "$WORK/src/whole.mp4")
head -c $((size / 2)) "$WORK/src/whole.mp4" > "$WORK/src/failed-truncated.mp4"
# fillers (deleted again; all the same bytes, so one source blob)
gen filler.mp4 -f lavfi -i testsrc2=size=64x36:rate=10:duration=2 -f lavfi -i sine=frequency=220:duration=2 \
  "${x264[@]}" -preset veryfast -crf 40 "${aac[@]}" -shortest
# expired (ttl 1s)
gen expired-ttl.mp4 -f lavfi -i testsrc2=size=160x90:rate=25:duration=3 -f lavfi -i sine=frequency=770:duration=3 \
  "${x264[@]}" -preset veryfast -crf 35 -g 25 "${aac[@]}" -shortest
# canceled: 20 s, 10 chunks, slow preset
gen canceled.mp4 -f lavfi -i testsrc2=size=320x180:rate=12:duration=20 -f lavfi -i sine=frequency=880:duration=20 \
  "${x264[@]}" -preset veryslow -crf 51 -g 12 "${aac[@]}" -shortest
# running: 40 s, 20 chunks, slow preset, 2 renditions
gen running.mp4 -f lavfi -i testsrc2=size=320x180:rate=12:duration=40 -f lavfi -i sine=frequency=330:duration=40 \
  "${x264[@]}" -preset veryslow -crf 51 -g 12 "${aac[@]}" -shortest

# ---------------------------------------------------------------- node
log "starting $NAME on $HOST (http $HTTP_PORT, gossip $GOSSIP_PORT, raft $RAFT_PORT, internal $INTERNAL_PORT)"
NODE_ARGS=(node --name "$NAME" --data-dir "$DATA" --bind-addr "$HOST" --http-addr "$HOST:$HTTP_PORT"
  --gossip-port "$GOSSIP_PORT" --raft-port "$RAFT_PORT" --internal-port "$INTERNAL_PORT"
  --fast --slots "$SLOTS" --gc-grace 5s --gc-interval 2s --log-level info)
"$BIN" "${NODE_ARGS[@]}" > "$WORK/node.log" 2>&1 &
NODE_PID=$!
for _ in $(seq 1 150); do
  curl -fsS "$API/readyz" >/dev/null 2>&1 && break
  kill -0 "$NODE_PID" 2>/dev/null || { tail -20 "$WORK/node.log" >&2; die "node exited"; }
  sleep 0.2
done
curl -fsS "$API/readyz" >/dev/null || die "node not ready"

applied() { curl -fsS "$API/metrics" | awk '$1 == "gosty_raft_applied_index" {print $2}'; }
job() { curl -fsS "$API/api/v1/jobs/$1"; }
state() { job "$1" | jq -r .state; }

# submit FILE OPTIONS_JSON → prints the job id
submit() {
  local file=$1 opts=$2 body code
  body=$(curl -sS -w '\n%{http_code}' -F "options=$opts" -F "file=@$WORK/src/$file" "$API/api/v1/jobs")
  code=${body##*$'\n'}
  body=${body%$'\n'*}
  [ "$code" = 201 ] || die "upload $file: $code $body"
  jq -r .id <<<"$body"
}

# wait_final ID [TIMEOUT_S] → prints the final state
wait_final() {
  local id=$1 deadline=$((SECONDS + ${2:-180})) s
  while [ $SECONDS -lt $deadline ]; do
    s=$(state "$id")
    case $s in done | failed | canceled) echo "$s"; return 0 ;; esac
    sleep 0.3
  done
  die "job $id still $s"
}

declare -A JOB_NAME JOB_EXPECT JOB_SRC
remember() { JOB_NAME[$1]=$2; JOB_EXPECT[$1]=$3; JOB_SRC[$1]=$4; }

# fetch_files ID → downloads every published file of a done job into
# $WORK/files/ID and writes $WORK/files/ID.json ([{path, sha256, size}]).
# The list is the job's outputs (HLS master, DASH MPD, MP4s) plus everything
# the HLS playlists name (media playlists, init and media segments, which
# the MPD shares); it must add up to the job's bytes.published, which the
# old release sums over Job.Outputs, i.e. over every published file.
fetch_files() {
  local id=$1 dir=$WORK/files/$1 base=$API/api/v1/jobs/$1/files
  mkdir -p "$dir"
  local j queue=() seen=() p
  j=$(job "$id")
  mapfile -t queue < <(jq -r --arg pre "/api/v1/jobs/$id/files/" \
    '[.outputs.hls, .outputs.dash, (.outputs.mp4 // {} | .[])] | map(select(. != null) | ltrimstr($pre)) | .[]' <<<"$j")
  declare -A done_=()
  while [ ${#queue[@]} -gt 0 ]; do
    p=${queue[0]}; queue=("${queue[@]:1}")
    [ -n "${done_[$p]:-}" ] && continue
    done_[$p]=1
    mkdir -p "$dir/$(dirname "$p")"
    curl -fsS -o "$dir/$p" "$base/$p" || die "GET $base/$p"
    if [[ $p == *.m3u8 ]]; then
      local d; d=$(dirname "$p"); [ "$d" = . ] && d= || d=$d/
      while IFS= read -r ref; do
        [ -n "$ref" ] && queue+=("$d$ref")
      done < <(grep -v '^#' "$dir/$p" | tr -d '\r'; grep -o 'URI="[^"]*"' "$dir/$p" | sed 's/^URI="//; s/"$//')
    fi
  done
  (cd "$dir" && find . -type f | sed 's|^\./||' | sort | while IFS= read -r f; do
     jq -n --arg path "$f" --arg sha "$(sha256sum "$f" | cut -d' ' -f1)" --argjson size "$(stat -c %s "$f")" \
       '{path: $path, sha256: $sha, size: $size}'
   done) | jq -s . > "$WORK/files/$id.json"
  local sum want
  sum=$(jq '[.[].size] | add' "$WORK/files/$id.json")
  want=$(jq .bytes.published <<<"$j")
  [ "$sum" = "$want" ] || die "job $id: fetched $sum bytes of published files, job says $want"
  log "job $id: $(jq length "$WORK/files/$id.json") published files, $sum bytes"
}

# ---------------------------------------------------------------- 1. done and failed
log "submitting done and failed jobs"
A=$(submit done-single.mp4 '{"renditions":["90p@100k"]}')
remember "$A" done-single.mp4 done done-single.mp4
B=$(submit done-chunked.mp4 '{"renditions":["90p@100k","72p@60k"],"chunk_seconds":2}')
remember "$B" done-chunked.mp4 done done-chunked.mp4
C=$(submit failed-truncated.mp4 '{"renditions":["90p@100k"]}')
remember "$C" failed-truncated.mp4 failed failed-truncated.mp4
for id in "$A" "$B"; do
  s=$(wait_final "$id"); [ "$s" = done ] || die "job $id ended $s: $(job "$id" | jq -r .error)"
done
s=$(wait_final "$C"); [ "$s" = failed ] || die "job $C ended $s, want failed"
[ "$(job "$B" | jq '.chunks | length')" -ge 2 ] || die "job $B has fewer than 2 chunks"
fetch_files "$A"
fetch_files "$B"

# ---------------------------------------------------------------- 2. fillers past the snapshot threshold
log "filler jobs until the log passes $FILLER_TARGET entries (now $(applied))"
fillers=()
while [ "$(applied)" -lt $FILLER_TARGET ]; do
  batch=()
  for _ in 1 2 3 4; do
    id=$(submit filler.mp4 '{"renditions":["36p@50k"],"chunk_seconds":2}')
    batch+=("$id")
  done
  for id in "${batch[@]}"; do
    s=$(wait_final "$id"); [ "$s" = done ] || die "filler $id ended $s"
  done
  fillers+=("${batch[@]}")
done
log "deleting ${#fillers[@]} fillers (applied index $(applied))"
for id in "${fillers[@]}"; do
  code=$(curl -sS -o /dev/null -w '%{http_code}' -X DELETE "$API/api/v1/jobs/$id")
  [ "$code" = 204 ] || die "DELETE filler $id: $code"
done
[ "$(curl -fsS "$API/api/v1/jobs" | jq '.jobs | length')" = 3 ] || die "fillers still listed"

# ---------------------------------------------------------------- 3. snapshot
log "waiting for a raft snapshot (applied index $(applied); up to 300 s)"
deadline=$((SECONDS + 300))
# raft writes a snapshot into <id>.tmp and renames it when complete
snapshots() { find "$DATA/raft/snapshots" -mindepth 2 -maxdepth 2 -name meta.json ! -path '*.tmp/*' 2>/dev/null; }
until [ -n "$(snapshots)" ]; do
  [ $SECONDS -lt $deadline ] || die "no snapshot after 300 s"
  sleep 2
done
sleep 1 # let raft finish compacting the log behind it
[ "$(snapshots | wc -l)" = 1 ] || die "more than one snapshot: $(snapshots)"
SNAP_META=$(snapshots)
SNAP_INDEX=$(jq .Index "$SNAP_META")
log "snapshot $(basename "$(dirname "$SNAP_META")") at index $SNAP_INDEX"

# ---------------------------------------------------------------- 4. after the snapshot
log "expired job (ttl 1s)"
D=$(submit expired-ttl.mp4 '{"renditions":["90p@100k"],"ttl":"1s"}')
remember "$D" expired-ttl.mp4 expired expired-ttl.mp4
s=$(wait_final "$D"); [ "$s" = done ] || die "job $D ended $s"
deadline=$((SECONDS + 60))
until [ "$(job "$D" | jq -r '.expired_at // empty')" != "" ]; do
  [ $SECONDS -lt $deadline ] || die "job $D never expired"
  sleep 0.5
done
sleep 12 # --gc-grace 5s, --gc-interval 2s: let the collector delete its media

log "canceled job"
E=$(submit canceled.mp4 '{"renditions":["180p@150k"],"chunk_seconds":2,"preset":"placebo"}')
remember "$E" canceled.mp4 canceled canceled.mp4
deadline=$((SECONDS + 120))
until [ "$(job "$E" | jq -r '.state == "transcoding" and ([.chunks[] | select(.running_on != null or .encoded_by != null)] | length) > 0')" = true ]; do
  [ $SECONDS -lt $deadline ] || die "job $E never reached transcoding"
  s=$(state "$E"); case $s in done | failed | canceled | packaging) die "job $E is already $s" ;; esac
  sleep 0.2
done
resp=$(curl -sS -w '\n%{http_code}' -X DELETE "$API/api/v1/jobs/$E")
[ "${resp##*$'\n'}" = 200 ] || die "cancel $E: $resp"
[ "$(state "$E")" = canceled ] || die "job $E not canceled"
sleep 3 # let the killed encodes report and the slots free up

log "running job (killed mid-transcode)"
F=$(submit running.mp4 '{"renditions":["180p@150k","144p@100k"],"chunk_seconds":2,"preset":"placebo"}')
remember "$F" running.mp4 running running.mp4
deadline=$((SECONDS + 300))
while :; do
  [ $SECONDS -lt $deadline ] || die "job $F never got mid-way"
  j=$(job "$F")
  s=$(jq -r .state <<<"$j")
  case $s in packaging | done | failed | canceled) die "job $F is already $s: too fast, make it slower" ;; esac
  n=$(jq '.chunks | length' <<<"$j")
  enc=$(jq '[.chunks[] | select(.encoded_by != null)] | length' <<<"$j")
  if [ "$s" = transcoding ] && [ "$enc" -ge 2 ] && [ "$enc" -le $((n - 4)) ]; then break; fi
  sleep 0.2
done
LAST_APPLIED=$(applied)
curl -fsS "$API/api/v1/jobs" > "$WORK/jobs.json"
kill -9 "$NODE_PID"
wait "$NODE_PID" 2>/dev/null || true
NODE_PID=
log "SIGKILLed the node: job $F $(jq -r --arg id "$F" '.jobs[] | select(.id == $id) | "\(.state), \([.chunks[] | select(.encoded_by != null)] | length)/\(.chunks | length) chunks encoded"' "$WORK/jobs.json"); applied index $LAST_APPLIED > snapshot $SNAP_INDEX"
[ "$LAST_APPLIED" -gt "$SNAP_INDEX" ] || die "no log entries after the snapshot"

# ---------------------------------------------------------------- 5. pack
rm -rf "$DATA/uploads"
rm -rf "$DATA/blobs/tmp"
mkdir -p "$DATA/blobs/tmp"
find "$DATA/blobs" -mindepth 1 -type d -empty ! -path "$DATA/blobs/tmp" -delete
blob() { [ -f "$DATA/blobs/${1:0:2}/$1" ]; }
for id in "$A" "$B"; do
  while read -r sha; do blob "$sha" || die "job $id: published blob $sha missing from the data dir"; done < <(jq -r '.[].sha256' "$WORK/files/$id.json")
done

tar -C "$DATA" --sort=name --owner=0 --group=0 --numeric-owner -czf "$OUT/datadir-$TAG.tar.gz" .
cp "$WORK/jobs.json" "$OUT/datadir-$TAG.jobs.json"

# ---------------------------------------------------------------- 6. manifest
jobs_json='[]'
for id in "$A" "$B" "$C" "$D" "$E" "$F"; do
  src=$WORK/src/${JOB_SRC[$id]}
  sha=$(sha256sum "$src" | cut -d' ' -f1)
  present=false; blob "$sha" && present=true
  listed=$(jq --arg id "$id" '.jobs[] | select(.id == $id)' "$WORK/jobs.json")
  files=null
  [ -f "$WORK/files/$id.json" ] && files=$(cat "$WORK/files/$id.json")
  entry=$(jq -n --arg id "$id" --arg name "${JOB_NAME[$id]}" --arg expect "${JOB_EXPECT[$id]}" \
    --arg sha "$sha" --argjson size "$(stat -c %s "$src")" --argjson present "$present" \
    --argjson j "$listed" --argjson files "$files" '
    {id: $id, name: $name, expected_state: $expect,
     state_at_kill: $j.state,
     error: $j.error,
     options: $j.options,
     renditions: [$j.renditions[] | {name, width, height, bitrate, codec}],
     chunks: ($j.chunks | length),
     chunks_encoded_at_kill: ([$j.chunks[] | select(.encoded_by != null)] | length),
     source: {sha256: $sha, size: $size, blob_in_fixture: $present},
     expired_at: $j.expired_at,
     outputs: $j.outputs,
     published_bytes: $j.bytes.published,
     files: $files}
    | if .files == null then del(.files) else . end
    | if .expired_at == null then del(.expired_at) else . end
    | if .outputs == null then del(.outputs) else . end')
  jobs_json=$(jq --argjson e "$entry" '. + [$e]' <<<"$jobs_json")
done

jq -n --arg commit "$COMMIT" --arg name "$NAME" --arg host "$HOST" \
  --argjson http "$HTTP_PORT" --argjson gossip "$GOSSIP_PORT" --argjson raft "$RAFT_PORT" --argjson internal "$INTERNAL_PORT" \
  --arg nodeid "$(tr -d '\n' < "$DATA/node-id")" --arg snapdir "raft/snapshots/$(basename "$(dirname "$SNAP_META")")" \
  --argjson snapindex "$SNAP_INDEX" --argjson snapterm "$(jq .Term "$SNAP_META")" --argjson applied "$LAST_APPLIED" \
  --argjson threshold $SNAPSHOT_THRESHOLD --argjson jobs "$jobs_json" --arg tar "datadir-$TAG.tar.gz" \
  --arg created "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg ffmpeg "$(ffmpeg -version | head -1)" \
  --argjson args "$(printf '%s\n' "${NODE_ARGS[@]}" | sed "s|$DATA|<data-dir>|" | jq -R . | jq -s .)" '
{
  description: "gosty data dir written by release \($commit[0:7]): one node that bootstrapped itself, SIGKILLed while the job with expected_state \"running\" was transcoding. Unpack the tarball into an empty data dir and start the node with the same --name (task assignments name the node).",
  commit: $commit,
  created: $created,
  ffmpeg: $ffmpeg,
  tarball: $tar,
  tar_contents: "the data dir'"'"'s contents: node-id, raft/raft.db, raft/snapshots/<snapshot>/{meta.json,state.bin}, blobs/<2 hex>/<sha256> (blobs/tmp empty; uploads/ removed)",
  node: {name: $name, raft_id: $nodeid, bind_addr: $host, http_addr: "\($host):\($http)",
         gossip_port: $gossip, raft_port: $raft, internal_port: $internal, join: null,
         args: $args, cluster_key: null, gossip_key: null, api_token: null, playback: "public"},
  raft: {snapshot_dir: $snapdir, snapshot_index: $snapindex, snapshot_term: $snapterm,
         applied_index_at_kill: $applied, entries_after_snapshot: ($applied - $snapindex),
         snapshot_threshold: $threshold,
         note: "filler jobs (done, then deleted with DELETE /api/v1/jobs/ID) pushed the log past the threshold before the snapshot; the done and failed jobs are in the snapshot, the expired, canceled and running jobs only in log entries after it"},
  states: {
    done: "state done, outputs served; files lists every published file (sha256 of the bytes served = the blob hash)",
    failed: "state failed with error; accepted (probe passed), failed by the split",
    expired: "state done with expired_at and freed_bytes set, no outputs; its media were collected",
    canceled: "state canceled (DELETE while transcoding)",
    running: "state transcoding at the SIGKILL; source and chunk blobs are in the data dir so a node can finish it"
  },
  jobs: $jobs
}' > "$OUT/datadir-$TAG.json"

log "wrote $OUT/datadir-$TAG.tar.gz ($(stat -c %s "$OUT/datadir-$TAG.tar.gz") bytes), datadir-$TAG.json, datadir-$TAG.jobs.json"
