#!/usr/bin/env bash
# framepush benchmarks (make bench). In one run:
#   1. go test -bench over every package that has benchmarks, with -benchmem;
#   2. framepush (sender + receiver) against a raw TCP copy loop on loopback,
#      as ratios per frame size (from internal/e2e's benchmarks), and
#      framerecv's S3 store into versitygw against plain minio-go PutObject
#      loops (store/s3 BenchmarkS3; versitygw from scripts/deps.sh); the
#      pipelining window on a slow link against stop-and-wait and the link's
#      limit; framerecv and the sender against minimal references;
#   3. the seed's Python pair (testdata/seed) against framepush on the same
#      frame files: frames/s, and frames stored intact for frames larger
#      than the 126,976 bytes the seed server keeps;
#   4. stripped binary sizes per board target (make sizes);
#   5. scripts/agentbench.sh (agent RSS/CPU at 1080p30) when it exists.
# Needs Go, python3 and this repo; nothing else. Exits non-zero when a
# benchmark fails or framepush loses or corrupts a frame.
#
# Knobs: BENCHTIME (go -benchtime, default 1s), BENCH_FRAMES (64 KiB frames
# per pair run, default 200), BENCH_BIG_FRAMES (200 KiB frames, default 40),
# BENCH_SKIP_GO=1, BENCH_SKIP_SIZES=1, BENCH_SKIP_AGENT=1.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
benchtime=${BENCHTIME:-1s}
nsmall=${BENCH_FRAMES:-200}
nbig=${BENCH_BIG_FRAMES:-40}

