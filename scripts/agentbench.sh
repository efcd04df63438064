#!/usr/bin/env bash
# Agent resource benchmark: framepush on the built-in test pattern at
# 1920x1080, 30 fps, into a local framerecv, for BENCH_SECONDS (default 60).
# Samples the agent's RSS and CPU time from /proc once a second and prints
# frames delivered, the rate reached, RSS (first, max, last; flat means the
# second half grows by less than 1 MiB) and CPU per frame. The target for a
# Pi-class board is a flat RSS at or under 15 MiB.
#
#   scripts/agentbench.sh            (make bench runs it through scripts/bench.sh)
#   BENCH_SECONDS=300 scripts/agentbench.sh
#   BENCH_WIDTH=1280 BENCH_HEIGHT=720 BENCH_FPS=15 scripts/agentbench.sh
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${BENCH_SECONDS:-60}
width=${BENCH_WIDTH:-1920}
height=${BENCH_HEIGHT:-1080}
fps=${BENCH_FPS:-30}
work=$(mktemp -d /tmp/framepush-agentbench.XXXXXX)
cleanup() {
  for p in $recv_pid $agent_pid; do [ "$p" -gt 0 ] && kill "$p" 2>/dev/null; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
recv_pid=0 agent_pid=0

go build -trimpath -ldflags "-s -w" -o "$work/framepush" ./cmd/framepush
go build -trimpath -ldflags "-s -w" -o "$work/framerecv" ./cmd/framerecv

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$work/framerecv" --listen "127.0.0.1:$port" --dir "$work/frames" --fsync=false --min-free 0 --log-level warn &
recv_pid=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

FRAMEPUSH_CONFIG= "$work/framepush" run \
  --set source.width="$width" --set source.height="$height" --set trigger.fps="$fps" \
  --set server.addresses="127.0.0.1:$port" --set server.terminator=lf \
  --set http.listen= --set log.level=warn 2>"$work/agent.log" &
agent_pid=$!

tck=$(getconf CLK_TCK)
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$agent_pid/status"; }
cpu() { awk '{print $14 + $15}' "/proc/$agent_pid/stat"; }
sleep 3 # warm-up: first frames, buffers sized
count() { find "$work/frames" -type f ! -name '.*' | wc -l; }
f0=$(count); c0=$(cpu); rss_first=$(rss); rss_max=$rss_first; rss_mid=0
for i in $(seq "$secs"); do
  sleep 1
  r=$(rss)
  [ "$r" -gt "$rss_max" ] && rss_max=$r
  [ "$i" -eq $((secs / 2)) ] && rss_mid=$r
done
f1=$(count); c1=$(cpu); rss_last=$(rss)
kill -TERM "$agent_pid"; wait "$agent_pid" || true; agent_pid=0

frames=$((f1 - f0))
awk -v f="$frames" -v s="$secs" -v c0="$c0" -v c1="$c1" -v t="$tck" -v w="$width" -v h="$height" -v fps="$fps" \
    -v r0="$rss_first" -v rm="$rss_max" -v rmid="$rss_mid" -v rl="$rss_last" 'BEGIN {
  cpu = (c1 - c0) / t
  printf "agent: %dx%d test pattern at %d fps into framerecv on loopback, %d s\n", w, h, fps, s
  printf "  frames delivered     %d (%.1f frames/s, %.0f%% of the asked rate)\n", f, f / s, 100 * f / s / fps
  printf "  CPU                  %.2f s = %.1f%% of one core, %.2f ms per frame\n", cpu, 100 * cpu / s, (f > 0 ? 1000 * cpu / f : 0)
  printf "  RSS first/max/last   %.1f / %.1f / %.1f MiB (target <= 15 MiB)\n", r0 / 1024, rm / 1024, rl / 1024
  grow = (rl - rmid) / 1024
  printf "  RSS second half      %+.2f MiB (%s)\n", grow, (grow < 1 ? "flat" : "GROWING")
  if (rm / 1024 > 15) printf "  note: max RSS above the 15 MiB target\n"
}'
if grep -q 'level=ERROR' "$work/agent.log"; then
  echo "agent logged errors:"; grep 'level=ERROR' "$work/agent.log" | head; exit 1
fi
