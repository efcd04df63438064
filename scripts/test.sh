#!/usr/bin/env bash
# The whole framepush test suite, exactly what CI runs (.ci/run):
#   1. installs what the tests need (scripts/deps.sh),
#   2. static checks: gofmt, go vet, staticcheck,
#   3. unit, interop and fault tests with the race detector,
#   4. cross-builds for every board target and checks the packages,
#   5. the emulated-board proof: an arm64 qemu VM with real kernel camera and
#      GPIO drivers running the cross-compiled agent (scripts/vmtest.sh).
# Set FRAMEPUSH_SKIP_VM=1 to skip step 5 on a quick local run.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/tools.sh

step() { printf '\n=== %s\n' "$*"; }

step "dependencies"
bash scripts/deps.sh

step "gofmt"
bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$bad" ]; then echo "gofmt would change:"; echo "$bad"; exit 1; fi

step "go vet"
go vet ./...

step "go tools: pinned versions from the cache"
# Every tool runs from the version-keyed cache deps.sh just filled; this
# fails if one is missing or was not built from its pinned module version,
# so a binary installed by hand elsewhere can never stand in for it.
while read -r name _ ver; do tool_check "$name" && echo "$name $ver: $(tool_bin "$name")"; done < <(tool_rows)
# ...and the check itself refuses a stand-in: a binary put in the cache by
# hand (no build info of the pinned module) must fail it.
fake=$(mktemp -d)
mkdir -p "$fake/staticcheck@$(tool_field staticcheck 3)"
printf '#!/bin/sh\necho "staticcheck 2026.2.2 (0.8.2)"\n' > "$fake/staticcheck@$(tool_field staticcheck 3)/staticcheck"
chmod +x "$fake/staticcheck@$(tool_field staticcheck 3)/staticcheck"
if FRAMEPUSH_TOOLS=$fake tool_check staticcheck 2>/dev/null; then
  echo "tool_check accepted a hand-placed binary"; rm -rf "$fake"; exit 1
fi
rm -rf "$fake"; echo "a hand-placed binary is refused"

step "staticcheck"
"$(tool_bin staticcheck)" ./...

step "go test -race"
go test -race -timeout 25m ./...

step "cross builds and packages"
make --no-print-directory cross sizes
make --no-print-directory deb-check

if [ "${FRAMEPUSH_SKIP_VM:-0}" = 1 ]; then
  step "emulated board: skipped (FRAMEPUSH_SKIP_VM=1)"
else
  step "emulated board (qemu arm64)"
  bash scripts/vmtest.sh
fi
step "all tests passed"
