#!/usr/bin/env bash
# The demo: a receiver and the agent on this machine, no camera needed.
# framepush runs on its embedded default (the built-in test pattern at
# 1 frame/s to 127.0.0.1:7400) and framerecv stores every frame under
# ./demo-frames. Stops after DEMO_SECONDS (default 15) or on Ctrl-C, then
# lists what arrived.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${DEMO_DIR:-demo-frames}
secs=${DEMO_SECONDS:-15}

echo "demo: building"
mkdir -p bin
CGO_ENABLED=0 go build -trimpath -o bin/framepush ./cmd/framepush
CGO_ENABLED=0 go build -trimpath -o bin/framerecv ./cmd/framerecv

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

echo "demo: starting framerecv on 127.0.0.1:7400 -> $dir/"
bin/framerecv --listen 127.0.0.1:7400 --dir "$dir" &
pids+=($!)
sleep 0.5
echo "demo: starting framepush on the test pattern for ${secs}s (metrics: http://127.0.0.1:7401/metrics)"
bin/framepush run &
agent=$!
pids=("$agent" "${pids[@]}")
sleep "$secs"
kill -TERM "$agent"
wait "$agent" || true
cleanup
trap - EXIT INT TERM

count=$(find "$dir" -type f -name '*.jpg' | wc -l)
echo
echo "demo: $count frames in $dir/ (newest last):"
find "$dir" -type f -name '*.jpg' | sort | tail -n 5