work=$(mktemp -d "${TMPDIR:-/tmp}/framepush-bench.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
summary=$work/summary.txt
: >"$summary"
step() { printf '\n=== %s\n' "$*"; }
say() { printf '%s\n' "$*" | tee -a "$summary"; }
die() { echo "bench: $*" >&2; exit 1; }

command -v go >/dev/null || die "go is not on PATH"
py=$(command -v python3) || die "python3 is needed for the seed pair (apt-get install python3)"

step "machine"
{
  echo "host: $(uname -srm), $(nproc) CPU ($(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//'))"
  echo "go: $(go version | cut -d' ' -f3-), python: $("$py" --version 2>&1)"
} | tee -a "$summary"

step "build"
mkdir -p "$work/bin"
CGO_ENABLED=0 go build -trimpath -o "$work/bin/framepush" ./cmd/framepush
CGO_ENABLED=0 go build -trimpath -o "$work/bin/framerecv" ./cmd/framerecv
go build -o "$work/bin/benchcmp" ./scripts/benchcmp
"$work/bin/framepush" send --help >/dev/null 2>&1 || die "framepush has no working 'send' command"
bc=$work/bin/benchcmp

# --- 1 and 2: Go benchmarks --------------------------------------------------
if [ "${BENCH_SKIP_GO:-0}" != 1 ]; then
  pkgs=()
  for p in wire capture capture/mjpeg capture/testpattern queue receiver sender agent internal/e2e store/s3 view notify/mqtt; do
    [ -d "$p" ] && grep -qs '^func Benchmark' "$p"/*_test.go && pkgs+=("./$p")
  done
  step "go test -bench (${pkgs[*]}), -benchtime $benchtime"
  go test -run '^$' -bench . -benchmem -benchtime "$benchtime" "${pkgs[@]}" | tee "$work/go-bench.txt"
  step "framepush vs raw TCP on loopback (internal/e2e; persistent, SIZE terminated by LF)"
  { echo; echo "framepush sender+receiver vs raw TCP (write n bytes, read a 1-byte ack), frames/s:"; "$bc" ratios "$work/go-bench.txt"; } | tee -a "$summary"
  step "framerecv into S3 (versitygw) vs a plain minio-go PutObject loop (store/s3 BenchmarkS3)"
  if grep -q '^BenchmarkS3/' "$work/go-bench.txt"; then
    {
      echo
      echo "framerecv --store s3:// into versitygw vs minio-go PutObject loops into the same server, frames/s"
      echo "(plain: unconditional PUT; cond: with If-None-Match: *, as framerecv sends for idempotence;"
      echo " win: agents with the pipelining window, their default; buf: streaming off, Config.Buffered;"
      echo " target: framerecv >= 0.9x plain):"
      awk '/^BenchmarkS3\// {
        name = $1; sub(/^BenchmarkS3\//, "", name); sub(/-[0-9]+$/, "", name)
        for (i = 2; i < NF; i++) v[$(i+1)] = $i
        printf "  %-24s framerecv %8.1f  win %8.1f  plain %8.1f  ratio %.2fx  win %.2fx  (buffered %.2fx  win %.2fx)  cond %8.1f  ratio %.2fx\n", name, v["frames/s"], v["win-frames/s"], v["plain-frames/s"], v["x-plain"], v["win-x-plain"], v["buf-x-plain"], v["buf-win-x-plain"], v["cond-frames/s"], v["x-cond"]
      }' "$work/go-bench.txt"
      awk '/^BenchmarkS3SlowLink/ {
        for (i = 2; i < NF; i++) v[$(i+1)] = $i
        printf "  1 MiB, agent on 20 Mbit/s, store at 100 Mbit/s + 5 ms: streamed %.2f frames/s, buffered %.2f, ratio %.2fx (agent link %.2f)\n", v["stream-frames/s"], v["buf-frames/s"], v["stream-x-buffered"], v["agent-link-frames/s"]
      }' "$work/go-bench.txt"
    } | tee -a "$summary"
  else
    say "S3 benchmark did not run: versitygw is missing (bash scripts/deps.sh installs it)"
  fi
fi

# --- 2b: the window on a slow link, framerecv and the sender against minimal references
# BenchmarkWindowLink (toxiproxy: latency each way + 20 Mbit/s, 50 KB frames),
# BenchmarkVsReference (framerecv vs a minimal server doing the same file
# work) and BenchmarkSenderVsMinimal (the sender vs a minimal stop-and-wait
# loop) ran in step 1 on the test's temporary folder (the disk); the last
# two run again on a tmpfs (FRAMEPUSH_BENCH_DIR, /dev/shm by default) where
# the file work costs least and per-frame overhead shows most.
ratios_of() { # FILE: the ratio metrics of the three benchmarks, one line each
  awk '/^Benchmark(WindowLink|VsReference|SenderVsMinimal)/ {
    name=$1; sub(/-[0-9]+$/, "", name); line=sprintf("  %-58s", name)
    for (i = 2; i < NF; i++) if ($(i+1) ~ /frames\/s|^x-|x-|cpu-/) line=line sprintf(" %s %s", $(i+1), $i)
    print line }' "$1"
}
if [ "${BENCH_SKIP_GO:-0}" != 1 ]; then
  shm=${FRAMEPUSH_BENCH_DIR:-/dev/shm}
  if [ -d "$shm" ] && [ -w "$shm" ]; then
    step "framerecv and the sender vs minimal references on $shm (tmpfs), -benchtime $benchtime"
    FRAMEPUSH_BENCH_DIR=$shm go test -run '^$' -bench 'VsReference/fsync=false|SenderVsMinimal' -benchmem -benchtime "$benchtime" ./receiver ./internal/e2e | tee "$work/go-bench-shm.txt"
  fi
  {
    echo
    echo "pipelining window on a slow link (50 KB frames, 20 Mbit/s; x-link target >= 0.9, x-stop-and-wait >= 5):"
    ratios_of "$work/go-bench.txt" | grep WindowLink || true
    echo "framerecv vs a minimal server with the same file work (x-reference target >= 0.8; cpu per frame: whole process, client included), on the disk:"
    ratios_of "$work/go-bench.txt" | grep VsReference || true
    echo "the sender vs a minimal stop-and-wait client loop, same framerecv (x-minimal), on the disk:"
    ratios_of "$work/go-bench.txt" | grep SenderVsMinimal || true
    if [ -s "$work/go-bench-shm.txt" ]; then
      echo "the same two on $shm (tmpfs):"
      ratios_of "$work/go-bench-shm.txt"
    fi
  } | tee -a "$summary"
fi

# --- 3: the seed pair against framepush ---------------------------------------
step "seed pair vs framepush: $nsmall frames of 64 KiB, $nbig frames of 200 KiB"
"$bc" gen "$work/f64" "$nsmall" 65536 64
"$bc" gen "$work/f200" "$nbig" 204800 200

seed_addr="" recv_addr="" srv_pid=""
start_seed_server() { # DIR (created)
  local log=$work/seed-$RANDOM.log; mkdir -p "$1"
  "$py" -u testdata/seed/server.py --host 127.0.0.1 --port 0 --dir "$1" >"$log" 2>&1 &
  srv_pid=$!; pids+=("$srv_pid")
  for _ in $(seq 200); do
    seed_addr=$(sed -n 's/^listening on //p' "$log" | head -1)
    [ -n "$seed_addr" ] && return 0
    sleep 0.05
  done
  cat "$log" >&2; die "the seed server did not start"
}
start_framerecv() { # DIR FLAGS...
  local dir=$1 log=$work/recv-$RANDOM.log; shift
  "$work/bin/framerecv" --listen 127.0.0.1:0 --dir "$dir" --min-free 0 "$@" 2>"$log" &
  srv_pid=$!; pids+=("$srv_pid")
  for _ in $(seq 200); do
    recv_addr=$(grep 'receiver listening' "$log" | grep -o 'addr=[^ ]*' | head -1 | cut -d= -f2 || true)
    [ -n "$recv_addr" ] && return 0
    sleep 0.05
  done
  cat "$log" >&2; die "framerecv did not start"
}
stop_server() { kill "$srv_pid" 2>/dev/null || true; wait "$srv_pid" 2>/dev/null || true; }

# run LABEL FILESDIR STOREDIR MUST_BE_INTACT CMD... : times CMD, counts
# intact frames, records "label fps intact/sent".
declare -A fps intact
run() {
  local label=$1 files=$2 store=$3 must=$4; shift 4
  local t0 t1 rc=0
  t0=$EPOCHREALTIME
  "$@" >"$work/run.log" 2>&1 || rc=$?
  t1=$EPOCHREALTIME
  sleep 0.2 # let the seed server finish writing its last file after a reset
  read -r ok sent stored < <("$bc" intact "$files" "$store")
  fps[$label]=$(awk -v n="$sent" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", n / (b - a) }')
  intact[$label]="$ok/$sent"
  printf '  %-58s %9s frames/s  intact %s  (exit %d)\n' "$label" "${fps[$label]}" "${intact[$label]}" "$rc" | tee -a "$summary"
  if [ "$must" = 1 ] && { [ "$rc" != 0 ] || [ "$ok" != "$sent" ]; }; then
    tail -20 "$work/run.log" >&2
    die "$label: framepush must deliver every frame intact (exit $rc, intact $ok/$sent)"
  fi
}
fp() { "$work/bin/framepush" send --server "$@"; }
seedc() { local a=$1; shift; "$py" testdata/seed/client.py --host "${a%:*}" --port "${a##*:}" "$@"; }

# The seed client as the article wrote it sends one image per run; the
# port's loop over FILE arguments is the seed pair at its best.
seedc_each() { local a=$1; shift; for f in "$@"; do seedc "$a" "$f" || true; done; }

say ""
say "seed pair vs framepush, $nsmall frames of 64 KiB (process start included; framerecv fsync on unless noted):"
d=$work/s0; start_seed_server "$d"; run "seed client as written (one run per image) -> seed server" "$work/f64" "$d" 0 seedc_each "$seed_addr" "$work"/f64/*; stop_server
d=$work/s1; start_seed_server "$d"; run "seed client -> seed server" "$work/f64" "$d" 0 seedc "$seed_addr" "$work"/f64/*; stop_server
d=$work/s2; start_framerecv "$d"; run "seed client -> framerecv (settle window)" "$work/f64" "$d" 0 seedc "$recv_addr" "$work"/f64/*; stop_server
d=$work/s3; start_seed_server "$d"; run "framepush send (auto, no terminator) -> seed server" "$work/f64" "$d" 1 fp "$seed_addr" "$work"/f64/*; stop_server
d=$work/s4; start_framerecv "$d"; run "framepush send (auto, no terminator) -> framerecv" "$work/f64" "$d" 1 fp "$recv_addr" "$work"/f64/*; stop_server
d=$work/s5; start_framerecv "$d"; run "framepush send --terminator lf -> framerecv" "$work/f64" "$d" 1 fp "$recv_addr" --terminator lf "$work"/f64/*; stop_server
d=$work/s6; start_framerecv "$d" --fsync=false; run "framepush send --terminator lf -> framerecv --fsync=false" "$work/f64" "$d" 1 fp "$recv_addr" --terminator lf "$work"/f64/*; stop_server

say ""
say "$nbig frames of 200 KiB (over the 126,976 bytes the seed server keeps):"
d=$work/b1; start_seed_server "$d"; run "seed client -> seed server (200K)" "$work/f200" "$d" 0 seedc "$seed_addr" "$work"/f200/*; stop_server
d=$work/b2; start_seed_server "$d"; run "framepush send -> seed server (200K)" "$work/f200" "$d" 0 fp "$seed_addr" "$work"/f200/*; stop_server
d=$work/b3; start_framerecv "$d"; run "seed client -> framerecv (200K)" "$work/f200" "$d" 0 seedc "$recv_addr" "$work"/f200/*; stop_server
d=$work/b4; start_framerecv "$d"; run "framepush send --terminator lf -> framerecv (200K)" "$work/f200" "$d" 1 fp "$recv_addr" --terminator lf "$work"/f200/*; stop_server

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1fx", a / b; else print "-" }'; }
base=${fps["seed client -> seed server"]}
asis=${fps["seed client as written (one run per image) -> seed server"]}
say ""
say "ratios against the seed pair as the article runs it (one client run per image), 64 KiB frames/s:"
say "  framepush --terminator lf -> framerecv (fsync on):   $(ratio "${fps["framepush send --terminator lf -> framerecv"]}" "$asis")"
say "  framepush --terminator lf -> framerecv --fsync=false: $(ratio "${fps["framepush send --terminator lf -> framerecv --fsync=false"]}" "$asis")"
say "ratios against the seed pair at its best (one client process looping over the files), 64 KiB frames/s:"
say "  framepush --terminator lf -> framerecv (fsync on):   $(ratio "${fps["framepush send --terminator lf -> framerecv"]}" "$base")"
say "  framepush --terminator lf -> framerecv --fsync=false: $(ratio "${fps["framepush send --terminator lf -> framerecv --fsync=false"]}" "$base")"
say "  framepush seed bytes (no terminator) -> framerecv:    $(ratio "${fps["framepush send (auto, no terminator) -> framerecv"]}" "$base")  (settle window per frame)"
say "  framepush -> the seed server itself:                  $(ratio "${fps["framepush send (auto, no terminator) -> seed server"]}" "$base")"
say "frames > 126,976 bytes stored intact: seed pair ${intact["seed client -> seed server (200K)"]}, framepush + framerecv ${intact["framepush send --terminator lf -> framerecv (200K)"]}"

# --- 4: binary sizes ------------------------------------------------------------
if [ "${BENCH_SKIP_SIZES:-0}" != 1 ]; then
  step "stripped binary sizes (make sizes)"
  make --no-print-directory sizes | grep -v '^build ' | tee "$work/sizes.txt"
  { echo; echo "stripped binary sizes:"; cat "$work/sizes.txt"; } >>"$summary"
fi

# --- 5: agent benchmark hook -----------------------------------------------------
if [ -f scripts/agentbench.sh ] && [ "${BENCH_SKIP_AGENT:-0}" != 1 ]; then
  step "agent benchmark (scripts/agentbench.sh)"
  # In its own process group (set -m), so that a cleanup there that
  # signals its group cannot take this script down with it.
  set -m
  rc=0
  bash scripts/agentbench.sh >"$work/agent.txt" 2>&1 &
  wait $! || rc=$?
  set +m
  cat "$work/agent.txt"
  { echo; echo "agent benchmark:"; cat "$work/agent.txt"; } >>"$summary"
  if [ "$rc" = 143 ]; then
    echo "bench: scripts/agentbench.sh was killed by SIGTERM (does its cleanup signal its own process group, e.g. 'kill 0' from an unset pid?)" >&2
  fi
  [ "$rc" = 0 ] || die "scripts/agentbench.sh failed (exit $rc)"
fi

step "summary"
cat "$summary"
