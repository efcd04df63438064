#!/usr/bin/env bash
# The demo: a receiver and the agent on this machine, no camera needed.
# framepush runs on its embedded default (the built-in test pattern at
# 1 frame/s to 127.0.0.1:7400), named demo-cam and with the extension on,
# and framerecv stores every frame under ./demo-frames and serves its web
# page on 127.0.0.1:7402 (DEMO_HTTP). Stops after DEMO_SECONDS (default 15)
# or on Ctrl-C, then checks that latest.jpg is the newest frame stored and
# lists what arrived.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${DEMO_DIR:-demo-frames}
secs=${DEMO_SECONDS:-15}
web=${DEMO_HTTP:-127.0.0.1:7402}
name=demo-cam

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
bin/framerecv --listen 127.0.0.1:7400 --dir "$dir" --http "$web" &
pids+=($!)
sleep 0.5
echo "demo: starting framepush on the test pattern for ${secs}s (metrics: http://127.0.0.1:7401/metrics)"
bin/framepush run --set name="$name" --set server.extension=true --set server.terminator=lf &
agent=$!
echo
echo "demo: the receiver's page:    http://$web/"
echo "demo: the newest frame:       curl -o latest.jpg http://$web/devices/$name/latest.jpg"
echo "demo: the MJPEG stream:       http://$web/devices/$name/stream.mjpg (VLC, a browser)"
echo "demo: the board's snapshot:   http://127.0.0.1:7401/snapshot.jpg"
echo
pids=("$agent" "${pids[@]}")
sleep "$secs"
kill -TERM "$agent"
wait "$agent" || true
# The agent has stopped, so the newest file is the newest frame: the page's
# latest.jpg must be that very image.
newest=$(find "$dir/$name" -type f -name '*.jpg' 2>/dev/null | sort | tail -n 1)
if [ -n "$newest" ] && command -v curl >/dev/null; then
  if curl -fsS "http://$web/devices/$name/latest.jpg" | cmp -s - "$newest"; then
    echo "demo: http://$web/devices/$name/latest.jpg is $newest"
  else
    echo "demo: latest.jpg differs from $newest" >&2
  fi
fi
cleanup
trap - EXIT INT TERM

count=$(find "$dir" -type f -name '*.jpg' | wc -l)
echo
echo "demo: $count frames in $dir/ (newest last):"
find "$dir" -type f -name '*.jpg' | sort | tail -n 5
